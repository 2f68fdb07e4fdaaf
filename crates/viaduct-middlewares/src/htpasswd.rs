//! Password hashes as htpasswd writes them, checked the way Traefik's library does: bcrypt
//! (`$2a$`, `$2b$`, `$2x$`, `$2y$`), SHA-1 (`{SHA}`), and MD5-crypt (`$apr1$`, `$1$`) for
//! everything else, so a plain-text "hash" never matches.

use base64::Engine as _;
use md5::{Digest as _, Md5};
use sha1::Sha1;

use crate::auth_users::constant_time_eq;

/// How a stored hash is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HashKind {
    /// Slow on purpose: checked off the I/O threads.
    Bcrypt,
    Sha1,
    Md5Crypt,
}

pub(crate) fn kind(hash: &str) -> HashKind {
    if hash.starts_with("{SHA}") {
        HashKind::Sha1
    } else if ["$2a$", "$2b$", "$2x$", "$2y$"]
        .iter()
        .any(|p| hash.starts_with(p))
    {
        HashKind::Bcrypt
    } else {
        HashKind::Md5Crypt
    }
}

/// Whether `password` matches `hash`.
pub(crate) fn verify(password: &str, hash: &str) -> bool {
    match kind(hash) {
        HashKind::Bcrypt => bcrypt::verify(password, hash).unwrap_or(false),
        HashKind::Sha1 => {
            let digest = Sha1::digest(password.as_bytes());
            let encoded = base64::engine::general_purpose::STANDARD.encode(digest);
            constant_time_eq(encoded.as_bytes(), &hash.as_bytes()[5..])
        }
        HashKind::Md5Crypt => {
            let mut parts = hash.splitn(4, '$');
            let (Some(""), Some(magic), Some(salt), Some(_)) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                return false;
            };
            let expected = md5_crypt(password.as_bytes(), salt.as_bytes(), magic.as_bytes());
            constant_time_eq(hash.as_bytes(), &expected)
        }
    }
}

/// MD5-crypt (the FreeBSD scheme; Apache's `$apr1$` differs only by its magic).
fn md5_crypt(password: &[u8], salt: &[u8], magic: &[u8]) -> Vec<u8> {
    let salt = &salt[..salt.len().min(8)];
    let mut magic_full = Vec::with_capacity(magic.len() + 2);
    magic_full.push(b'$');
    magic_full.extend_from_slice(magic);
    magic_full.push(b'$');

    let mut d = Md5::new();
    d.update(password);
    d.update(&magic_full);
    d.update(salt);
    let mixin = Md5::new()
        .chain_update(password)
        .chain_update(salt)
        .chain_update(password)
        .finalize();
    for i in 0..password.len() {
        d.update([mixin[i % 16]]);
    }
    let mut i = password.len();
    while i != 0 {
        if i & 1 == 0 {
            d.update(&password[..1]);
        } else {
            d.update([0u8]);
        }
        i >>= 1;
    }
    let mut last = d.finalize();
    for round in 0..1000 {
        let mut d = Md5::new();
        if round & 1 == 1 {
            d.update(password);
        } else {
            d.update(last);
        }
        if round % 3 != 0 {
            d.update(salt);
        }
        if round % 7 != 0 {
            d.update(password);
        }
        if round & 1 == 1 {
            d.update(last);
        } else {
            d.update(password);
        }
        last = d.finalize();
    }

    const ITOA64: &[u8; 64] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    const SWAPS: [usize; 16] = [12, 6, 0, 13, 7, 1, 14, 8, 2, 15, 9, 3, 5, 10, 4, 11];
    let mut out = magic_full;
    out.extend_from_slice(salt);
    out.push(b'$');
    let (mut value, mut bits) = (0u32, 0u32);
    for index in SWAPS {
        value |= u32::from(last[index]) << bits;
        bits += 8;
        while bits > 6 {
            out.push(ITOA64[(value & 0x3f) as usize]);
            value >>= 6;
            bits -= 6;
        }
    }
    out.push(ITOA64[(value & 0x3f) as usize]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_known_hashes() {
        // Written by `htpasswd -nbm`, `-nbs`, `-nbB -C 5` and `openssl passwd -1`.
        let apr1 = "$apr1$2LuYrfY9$ji9Ocnk0I90SNOEZmjyje.";
        assert!(verify("test", apr1));
        assert!(!verify("wrong", apr1));
        assert!(verify("test", "$1$abcdefgh$irWbblnpmw.5z7wgBnprh0"));
        assert!(verify("test", "{SHA}qUqP5cyxm6YcTAhz05Hph5gvu9M="));
        assert!(!verify("tesT", "{SHA}qUqP5cyxm6YcTAhz05Hph5gvu9M="));
        let bcrypt = "$2y$05$VEk/5pMOb8VabNnjJ9jGguQuUZ3wqSCcQ8QC3sOrhwDhS6bVh8D9G";
        assert!(verify("test", bcrypt));
        assert!(!verify("nope", bcrypt));
        assert!(!verify("test", "test"), "plain text is refused");
        assert_eq!(kind("$2b$10$x"), HashKind::Bcrypt);
    }
}

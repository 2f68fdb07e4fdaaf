//! What the TLS tests share: certificates written as PEM files.

/// A self-signed certificate for `names`, written as `stem.crt` and `stem.key` into `dir`;
/// returns (cert path, key path, DER).
pub fn certificate(dir: &std::path::Path, stem: &str, names: &[&str]) -> (String, String, Vec<u8>) {
    let certified =
        rcgen::generate_simple_self_signed(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .unwrap();
    let cert = dir.join(format!("{stem}.crt"));
    let key = dir.join(format!("{stem}.key"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    (
        cert.display().to_string(),
        key.display().to_string(),
        certified.cert.der().to_vec(),
    )
}

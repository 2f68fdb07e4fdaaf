//! `digestAuth`: HTTP Digest authentication (MD5, `qop=auth`) against `user:realm:HA1`
//! entries, as Traefik's library does it: server nonces remembered per middleware (at most
//! about a thousand, the least recently used forgotten first), nonce counts that must grow,
//! and a fresh challenge for anything else, an unknown nonce included (Traefik does not mark
//! those `stale`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use base64::Engine as _;
use http::header::{self, HeaderValue};
use md5::{Digest as _, Md5};
use viaduct_observe::ClientUsername;

use crate::auth_users::{constant_time_eq, entry_fields, unauthorized, AfterAuth, AuthOptions};
use crate::chain::{BoxFuture, Middleware, Next, Request, RequestContext, Response};

/// Nonces kept before the oldest are dropped, and how many are dropped then.
const CLIENT_CACHE_SIZE: usize = 1000;
const CLIENT_CACHE_TOLERANCE: usize = 100;

#[derive(Debug)]
pub(crate) struct DigestAuth {
    /// `user:realm` → HA1.
    users: HashMap<String, String>,
    realm: String,
    opaque: String,
    clients: Mutex<HashMap<String, Client>>,
    after: AfterAuth,
    /// Note the user for the access log ([`ClientUsername`]).
    note_users: bool,
}

#[derive(Debug)]
struct Client {
    /// The highest nonce count seen (0: none yet).
    nc: u64,
    last_seen: Instant,
}

enum Outcome {
    Authenticated(String),
    Denied,
}

pub(crate) fn build(
    options: &serde_json::Value,
    note_users: bool,
) -> Result<Arc<dyn Middleware>, String> {
    let options: AuthOptions = crate::options::decode(options)?;
    let users = options.users(|line| {
        let [user, realm, hash] = entry_fields(line)?;
        Some((format!("{user}:{realm}"), hash.to_string()))
    })?;
    let realm = options.realm()?;
    Ok(Arc::new(DigestAuth {
        users,
        realm,
        opaque: random_key()?,
        clients: Mutex::new(HashMap::new()),
        after: options.after_auth()?,
        note_users,
    }))
}

impl Middleware for DigestAuth {
    fn handle<'a>(
        &'a self,
        mut request: Request,
        _ctx: &'a RequestContext<'a>,
        next: Next<'a>,
    ) -> BoxFuture<'a, Response> {
        match self.check(&request) {
            Outcome::Authenticated(user) if self.note_users => {
                self.after.apply(&mut request, &user);
                Box::pin(async move {
                    let mut response = next.run(request).await;
                    ClientUsername::note(&mut response, &user);
                    response
                })
            }
            Outcome::Authenticated(user) => {
                self.after.apply(&mut request, &user);
                next.run(request)
            }
            Outcome::Denied => {
                let mut response = self.challenge();
                // Traefik logs the user a refused digest names, as for a valid one.
                if let Some(user) = self.note_users.then(|| claimed_user(&request)).flatten() {
                    ClientUsername::note(&mut response, &user);
                }
                Box::pin(async move { response })
            }
        }
    }
}

impl DigestAuth {
    fn check(&self, request: &Request) -> Outcome {
        let Some(params) = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(digest_params)
        else {
            return Outcome::Denied;
        };
        let param = |key: &str| params.get(key).map(String::as_str).unwrap_or_default();
        let algorithm = params.get("algorithm").map_or("MD5", String::as_str);
        if param("opaque") != self.opaque || algorithm != "MD5" || param("qop") != "auth" {
            return Outcome::Denied;
        }
        let uri = param("uri");
        if !uri_matches(request, uri) {
            return Outcome::Denied;
        }
        let user = param("username");
        let Some(ha1) = self.users.get(&format!("{user}:{}", self.realm)) else {
            return Outcome::Denied;
        };
        let ha2 = md5_hex(&format!("{}:{uri}", request.method()));
        let (nonce, nc, cnonce) = (param("nonce"), param("nc"), param("cnonce"));
        let expected = md5_hex(&format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}"));
        if !constant_time_eq(expected.as_bytes(), param("response").as_bytes()) {
            return Outcome::Denied;
        }
        let Ok(nc) = u64::from_str_radix(nc, 16) else {
            return Outcome::Denied;
        };
        let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(client) = clients.get_mut(nonce) else {
            return Outcome::Denied;
        };
        // A replayed (or reordered) nonce count is refused.
        if client.nc != 0 && client.nc >= nc {
            return Outcome::Denied;
        }
        client.nc = nc;
        client.last_seen = Instant::now();
        Outcome::Authenticated(user.to_string())
    }

    /// A 401 with a fresh nonce, remembered for the client's next attempt.
    fn challenge(&self) -> Response {
        let Ok(nonce) = random_key() else {
            return crate::responses::status(http::StatusCode::INTERNAL_SERVER_ERROR);
        };
        {
            let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
            if clients.len() > CLIENT_CACHE_SIZE + CLIENT_CACHE_TOLERANCE {
                purge_oldest(&mut clients, CLIENT_CACHE_TOLERANCE * 2);
            }
            clients.insert(
                nonce.clone(),
                Client {
                    nc: 0,
                    last_seen: Instant::now(),
                },
            );
        }
        let value = format!(
            "Digest realm=\"{}\", nonce=\"{nonce}\", opaque=\"{}\", algorithm=\"MD5\", qop=\"auth\"",
            self.realm, self.opaque
        );
        match HeaderValue::from_str(&value) {
            Ok(challenge) => unauthorized(challenge),
            Err(_) => crate::responses::status(http::StatusCode::INTERNAL_SERVER_ERROR),
        }
    }
}

fn purge_oldest(clients: &mut HashMap<String, Client>, count: usize) {
    let mut by_age: Vec<(Instant, String)> = clients
        .iter()
        .map(|(nonce, c)| (c.last_seen, nonce.clone()))
        .collect();
    by_age.sort_unstable();
    for (_, nonce) in by_age.into_iter().take(count) {
        clients.remove(&nonce);
    }
}

/// The `uri` parameter must be the request URI, or (as Traefik's library tolerates) a path
/// prefix of the request's path.
fn uri_matches(request: &Request, uri: &str) -> bool {
    let request_uri = request.uri().path_and_query().map_or("/", |pq| pq.as_str());
    if request_uri == uri {
        return true;
    }
    let path = uri.split(['?', '#']).next().unwrap_or_default();
    request.uri().path().starts_with(path)
}

/// The parameters of `Digest k=v, k="v", …`; `None` for another scheme.
fn digest_params(value: &str) -> Option<HashMap<String, String>> {
    let (scheme, rest) = value.split_once(' ')?;
    if scheme != "Digest" {
        return None;
    }
    let mut params = HashMap::new();
    for pair in split_list(rest.trim()) {
        match pair.split_once('=') {
            None => {
                params.insert(pair.to_string(), String::new());
            }
            Some((key, v)) => {
                let v = v
                    .strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .unwrap_or(v);
                params.insert(key.to_string(), v.to_string());
            }
        }
    }
    Some(params)
}

/// Splits on commas outside double quotes, trimming each item and skipping empty ones.
fn split_list(text: &str) -> Vec<&str> {
    let mut items = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                items.push(text[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(text[start..].trim());
    items.retain(|i| !i.is_empty());
    items
}

fn md5_hex(text: &str) -> String {
    Md5::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// 12 random bytes in base64, as Traefik's library makes nonces and opaques.
fn random_key() -> Result<String, String> {
    let mut bytes = [0u8; 12];
    getrandom::fill(&mut bytes).map_err(|e| format!("no randomness for digest nonces: {e}"))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// The user named by a `Digest` authorization, checked or not.
fn claimed_user(request: &Request) -> Option<String> {
    request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(digest_params)
        .and_then(|params| params.get("username").cloned())
        .filter(|user| !user.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_digest_parameters() {
        let params = digest_params(
            r#"Digest username="u", realm="r, s", nonce="n", uri="/a?b", qop=auth, nc=00000001"#,
        )
        .unwrap();
        assert_eq!(params["username"], "u");
        assert_eq!(params["realm"], "r, s");
        assert_eq!(params["qop"], "auth");
        assert_eq!(params["nc"], "00000001");
        assert!(digest_params("Basic abc").is_none());
    }
}

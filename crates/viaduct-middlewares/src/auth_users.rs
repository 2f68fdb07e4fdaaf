//! What `basicAuth` and `digestAuth` share: their options, the user list (`users` and
//! `usersFile`), the realm, what happens after authentication (`headerField`,
//! `removeHeader`), and the 401 answer.

use std::collections::HashMap;

use http::header::{self, HeaderName, HeaderValue};
use http::StatusCode;
use serde::Deserialize;
use viaduct_upstream::full_body;

use crate::chain::{Request, Response};

/// Traefik's realm when none is configured.
const DEFAULT_REALM: &str = "traefik";

/// The options of `basicAuth` and `digestAuth` (the same keys in Traefik).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct AuthOptions {
    #[serde(default)]
    users: Vec<String>,
    #[serde(default)]
    users_file: String,
    #[serde(default)]
    realm: String,
    #[serde(default)]
    header_field: String,
    #[serde(default)]
    remove_header: bool,
}

impl AuthOptions {
    /// The users of `usersFile` then `users`, each entry split by `parse` (see [`load_users`]).
    pub(crate) fn users(
        &self,
        parse: impl Fn(&str) -> Option<(String, String)>,
    ) -> Result<HashMap<String, String>, String> {
        load_users(&self.users_file, &self.users, parse)
    }

    /// `realm`, or Traefik's default; it is sent in the challenge, so it must fit in a header.
    pub(crate) fn realm(&self) -> Result<String, String> {
        let realm = if self.realm.is_empty() {
            DEFAULT_REALM
        } else {
            &self.realm
        };
        HeaderValue::from_str(realm)
            .map_err(|_| format!("option realm: {realm:?} cannot be sent in a header"))?;
        Ok(realm.to_string())
    }

    pub(crate) fn after_auth(&self) -> Result<AfterAuth, String> {
        AfterAuth::new(&self.header_field, self.remove_header)
    }
}

/// The `:`-separated fields of a user entry, when there are exactly `N`.
pub(crate) fn entry_fields<const N: usize>(line: &str) -> Option<[&str; N]> {
    let fields: Vec<&str> = line.split(':').collect();
    fields.try_into().ok()
}

/// Reads `users_file` (one entry a line; blank lines and `#` comments skipped) then `users`,
/// and splits each entry into (key, secret) with `parse`. A later entry for the same key wins.
fn load_users(
    users_file: &str,
    users: &[String],
    parse: impl Fn(&str) -> Option<(String, String)>,
) -> Result<HashMap<String, String>, String> {
    let mut lines: Vec<String> = Vec::new();
    if !users_file.is_empty() {
        let text = std::fs::read_to_string(users_file)
            .map_err(|e| format!("option usersFile: cannot read {users_file:?}: {e}"))?;
        lines.extend(
            text.split('\n')
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_string),
        );
    }
    lines.extend(users.iter().cloned());
    let mut map = HashMap::with_capacity(lines.len());
    for line in &lines {
        let (key, secret) = parse(line).ok_or_else(|| {
            let user = line.split(':').next().unwrap_or_default();
            format!("option users: the entry for {user:?} is not in the expected form")
        })?;
        map.insert(key, secret);
    }
    Ok(map)
}

/// What happens to an authenticated request: the user name in `headerField`, and the
/// credentials removed with `removeHeader`.
#[derive(Debug)]
pub(crate) struct AfterAuth {
    pub header_field: Option<HeaderName>,
    pub remove_header: bool,
}

impl AfterAuth {
    pub(crate) fn new(header_field: &str, remove_header: bool) -> Result<AfterAuth, String> {
        let header_field = if header_field.is_empty() {
            None
        } else {
            Some(
                HeaderName::from_bytes(header_field.as_bytes()).map_err(|_| {
                    format!("option headerField: {header_field:?} is not a valid header name")
                })?,
            )
        };
        Ok(AfterAuth {
            header_field,
            remove_header,
        })
    }

    pub(crate) fn apply(&self, request: &mut Request, user: &str) {
        if let Some(name) = &self.header_field {
            if let Ok(value) = HeaderValue::from_str(user) {
                request.headers_mut().insert(name.clone(), value);
            }
        }
        if self.remove_header {
            request.headers_mut().remove(header::AUTHORIZATION);
        }
    }
}

/// The 401 of Traefik's authentication library, with the challenge in `WWW-Authenticate`.
pub(crate) fn unauthorized(challenge: HeaderValue) -> Response {
    let mut response = Response::new(full_body("401 Unauthorized\n"));
    *response.status_mut() = StatusCode::UNAUTHORIZED;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    headers.insert(header::WWW_AUTHENTICATE, challenge);
    response
}

/// Byte strings compared in time that depends only on their lengths.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

//! `basicAuth`: HTTP Basic authentication against htpasswd-style users.

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine as _;
use http::header::{self, HeaderValue};
use viaduct_observe::ClientUsername;

use crate::auth_users::{entry_fields, unauthorized, AfterAuth, AuthOptions};
use crate::chain::{BoxFuture, Middleware, Next, Request, RequestContext, Response};
use crate::htpasswd::{self, HashKind};

#[derive(Debug)]
pub(crate) struct BasicAuth {
    /// User name → hash.
    users: HashMap<String, Arc<str>>,
    challenge: HeaderValue,
    after: AfterAuth,
    /// Note the user for the access log ([`ClientUsername`]).
    note_users: bool,
}

pub(crate) fn build(
    options: &serde_json::Value,
    note_users: bool,
) -> Result<Arc<dyn Middleware>, String> {
    let options: AuthOptions = crate::options::decode(options)?;
    let users = options.users(|line| {
        let [user, hash] = entry_fields(line)?;
        Some((user.to_string(), hash.to_string()))
    })?;
    let realm = options.realm()?;
    let challenge = HeaderValue::from_str(&format!("Basic realm=\"{realm}\""))
        .map_err(|_| format!("option realm: {realm:?} cannot be sent in a header"))?;
    Ok(Arc::new(BasicAuth {
        users: users.into_iter().map(|(u, h)| (u, h.into())).collect(),
        challenge,
        after: options.after_auth()?,
        note_users,
    }))
}

impl Middleware for BasicAuth {
    fn handle<'a>(
        &'a self,
        mut request: Request,
        _ctx: &'a RequestContext<'a>,
        next: Next<'a>,
    ) -> BoxFuture<'a, Response> {
        Box::pin(async move {
            let credentials = credentials(request.headers().get(header::AUTHORIZATION));
            let valid = match &credentials {
                Some((user, password)) => self.verify(user, password).await,
                None => false,
            };
            // Traefik logs the user the credentials name, valid or not (empty without any).
            let user = credentials.map(|(user, _)| user).unwrap_or_default();
            if !valid {
                let mut response = unauthorized(self.challenge.clone());
                self.note_user(&mut response, &user);
                return response;
            }
            self.after.apply(&mut request, &user);
            let mut response = next.run(request).await;
            self.note_user(&mut response, &user);
            response
        })
    }
}

impl BasicAuth {
    async fn verify(&self, user: &str, password: &str) -> bool {
        let Some(hash) = self.users.get(user) else {
            return false;
        };
        let valid = match htpasswd::kind(hash) {
            // bcrypt takes milliseconds of CPU by design: not on the I/O threads.
            HashKind::Bcrypt => {
                let (hash, password) = (hash.clone(), password.to_string());
                tokio::task::spawn_blocking(move || htpasswd::verify(&password, &hash))
                    .await
                    .unwrap_or(false)
            }
            _ => htpasswd::verify(password, hash),
        };
        if !valid {
            tracing::debug!(user = %user, "basicAuth: authentication failed");
        }
        valid
    }

    fn note_user(&self, response: &mut Response, user: &str) {
        if self.note_users {
            ClientUsername::note(response, user);
        }
    }
}

/// User and password of `Authorization: Basic …` (scheme case-insensitive), as Go reads it.
fn credentials(value: Option<&HeaderValue>) -> Option<(String, String)> {
    let value = value?.as_bytes();
    let (scheme, encoded) = value.split_at_checked(6)?;
    if !scheme.eq_ignore_ascii_case(b"Basic ") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

//! Viaduct's HTTP middlewares, with Traefik's semantics.
//!
//! A middleware is an object built once per snapshot from its options ([`Middleware`]); a
//! router's middlewares, with `chain`s flattened, form a [`Chain`] that the request path runs
//! before forwarding to the router's service. Building does all the preparation (options
//! decoded, regexes compiled, header names parsed); handling a request does only what that
//! request needs.
//!
//! Adding a middleware type: write its module (options struct + `build` + the
//! [`Middleware`] impl), then add one arm to [`build::build_kind`].

mod add_prefix;
mod auth_users;
mod basic_auth;
mod build;
mod chain;
mod client_ip;
mod content_type;
mod digest_auth;
mod encoded_characters;
mod forward_auth;
mod forward_auth_headers;
mod headers;
mod htpasswd;
mod ip_allow_list;
mod options;
mod pass_tls_client_cert;
mod redirect;
mod redirect_regex;
mod redirect_scheme;
mod replace_path;
mod replace_path_regex;
mod responses;
mod sniff;
mod state;
mod strip_prefix;
mod strip_prefix_regex;
mod uri;

pub use build::{MiddlewareBuilder, MiddlewareDefinitions, ServiceResolver};
pub use chain::{BoxFuture, Chain, Forwarder, Middleware, Next, Request, RequestContext, Response};
pub use headers::SuppressForwardedFor;
pub use state::StateStore;

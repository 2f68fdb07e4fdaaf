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
mod base64_stream;
mod basic_auth;
mod body_end;
mod buffering;
mod build;
mod carried;
mod cb_expression;
mod cb_metrics;
mod chain;
mod circuit_breaker;
mod client_ip;
mod compress;
mod compress_body;
mod content_type;
mod digest_auth;
mod encoded_characters;
mod encoder;
mod errors;
mod forward_auth;
mod forward_auth_headers;
mod go_duration;
mod grpc_web;
mod grpc_web_body;
mod headers;
mod htpasswd;
mod in_flight_req;
mod ip_allow_list;
mod media_type;
mod options;
mod pass_tls_client_cert;
mod rate_limit;
mod rate_limit_redis;
mod redirect;
mod redirect_regex;
mod redirect_scheme;
mod replace_path;
mod replace_path_regex;
mod responses;
mod retry;
mod retry_expression;
mod sniff;
mod source_criterion;
mod spool;
mod state;
mod status_ranges;
mod strip_prefix;
mod strip_prefix_regex;
mod upstream_failure;
mod uri;

pub use build::{MiddlewareBuilder, MiddlewareDefinitions, ServiceResolver};
pub use chain::{BoxFuture, Chain, Forwarder, Middleware, Next, Request, RequestContext, Response};
pub use headers::SuppressForwardedFor;
pub use state::StateStore;
pub use upstream_failure::UpstreamFailure;

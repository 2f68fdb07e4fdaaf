//! Traefik's rule language for Viaduct: the parser (v3 syntax and the deprecated v2 one), the
//! HTTP and TCP matchers with Traefik's exact semantics, the request facts they look at, and
//! the per-entry-point router table.
//!
//! ```
//! use viaduct_rules::{parse_http, RequestFacts};
//! let rule = parse_http("Host(`example.com`) && PathPrefix(`/api`)").unwrap();
//! let headers = http::HeaderMap::new();
//! let facts = RequestFacts {
//!     host: "example.com",
//!     path: "/api/users",
//!     method: &http::Method::GET,
//!     headers: &headers,
//!     query: None,
//!     client_ip: None,
//! };
//! assert!(rule.matches(&facts));
//! assert_eq!(rule.default_priority(), 41);
//! ```

mod error;
mod facts;
mod go_regex;
mod http_rule;
mod http_v2;
mod path;
mod query;
mod syntax;
mod table;
mod tcp;
mod tree;

pub use crate::http_rule::{parse_http, parse_http_with, HostSet, HttpRule};
pub use error::{BadPath, PriorityError, RuleError};
pub use facts::{canonical_host, RequestFacts, TcpFacts};
pub use path::{routing_path, sanitize_path};
pub use syntax::MAX_DEPTH;
pub use table::{RouterEntry, RouterTable};
pub use tcp::{parse_tcp, parse_tcp_with, TcpRule, ACME_TLS_ALPN};

/// The largest priority a user may give a router; the values above are reserved for internal
/// routers (ACME challenge, ping, metrics, API, dashboard, entry-point redirections).
pub const MAX_USER_PRIORITY: i64 = i64::MAX - 1000;

/// Which rule grammar a router uses (`ruleSyntax`); v3 unless configured otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RuleSyntax {
    /// The deprecated Traefik v2 grammar.
    V2,
    #[default]
    V3,
}

/// A `ruleSyntax` value other than `v2` or `v3`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown rule syntax `{0}`: expected `v2` or `v3`")]
pub struct UnknownRuleSyntax(pub String);

impl std::str::FromStr for RuleSyntax {
    type Err = UnknownRuleSyntax;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "v2" => Ok(RuleSyntax::V2),
            "v3" => Ok(RuleSyntax::V3),
            other => Err(UnknownRuleSyntax(other.to_owned())),
        }
    }
}

/// A router's effective priority: an explicit non-zero priority as given, else the rule's
/// default; explicit priorities above [`MAX_USER_PRIORITY`] are rejected.
pub fn effective_priority(explicit: i64, default_priority: i64) -> Result<i64, PriorityError> {
    if explicit > MAX_USER_PRIORITY {
        return Err(PriorityError { priority: explicit });
    }
    Ok(if explicit == 0 {
        default_priority
    } else {
        explicit
    })
}

//! The one error type of rule parsing and compilation.
//!
//! Every variant carries the byte offset (0-based) in the rule text where the problem starts, so a
//! router's status message can point at it.

/// Why a rule was rejected. Positions are byte offsets into the rule text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("empty rule")]
    Empty,
    #[error("unexpected {found} at {pos}, expected {expected}")]
    Unexpected {
        found: String,
        pos: usize,
        expected: &'static str,
    },
    #[error(
        "single-quoted argument at {pos}: arguments are written in backticks or double quotes"
    )]
    SingleQuote { pos: usize },
    #[error("unterminated string starting at {pos}")]
    UnterminatedString { pos: usize },
    #[error("invalid escape `{escape}` in string at {pos}")]
    InvalidEscape { escape: String, pos: usize },
    #[error("string at {pos} is not valid UTF-8 once unescaped")]
    InvalidUtf8 { pos: usize },
    #[error("rule nests deeper than {max} levels at {pos}")]
    TooDeep { pos: usize, max: usize },
    #[error("unknown {kind} matcher `{name}` at {pos}")]
    UnknownMatcher {
        kind: &'static str,
        name: String,
        pos: usize,
    },
    #[error("matcher `{matcher}` at {pos} takes {expected}, got {got}")]
    Arity {
        matcher: &'static str,
        pos: usize,
        expected: &'static str,
        got: usize,
    },
    #[error("empty argument to matcher `{matcher}` at {pos}")]
    EmptyArgument { matcher: &'static str, pos: usize },
    #[error("invalid argument `{value}` to matcher `{matcher}` at {pos}: {reason}")]
    InvalidArgument {
        matcher: &'static str,
        value: String,
        pos: usize,
        reason: String,
    },
}

/// An explicit router priority above [`crate::MAX_USER_PRIORITY`]; those values are reserved for
/// internal routers (ACME challenge, ping, API, dashboard, redirections).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("priority {priority} is too high: the maximum allowed is {max}", max = crate::MAX_USER_PRIORITY)]
pub struct PriorityError {
    pub priority: i64,
}

/// A request path with a malformed percent-escape; the proxy answers 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed percent-escape at byte {pos} of the request path")]
pub struct BadPath {
    pub pos: usize,
}

//! The compiled boolean tree shared by HTTP and TCP rules, and matcher-name resolution.

use crate::error::RuleError;
use crate::syntax::{Arg, Call, Expr};

/// A compiled rule: matchers combined by not/and/or. Depth is bounded by the parser.
#[derive(Debug, Clone)]
pub(crate) enum Node<M> {
    Leaf(M),
    Not(Box<Node<M>>),
    All(Vec<Node<M>>),
    Any(Vec<Node<M>>),
}

/// How many arguments a matcher takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Arity {
    One,
    Two,
    OneOrTwo,
    AtLeastOne,
    Pairs,
}

/// A matcher a rule may call, with its canonical name.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MatcherSpec<K> {
    pub name: &'static str,
    pub arity: Arity,
    pub kind: K,
}

/// A call whose name and arguments have been checked against a matcher set.
pub(crate) struct Resolved<'c, K> {
    pub name: &'static str,
    pub kind: K,
    pub args: &'c [Arg],
}

impl<M> Node<M> {
    /// Compiles an expression, turning every call into a subtree with `leaf`.
    pub(crate) fn build(
        expr: &Expr,
        leaf: &mut impl FnMut(&Call) -> Result<Node<M>, RuleError>,
    ) -> Result<Node<M>, RuleError> {
        Ok(match expr {
            Expr::Call(call) => leaf(call)?,
            Expr::Not(inner) => Node::Not(Box::new(Self::build(inner, leaf)?)),
            Expr::And(terms) => Node::All(
                terms
                    .iter()
                    .map(|t| Self::build(t, leaf))
                    .collect::<Result<_, _>>()?,
            ),
            Expr::Or(terms) => Node::Any(
                terms
                    .iter()
                    .map(|t| Self::build(t, leaf))
                    .collect::<Result<_, _>>()?,
            ),
        })
    }

    pub(crate) fn eval(&self, leaf: &impl Fn(&M) -> bool) -> bool {
        match self {
            Node::Leaf(m) => leaf(m),
            Node::Not(inner) => !inner.eval(leaf),
            Node::All(terms) => terms.iter().all(|t| t.eval(leaf)),
            Node::Any(terms) => terms.iter().any(|t| t.eval(leaf)),
        }
    }

    /// The only leaf of a tree that is a single un-negated matcher.
    pub(crate) fn single_leaf(&self) -> Option<&M> {
        match self {
            Node::Leaf(m) => Some(m),
            Node::All(terms) | Node::Any(terms) if terms.len() == 1 => terms[0].single_leaf(),
            _ => None,
        }
    }
}

impl Arity {
    fn accepts(self, n: usize) -> bool {
        match self {
            Arity::One => n == 1,
            Arity::Two => n == 2,
            Arity::OneOrTwo => n == 1 || n == 2,
            Arity::AtLeastOne => n >= 1,
            Arity::Pairs => n >= 2 && n & 1 == 0,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Arity::One => "exactly one argument",
            Arity::Two => "exactly two arguments",
            Arity::OneOrTwo => "one or two arguments",
            Arity::AtLeastOne => "at least one argument",
            Arity::Pairs => "key/value pairs of arguments",
        }
    }
}

/// Finds the matcher a call names and checks its arguments are present, non-empty and as many as
/// the matcher takes.
pub(crate) fn resolve<'c, K: Copy>(
    specs: &[MatcherSpec<K>],
    family: &'static str,
    call: &'c Call,
) -> Result<Resolved<'c, K>, RuleError> {
    let spec = specs
        .iter()
        .find(|spec| is_accepted_spelling(&call.name, spec.name))
        .ok_or_else(|| RuleError::UnknownMatcher {
            kind: family,
            name: call.name.clone(),
            pos: call.pos,
        })?;
    if let Some(empty) = call.args.iter().find(|a| a.value.is_empty()) {
        return Err(RuleError::EmptyArgument {
            matcher: spec.name,
            pos: empty.pos,
        });
    }
    if !spec.arity.accepts(call.args.len()) {
        return Err(RuleError::Arity {
            matcher: spec.name,
            pos: call.pos,
            expected: spec.arity.describe(),
            got: call.args.len(),
        });
    }
    Ok(Resolved {
        name: spec.name,
        kind: spec.kind,
        args: &call.args,
    })
}

impl<K> Resolved<'_, K> {
    pub(crate) fn invalid(&self, arg: &Arg, reason: impl Into<String>) -> RuleError {
        RuleError::InvalidArgument {
            matcher: self.name,
            value: arg.value.clone(),
            pos: arg.pos,
            reason: reason.into(),
        }
    }
}

/// Traefik registers each matcher under exactly four spellings: canonical, lower-case,
/// upper-case and Title-case of the lower-cased name (`Pathprefix`).
fn is_accepted_spelling(written: &str, canonical: &str) -> bool {
    if written.len() != canonical.len() {
        return false;
    }
    let pairs = || written.bytes().zip(canonical.bytes());
    written == canonical
        || pairs().all(|(w, c)| w == c.to_ascii_lowercase())
        || pairs().all(|(w, c)| w == c.to_ascii_uppercase())
        || pairs().enumerate().all(|(i, (w, c))| {
            if i == 0 {
                w == c.to_ascii_uppercase()
            } else {
                w == c.to_ascii_lowercase()
            }
        })
}

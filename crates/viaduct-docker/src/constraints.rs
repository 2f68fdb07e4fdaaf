//! `providers.docker.constraints`: which containers the provider considers, by their labels.
//!
//! The grammar is Traefik's: `Label("key", "value")` and `LabelRegex("key", "regex")`
//! combined with `&&`, `||`, `!` and parentheses; `&&` binds tighter than `||`. Arguments are
//! Go string literals (`"…"` with escapes, or `` `…` `` raw).

use std::collections::BTreeMap;

use regex::Regex;

/// A parsed constraint expression.
#[derive(Debug, Clone)]
pub enum Constraint {
    /// The label is set to exactly this value (an absent label equals `""`).
    Label {
        key: String,
        value: String,
    },
    /// The label is set and the regular expression finds a match in its value (unanchored).
    LabelRegex {
        key: String,
        regex: Regex,
    },
    Not(Box<Constraint>),
    And(Vec<Constraint>),
    Or(Vec<Constraint>),
}

/// A constraint expression that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("constraints {expression:?}: at offset {offset}: {reason}")]
pub struct ConstraintError {
    pub expression: String,
    pub offset: usize,
    pub reason: String,
}

/// Nesting of parentheses and `!` beyond this is refused rather than risking the stack.
const MAX_DEPTH: usize = 64;

impl Constraint {
    pub fn parse(expression: &str) -> Result<Constraint, ConstraintError> {
        let mut parser = Parser {
            src: expression,
            pos: 0,
            depth: 0,
        };
        let constraint = parser.or()?;
        parser.skip_spaces();
        if parser.pos < expression.len() {
            return Err(parser.error("expected `&&`, `||` or the end of the expression"));
        }
        Ok(constraint)
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        match self {
            Constraint::Label { key, value } => {
                labels.get(key).map(String::as_str).unwrap_or_default() == value
            }
            Constraint::LabelRegex { key, regex } => {
                labels.get(key).is_some_and(|value| regex.is_match(value))
            }
            Constraint::Not(inner) => !inner.matches(labels),
            Constraint::And(all) => all.iter().all(|c| c.matches(labels)),
            Constraint::Or(any) => any.iter().any(|c| c.matches(labels)),
        }
    }
}

struct Parser<'a> {
    src: &'a str,
    pos: usize,
    depth: usize,
}

impl<'a> Parser<'a> {
    fn or(&mut self) -> Result<Constraint, ConstraintError> {
        let mut items = vec![self.and()?];
        while self.eat("||") {
            items.push(self.and()?);
        }
        Ok(single_or(items, Constraint::Or))
    }

    fn and(&mut self) -> Result<Constraint, ConstraintError> {
        let mut items = vec![self.unary()?];
        while self.eat("&&") {
            items.push(self.unary()?);
        }
        Ok(single_or(items, Constraint::And))
    }

    fn unary(&mut self) -> Result<Constraint, ConstraintError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error("expression nested too deeply"));
        }
        let result = if self.eat("!") {
            self.unary().map(|c| Constraint::Not(Box::new(c)))
        } else if self.eat("(") {
            let inner = self.or()?;
            if self.eat(")") {
                Ok(inner)
            } else {
                Err(self.error("expected `)`"))
            }
        } else {
            self.call()
        };
        self.depth -= 1;
        result
    }

    fn call(&mut self) -> Result<Constraint, ConstraintError> {
        self.skip_spaces();
        let start = self.pos;
        let name: String = self
            .rest()
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        self.pos += name.len();
        if name.is_empty() {
            return Err(self.error("expected `Label(…)`, `LabelRegex(…)`, `!` or `(`"));
        }
        if !self.eat("(") {
            return Err(self.error("expected `(` after the function name"));
        }
        let key = self.string()?;
        if !self.eat(",") {
            return Err(self.error("expected `,` between the two arguments"));
        }
        let value = self.string()?;
        if !self.eat(")") {
            return Err(self.error("expected `)`: the function takes two arguments"));
        }
        match name.as_str() {
            "Label" => Ok(Constraint::Label { key, value }),
            "LabelRegex" => match Regex::new(&value) {
                Ok(regex) => Ok(Constraint::LabelRegex { key, regex }),
                Err(e) => Err(self.error_at(start, &format!("invalid regular expression: {e}"))),
            },
            other => Err(self.error_at(
                start,
                &format!("unknown function `{other}` (expected `Label` or `LabelRegex`)"),
            )),
        }
    }

    /// A Go string literal: `"…"` with escapes or `` `…` `` taken verbatim.
    fn string(&mut self) -> Result<String, ConstraintError> {
        self.skip_spaces();
        let rest = self.rest();
        if let Some(raw) = rest.strip_prefix('`') {
            let Some(end) = raw.find('`') else {
                return Err(self.error("unterminated `` ` `` string"));
            };
            self.pos += end + 2;
            return Ok(raw[..end].to_owned());
        }
        let Some(quoted) = rest.strip_prefix('"') else {
            return Err(self.error("expected a quoted string"));
        };
        let mut value = String::new();
        let mut chars = quoted.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.pos += i + 2;
                    return Ok(value);
                }
                '\\' => match chars.next().map(|(_, e)| e) {
                    Some('n') => value.push('\n'),
                    Some('t') => value.push('\t'),
                    Some(e @ ('\\' | '"' | '\'')) => value.push(e),
                    _ => return Err(self.error("unsupported escape in string")),
                },
                c => value.push(c),
            }
        }
        Err(self.error("unterminated `\"` string"))
    }

    fn eat(&mut self, token: &str) -> bool {
        self.skip_spaces();
        if self.rest().starts_with(token) {
            self.pos += token.len();
            true
        } else {
            false
        }
    }

    fn skip_spaces(&mut self) {
        let trimmed = self.rest().trim_start();
        self.pos = self.src.len() - trimmed.len();
    }

    fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    fn error(&self, reason: &str) -> ConstraintError {
        self.error_at(self.pos, reason)
    }

    fn error_at(&self, offset: usize, reason: &str) -> ConstraintError {
        ConstraintError {
            expression: self.src.to_owned(),
            offset,
            reason: reason.to_owned(),
        }
    }
}

fn single_or(mut items: Vec<Constraint>, combine: fn(Vec<Constraint>) -> Constraint) -> Constraint {
    if items.len() == 1 {
        items.remove(0)
    } else {
        combine(items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn label_and_regex_with_operators() {
        let c = Constraint::parse(
            r#"Label("env", "prod") && (LabelRegex(`team`, `^(a|b)$`) || !Label("x","1"))"#,
        )
        .unwrap();
        assert!(c.matches(&labels(&[("env", "prod"), ("team", "a")])));
        assert!(c.matches(&labels(&[("env", "prod"), ("team", "z")])));
        assert!(!c.matches(&labels(&[("env", "prod"), ("team", "z"), ("x", "1")])));
        assert!(!c.matches(&labels(&[("env", "dev"), ("team", "a")])));
    }

    #[test]
    fn and_binds_tighter_than_or() {
        let c = Constraint::parse(r#"Label("a","1") || Label("b","1") && Label("c","1")"#).unwrap();
        assert!(c.matches(&labels(&[("a", "1")])));
        assert!(!c.matches(&labels(&[("b", "1")])));
    }

    #[test]
    fn absent_label_equals_empty_but_never_matches_a_regex() {
        assert!(Constraint::parse(r#"Label("k", "")"#)
            .unwrap()
            .matches(&labels(&[])));
        assert!(!Constraint::parse(r#"LabelRegex("k", ".*")"#)
            .unwrap()
            .matches(&labels(&[])));
    }

    #[test]
    fn errors_say_where_and_why() {
        for (text, reason) in [
            (r#"Tag("a")"#, "expected `,`"),
            (r#"Host("a", "b")"#, "unknown function `Host`"),
            (r#"Label("a", "b") &&"#, "expected `Label"),
            (r#"Label("a", "b"))"#, "expected `&&`"),
            (r#"LabelRegex("a", "(")"#, "invalid regular expression"),
            (r#"Label("a, "b")"#, "expected `,`"),
            (r#"(Label("a", "b")"#, "expected `)`"),
        ] {
            let err = Constraint::parse(text).unwrap_err();
            assert!(err.reason.contains(reason), "{text}: {err}");
        }
        let deep = format!("{}Label(\"a\",\"b\")", "!".repeat(1000));
        assert!(Constraint::parse(&deep).is_err());
    }
}

//! `buffering`'s `retryExpression` (vulcand/oxy's): `IsNetworkError() && Attempts() < 2`.
//! Parsed once; evaluated after each attempt with what that attempt gave.

use http::Method;

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum RetryCondition {
    And(Box<RetryCondition>, Box<RetryCondition>),
    Or(Box<RetryCondition>, Box<RetryCondition>),
    /// The answer was a 502 or a 504.
    IsNetworkError,
    Attempts(Compare, i64),
    ResponseCode(Compare, i64),
    /// Only `==` and `!=`.
    RequestMethod(Compare, String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Compare {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// What one attempt gave.
pub(crate) struct Attempt<'a> {
    /// Attempts made so far (1 after the first).
    pub attempts: u32,
    pub status: u16,
    pub method: &'a Method,
}

impl RetryCondition {
    /// The error says where the expression went wrong.
    pub fn parse(text: &str) -> Result<RetryCondition, String> {
        let mut parser = Parser {
            text: text.as_bytes(),
            at: 0,
        };
        let condition = parser.or()?;
        parser.skip_spaces();
        if parser.at < text.len() {
            return Err(parser.error("unexpected text"));
        }
        Ok(condition)
    }

    pub fn holds(&self, attempt: &Attempt<'_>) -> bool {
        match self {
            RetryCondition::And(a, b) => a.holds(attempt) && b.holds(attempt),
            RetryCondition::Or(a, b) => a.holds(attempt) || b.holds(attempt),
            RetryCondition::IsNetworkError => matches!(attempt.status, 502 | 504),
            RetryCondition::Attempts(op, n) => op.apply(i64::from(attempt.attempts), *n),
            RetryCondition::ResponseCode(op, n) => op.apply(i64::from(attempt.status), *n),
            RetryCondition::RequestMethod(op, m) => {
                (attempt.method.as_str() == m) == (*op == Compare::Eq)
            }
        }
    }
}

impl Compare {
    fn apply(self, left: i64, right: i64) -> bool {
        match self {
            Compare::Eq => left == right,
            Compare::Ne => left != right,
            Compare::Lt => left < right,
            Compare::Le => left <= right,
            Compare::Gt => left > right,
            Compare::Ge => left >= right,
        }
    }
}

struct Parser<'t> {
    text: &'t [u8],
    at: usize,
}

impl Parser<'_> {
    fn error(&self, what: &str) -> String {
        format!("at offset {}: {what}", self.at)
    }

    fn skip_spaces(&mut self) {
        while self.text.get(self.at).is_some_and(u8::is_ascii_whitespace) {
            self.at += 1;
        }
    }

    fn eat(&mut self, token: &str) -> bool {
        self.skip_spaces();
        if self.text[self.at..].starts_with(token.as_bytes()) {
            self.at += token.len();
            true
        } else {
            false
        }
    }

    fn or(&mut self) -> Result<RetryCondition, String> {
        let mut left = self.and()?;
        while self.eat("||") {
            left = RetryCondition::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<RetryCondition, String> {
        let mut left = self.primary()?;
        while self.eat("&&") {
            left = RetryCondition::And(Box::new(left), Box::new(self.primary()?));
        }
        Ok(left)
    }

    fn primary(&mut self) -> Result<RetryCondition, String> {
        if self.eat("(") {
            let inner = self.or()?;
            if !self.eat(")") {
                return Err(self.error("expected \")\""));
            }
            return Ok(inner);
        }
        self.skip_spaces();
        let start = self.at;
        while self
            .text
            .get(self.at)
            .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_')
        {
            self.at += 1;
        }
        let name = String::from_utf8_lossy(&self.text[start..self.at]).into_owned();
        if name.is_empty() {
            return Err(self.error("expected a function"));
        }
        if !(self.eat("(") && self.eat(")")) {
            return Err(self.error(&format!("expected \"()\" after {name}")));
        }
        match name.as_str() {
            "IsNetworkError" => Ok(RetryCondition::IsNetworkError),
            "Attempts" => Ok(RetryCondition::Attempts(self.compare()?, self.integer()?)),
            "ResponseCode" => Ok(RetryCondition::ResponseCode(
                self.compare()?,
                self.integer()?,
            )),
            "RequestMethod" => {
                let op = self.compare()?;
                if !matches!(op, Compare::Eq | Compare::Ne) {
                    return Err(self.error("a method compares with == or != only"));
                }
                Ok(RetryCondition::RequestMethod(op, self.string()?))
            }
            _ => Err(format!("at offset {start}: unsupported function {name:?}")),
        }
    }

    fn compare(&mut self) -> Result<Compare, String> {
        for (token, op) in [
            ("==", Compare::Eq),
            ("!=", Compare::Ne),
            ("<=", Compare::Le),
            (">=", Compare::Ge),
            ("<", Compare::Lt),
            (">", Compare::Gt),
        ] {
            if self.eat(token) {
                return Ok(op);
            }
        }
        Err(self.error("expected a comparison"))
    }

    fn integer(&mut self) -> Result<i64, String> {
        self.skip_spaces();
        let start = self.at;
        while self.text.get(self.at).is_some_and(u8::is_ascii_digit) {
            self.at += 1;
        }
        std::str::from_utf8(&self.text[start..self.at])
            .ok()
            .and_then(|digits| digits.parse().ok())
            .ok_or_else(|| format!("at offset {start}: expected an integer"))
    }

    fn string(&mut self) -> Result<String, String> {
        if !self.eat("\"") {
            return Err(self.error("expected a quoted string"));
        }
        let start = self.at;
        while self.text.get(self.at).is_some_and(|b| *b != b'"') {
            self.at += 1;
        }
        let value = String::from_utf8_lossy(&self.text[start..self.at]).into_owned();
        if !self.eat("\"") {
            return Err(self.error("unterminated string"));
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holds(text: &str, attempts: u32, status: u16) -> bool {
        RetryCondition::parse(text).unwrap().holds(&Attempt {
            attempts,
            status,
            method: &Method::GET,
        })
    }

    #[test]
    fn reads_oxy_expressions() {
        assert!(holds("IsNetworkError() && Attempts() < 2", 1, 502));
        assert!(!holds("IsNetworkError() && Attempts() < 2", 2, 502));
        assert!(!holds("IsNetworkError()", 1, 500));
        assert!(holds("ResponseCode() == 503 || IsNetworkError()", 1, 503));
        assert!(holds(
            "(RequestMethod() == \"GET\") && Attempts() <= 3",
            3,
            200
        ));
        assert!(!holds("RequestMethod() != \"GET\"", 1, 200));
    }

    #[test]
    fn says_where_it_is_wrong() {
        assert!(RetryCondition::parse("Attempts() <")
            .unwrap_err()
            .contains("offset 12"));
        assert!(RetryCondition::parse("Nope()")
            .unwrap_err()
            .contains("offset 0"));
        assert!(RetryCondition::parse("IsNetworkError() &&").is_err());
        assert!(RetryCondition::parse("RequestMethod() < \"GET\"").is_err());
    }
}

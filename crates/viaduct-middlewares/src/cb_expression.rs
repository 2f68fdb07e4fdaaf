//! The `circuitBreaker` condition language (vulcand/oxy's, as Traefik reads it):
//! `NetworkErrorRatio() > 0.5 || LatencyAtQuantileMS(50.0) > 100`.
//!
//! Parsed once at build time into a tree evaluated against the metrics on each check. As
//! oxy, a comparison puts the function on the left and a literal of the function's type on
//! the right: ratios compare with floats (`0.5`), latencies with integers (`100`).

use std::fmt;

/// A parsed condition.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Condition {
    And(Box<Condition>, Box<Condition>),
    Or(Box<Condition>, Box<Condition>),
    Compare(Metric, Comparison, f64),
}

/// What a condition reads from the metrics.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Metric {
    NetworkErrorRatio,
    /// Codes in `[from, to)` over codes in `[dividend_from, dividend_to)`.
    ResponseCodeRatio {
        from: u16,
        to: u16,
        dividend_from: u16,
        dividend_to: u16,
    },
    /// The latency at this quantile (in percent), in whole milliseconds.
    LatencyAtQuantileMs(f64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Comparison {
    Gt,
    Ge,
    Lt,
    Le,
    Eq,
    Ne,
}

/// Values a condition is evaluated against.
pub(crate) trait Metrics {
    fn network_error_ratio(&mut self) -> f64;
    fn response_code_ratio(&mut self, from: u16, to: u16, dfrom: u16, dto: u16) -> f64;
    fn latency_at_quantile_ms(&mut self, quantile: f64) -> i64;
}

/// Why an expression was refused: where, and what was expected there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParseError {
    pub position: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at offset {}: {}", self.position, self.message)
    }
}

impl Condition {
    pub fn parse(text: &str) -> Result<Condition, ParseError> {
        let tokens = tokenize(text)?;
        let mut parser = Parser {
            tokens,
            position: 0,
            end: text.len(),
        };
        let condition = parser.or()?;
        match parser.peek() {
            None => Ok(condition),
            Some((at, token)) => Err(ParseError {
                position: at,
                message: format!("unexpected {token}"),
            }),
        }
    }

    pub fn uses_latency(&self) -> bool {
        match self {
            Condition::And(a, b) | Condition::Or(a, b) => a.uses_latency() || b.uses_latency(),
            Condition::Compare(metric, _, _) => {
                matches!(metric, Metric::LatencyAtQuantileMs(_))
            }
        }
    }

    pub fn evaluate(&self, metrics: &mut dyn Metrics) -> bool {
        match self {
            Condition::And(a, b) => a.evaluate(metrics) && b.evaluate(metrics),
            Condition::Or(a, b) => a.evaluate(metrics) || b.evaluate(metrics),
            Condition::Compare(metric, comparison, value) => {
                let actual = match *metric {
                    Metric::NetworkErrorRatio => metrics.network_error_ratio(),
                    Metric::ResponseCodeRatio {
                        from,
                        to,
                        dividend_from,
                        dividend_to,
                    } => metrics.response_code_ratio(from, to, dividend_from, dividend_to),
                    Metric::LatencyAtQuantileMs(q) => metrics.latency_at_quantile_ms(q) as f64,
                };
                match comparison {
                    Comparison::Gt => actual > *value,
                    Comparison::Ge => actual >= *value,
                    Comparison::Lt => actual < *value,
                    Comparison::Le => actual <= *value,
                    Comparison::Eq => actual == *value,
                    Comparison::Ne => actual != *value,
                }
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    /// A number literal; `true` when written as an integer.
    Number(f64, bool),
    LParen,
    RParen,
    Comma,
    And,
    Or,
    Compare(Comparison),
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Token::Ident(name) => write!(f, "{name:?}"),
            Token::Number(n, _) => write!(f, "number {n}"),
            Token::LParen => f.write_str("\"(\""),
            Token::RParen => f.write_str("\")\""),
            Token::Comma => f.write_str("\",\""),
            Token::And => f.write_str("\"&&\""),
            Token::Or => f.write_str("\"||\""),
            Token::Compare(_) => f.write_str("a comparison"),
        }
    }
}

fn tokenize(text: &str) -> Result<Vec<(usize, Token)>, ParseError> {
    let bytes = text.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        let two = bytes.get(i..i + 2);
        let token = match c {
            b' ' | b'\t' | b'\n' | b'\r' => {
                i += 1;
                continue;
            }
            b'(' => Token::LParen,
            b')' => Token::RParen,
            b',' => Token::Comma,
            _ if two == Some(b"&&") => Token::And,
            _ if two == Some(b"||") => Token::Or,
            _ if two == Some(b">=") => Token::Compare(Comparison::Ge),
            _ if two == Some(b"<=") => Token::Compare(Comparison::Le),
            _ if two == Some(b"==") => Token::Compare(Comparison::Eq),
            _ if two == Some(b"!=") => Token::Compare(Comparison::Ne),
            b'>' => Token::Compare(Comparison::Gt),
            b'<' => Token::Compare(Comparison::Lt),
            b'0'..=b'9' | b'.' | b'-' => {
                let mut end = i + 1;
                while end < bytes.len()
                    && (bytes[end].is_ascii_digit()
                        || matches!(bytes[end], b'.' | b'e' | b'E')
                        || (matches!(bytes[end], b'+' | b'-')
                            && matches!(bytes[end - 1], b'e' | b'E')))
                {
                    end += 1;
                }
                let literal = &text[i..end];
                let value = literal.parse::<f64>().map_err(|_| ParseError {
                    position: start,
                    message: format!("{literal:?} is not a number"),
                })?;
                let integer = !literal.contains(['.', 'e', 'E']);
                tokens.push((start, Token::Number(value, integer)));
                i = end;
                continue;
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let mut end = i + 1;
                while end < bytes.len()
                    && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_')
                {
                    end += 1;
                }
                tokens.push((start, Token::Ident(text[i..end].to_string())));
                i = end;
                continue;
            }
            _ => {
                return Err(ParseError {
                    position: start,
                    message: format!("unexpected character {:?}", char::from(c)),
                })
            }
        };
        i += match token {
            Token::LParen | Token::RParen | Token::Comma => 1,
            Token::Compare(Comparison::Gt) | Token::Compare(Comparison::Lt) => 1,
            _ => 2,
        };
        tokens.push((start, token));
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<(usize, Token)>,
    position: usize,
    end: usize,
}

impl Parser {
    fn peek(&self) -> Option<(usize, &Token)> {
        self.tokens.get(self.position).map(|(at, t)| (*at, t))
    }

    fn next(&mut self, expected: &str) -> Result<(usize, Token), ParseError> {
        let token = self.tokens.get(self.position).cloned();
        self.position += 1;
        token.ok_or_else(|| ParseError {
            position: self.end,
            message: format!("the expression ends where {expected} was expected"),
        })
    }

    fn or(&mut self) -> Result<Condition, ParseError> {
        let mut left = self.and()?;
        while matches!(self.peek(), Some((_, Token::Or))) {
            self.position += 1;
            left = Condition::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Condition, ParseError> {
        let mut left = self.primary()?;
        while matches!(self.peek(), Some((_, Token::And))) {
            self.position += 1;
            left = Condition::And(Box::new(left), Box::new(self.primary()?));
        }
        Ok(left)
    }

    fn primary(&mut self) -> Result<Condition, ParseError> {
        if matches!(self.peek(), Some((_, Token::LParen))) {
            self.position += 1;
            let inner = self.or()?;
            match self.next("\")\"")? {
                (_, Token::RParen) => return Ok(inner),
                (at, token) => {
                    return Err(ParseError {
                        position: at,
                        message: format!("expected \")\", found {token}"),
                    })
                }
            }
        }
        let (at, metric, integer_valued) = self.function()?;
        let comparison = match self.next("a comparison")? {
            (_, Token::Compare(c)) => c,
            (at, token) => {
                return Err(ParseError {
                    position: at,
                    message: format!("expected a comparison (> >= < <= == !=), found {token}"),
                })
            }
        };
        let (value_at, value, integer) = match self.next("a number")? {
            (value_at, Token::Number(value, integer)) => (value_at, value, integer),
            (value_at, token) => {
                return Err(ParseError {
                    position: value_at,
                    message: format!("expected a number, found {token}"),
                })
            }
        };
        if integer != integer_valued {
            let (want, got) = if integer_valued {
                ("int", "float64")
            } else {
                ("float64", "int")
            };
            return Err(ParseError {
                position: value_at,
                message: format!(
                    "the function at offset {at} compares with an {want} literal, got {got}"
                ),
            });
        }
        Ok(Condition::Compare(metric, comparison, value))
    }

    /// A function call: the metric, where it starts, and whether it yields an integer.
    fn function(&mut self) -> Result<(usize, Metric, bool), ParseError> {
        let (at, name) = match self.next("a function")? {
            (at, Token::Ident(name)) => (at, name),
            (at, token) => {
                return Err(ParseError {
                    position: at,
                    message: format!(
                        "expected NetworkErrorRatio(), ResponseCodeRatio(…) or LatencyAtQuantileMS(…), found {token}"
                    ),
                })
            }
        };
        match self.next("\"(\"")? {
            (_, Token::LParen) => {}
            (at, token) => {
                return Err(ParseError {
                    position: at,
                    message: format!("expected \"(\" after {name}, found {token}"),
                })
            }
        }
        let mut args = Vec::new();
        if !matches!(self.peek(), Some((_, Token::RParen))) {
            loop {
                match self.next("a number")? {
                    (_, Token::Number(value, _)) => args.push(value),
                    (at, token) => {
                        return Err(ParseError {
                            position: at,
                            message: format!("expected a number argument, found {token}"),
                        })
                    }
                }
                if matches!(self.peek(), Some((_, Token::Comma))) {
                    self.position += 1;
                } else {
                    break;
                }
            }
        }
        match self.next("\")\"")? {
            (_, Token::RParen) => {}
            (at, token) => {
                return Err(ParseError {
                    position: at,
                    message: format!("expected \")\", found {token}"),
                })
            }
        }
        let arity = |n: usize| {
            if args.len() == n {
                Ok(())
            } else {
                Err(ParseError {
                    position: at,
                    message: format!("{name} takes {n} argument(s), got {}", args.len()),
                })
            }
        };
        let code = |v: f64| v.clamp(0.0, 1000.0) as u16;
        match name.as_str() {
            "NetworkErrorRatio" => {
                arity(0)?;
                Ok((at, Metric::NetworkErrorRatio, false))
            }
            "ResponseCodeRatio" => {
                arity(4)?;
                Ok((
                    at,
                    Metric::ResponseCodeRatio {
                        from: code(args[0]),
                        to: code(args[1]),
                        dividend_from: code(args[2]),
                        dividend_to: code(args[3]),
                    },
                    false,
                ))
            }
            "LatencyAtQuantileMS" => {
                arity(1)?;
                Ok((at, Metric::LatencyAtQuantileMs(args[0]), true))
            }
            _ => Err(ParseError {
                position: at,
                message: format!("unsupported function {name:?}"),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed;
    impl Metrics for Fixed {
        fn network_error_ratio(&mut self) -> f64 {
            0.6
        }
        fn response_code_ratio(&mut self, from: u16, _: u16, _: u16, _: u16) -> f64 {
            if from == 500 {
                0.3
            } else {
                0.0
            }
        }
        fn latency_at_quantile_ms(&mut self, _: f64) -> i64 {
            120
        }
    }

    fn eval(text: &str) -> bool {
        Condition::parse(text).unwrap().evaluate(&mut Fixed)
    }

    #[test]
    fn evaluates_like_oxy() {
        assert!(eval("NetworkErrorRatio() > 0.5"));
        assert!(!eval("NetworkErrorRatio() < 0.5"));
        assert!(eval("LatencyAtQuantileMS(50.0) >= 120"));
        assert!(eval("ResponseCodeRatio(500, 600, 0, 600) > 0.25"));
        assert!(eval(
            "NetworkErrorRatio() < 0.1 || (LatencyAtQuantileMS(99.0) > 100 && NetworkErrorRatio() != 0.0)"
        ));
        assert!(!eval(
            "NetworkErrorRatio() > 0.5 && LatencyAtQuantileMS(50.0) == 7"
        ));
    }

    #[test]
    fn errors_say_where() {
        let e = Condition::parse("NetworkErrorRatio() > 1").unwrap_err();
        assert_eq!(e.position, 22, "{e}");
        let e = Condition::parse("LatencyAtQuantileMS(50.0) > 1.5").unwrap_err();
        assert_eq!(e.position, 28, "{e}");
        let e = Condition::parse("Nope() > 0.5").unwrap_err();
        assert_eq!(e.position, 0, "{e}");
        let e = Condition::parse("NetworkErrorRatio() >").unwrap_err();
        assert_eq!(e.position, 21, "{e}");
        let e = Condition::parse("NetworkErrorRatio() > 0.5 &&").unwrap_err();
        assert_eq!(e.position, 28, "{e}");
        assert!(Condition::parse("ResponseCodeRatio(500, 600) > 0.5").is_err());
        assert!(Condition::parse("NetworkErrorRatio() > 0.5 $").is_err());
    }
}

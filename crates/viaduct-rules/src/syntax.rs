//! Lexer and parser of the rule grammar shared by HTTP and TCP rules.
//!
//! Traefik parses rules as Go expressions; the accepted subset is matcher calls whose arguments
//! are Go string literals, combined with `&&`, `||`, `!` and parentheses (`&&` binds tighter).
//! Chains of `&&`/`||` are flattened into vectors so that a long rule does not build a deep tree;
//! only parentheses and `!` nest, and they are bounded by [`MAX_DEPTH`].

use crate::error::RuleError;

/// Deepest nesting of parentheses and `!` accepted, so hostile input cannot exhaust the stack.
pub const MAX_DEPTH: usize = 100;

/// A parsed rule before matcher names are resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Expr {
    Call(Call),
    Not(Box<Expr>),
    And(Vec<Expr>),
    Or(Vec<Expr>),
}

/// One matcher call as written: its name, where it starts, its unquoted arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Call {
    pub name: String,
    pub pos: usize,
    pub args: Vec<Arg>,
}

/// An unquoted string argument and the position of its opening quote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Arg {
    pub value: String,
    pub pos: usize,
}

/// Parses a rule into an expression tree; matcher names are not checked here.
pub(crate) fn parse(text: &str) -> Result<Expr, RuleError> {
    let mut parser = Parser {
        lexer: Lexer { src: text, pos: 0 },
        peeked: None,
        depth: 0,
    };
    if parser.peek()?.0 == Token::End {
        return Err(RuleError::Empty);
    }
    let expr = parser.parse_or()?;
    match parser.next()? {
        (Token::End, _) => Ok(expr),
        (token, pos) => Err(unexpected(&token, pos, "`&&`, `||` or end of rule")),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Ident(String),
    Str(String),
    LParen,
    RParen,
    Comma,
    AndAnd,
    OrOr,
    Bang,
    Other(char),
    End,
}

struct Lexer<'a> {
    src: &'a str,
    pos: usize,
}

struct Parser<'a> {
    lexer: Lexer<'a>,
    peeked: Option<(Token, usize)>,
    depth: usize,
}

impl Parser<'_> {
    fn peek(&mut self) -> Result<&(Token, usize), RuleError> {
        if self.peeked.is_none() {
            self.peeked = Some(self.lexer.next_token()?);
        }
        match &self.peeked {
            Some(peeked) => Ok(peeked),
            None => Err(RuleError::Empty),
        }
    }

    fn next(&mut self) -> Result<(Token, usize), RuleError> {
        match self.peeked.take() {
            Some(token) => Ok(token),
            None => self.lexer.next_token(),
        }
    }

    fn parse_or(&mut self) -> Result<Expr, RuleError> {
        let mut terms = vec![self.parse_and()?];
        while self.peek()?.0 == Token::OrOr {
            self.next()?;
            terms.push(self.parse_and()?);
        }
        Ok(collapse(terms, Expr::Or))
    }

    fn parse_and(&mut self) -> Result<Expr, RuleError> {
        let mut terms = vec![self.parse_unary()?];
        while self.peek()?.0 == Token::AndAnd {
            self.next()?;
            terms.push(self.parse_unary()?);
        }
        Ok(collapse(terms, Expr::And))
    }

    fn parse_unary(&mut self) -> Result<Expr, RuleError> {
        let (token, pos) = self.next()?;
        match token {
            Token::Bang => {
                self.enter(pos)?;
                let inner = self.parse_unary()?;
                self.depth -= 1;
                Ok(Expr::Not(Box::new(inner)))
            }
            Token::LParen => {
                self.enter(pos)?;
                let inner = self.parse_or()?;
                self.depth -= 1;
                match self.next()? {
                    (Token::RParen, _) => Ok(inner),
                    (token, pos) => Err(unexpected(&token, pos, "`)`")),
                }
            }
            Token::Ident(name) => self.parse_call(name, pos),
            token => Err(unexpected(&token, pos, "a matcher, `!` or `(`")),
        }
    }

    fn parse_call(&mut self, name: String, pos: usize) -> Result<Expr, RuleError> {
        match self.next()? {
            (Token::LParen, _) => {}
            (token, pos) => return Err(unexpected(&token, pos, "`(` after the matcher name")),
        }
        let mut args = Vec::new();
        loop {
            match self.next()? {
                (Token::RParen, _) => break,
                (Token::Str(value), pos) => args.push(Arg { value, pos }),
                (token, pos) => {
                    return Err(unexpected(
                        &token,
                        pos,
                        "a string argument in backticks or double quotes",
                    ))
                }
            }
            // Go accepts a trailing comma before the closing parenthesis.
            match self.next()? {
                (Token::Comma, _) => {}
                (Token::RParen, _) => break,
                (token, pos) => return Err(unexpected(&token, pos, "`,` or `)`")),
            }
        }
        Ok(Expr::Call(Call { name, pos, args }))
    }

    fn enter(&mut self, pos: usize) -> Result<(), RuleError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(RuleError::TooDeep {
                pos,
                max: MAX_DEPTH,
            });
        }
        Ok(())
    }
}

impl Lexer<'_> {
    fn next_token(&mut self) -> Result<(Token, usize), RuleError> {
        let rest = &self.src[self.pos..];
        let trimmed = rest.trim_start_matches([' ', '\t', '\n', '\r']);
        self.pos += rest.len() - trimmed.len();
        let start = self.pos;
        let Some(c) = trimmed.chars().next() else {
            return Ok((Token::End, start));
        };
        let two = trimmed.get(..2);
        let token = match c {
            '(' => self.single(Token::LParen),
            ')' => self.single(Token::RParen),
            ',' => self.single(Token::Comma),
            '!' => self.single(Token::Bang),
            '&' if two == Some("&&") => self.double(Token::AndAnd),
            '|' if two == Some("||") => self.double(Token::OrOr),
            '`' => self.raw_string(start)?,
            '"' => self.quoted_string(start)?,
            '\'' => return Err(RuleError::SingleQuote { pos: start }),
            c if c.is_alphanumeric() || c == '_' => {
                let len = trimmed
                    .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .unwrap_or(trimmed.len());
                self.pos += len;
                Token::Ident(trimmed[..len].to_owned())
            }
            other => Token::Other(other),
        };
        Ok((token, start))
    }

    fn single(&mut self, token: Token) -> Token {
        self.pos += 1;
        token
    }

    fn double(&mut self, token: Token) -> Token {
        self.pos += 2;
        token
    }

    /// A Go raw string: no escapes, carriage returns dropped.
    fn raw_string(&mut self, start: usize) -> Result<Token, RuleError> {
        let body = &self.src[start + 1..];
        let Some(end) = body.find('`') else {
            return Err(RuleError::UnterminatedString { pos: start });
        };
        self.pos = start + 1 + end + 1;
        Ok(Token::Str(body[..end].replace('\r', "")))
    }

    /// A Go interpreted string: backslash escapes, no raw newline.
    fn quoted_string(&mut self, start: usize) -> Result<Token, RuleError> {
        let bytes = self.src.as_bytes();
        let mut out = Vec::new();
        let mut i = start + 1;
        loop {
            match bytes.get(i) {
                None | Some(b'\n') => return Err(RuleError::UnterminatedString { pos: start }),
                Some(b'"') => break,
                Some(b'\\') => i = unescape(self.src, i, &mut out)?,
                Some(&b) => {
                    out.push(b);
                    i += 1;
                }
            }
        }
        self.pos = i + 1;
        String::from_utf8(out)
            .map(Token::Str)
            .map_err(|_| RuleError::InvalidUtf8 { pos: start })
    }
}

/// Decodes the escape starting at `at` (a backslash) into `out`; returns the index after it.
fn unescape(src: &str, at: usize, out: &mut Vec<u8>) -> Result<usize, RuleError> {
    let bytes = src.as_bytes();
    let invalid = |len: usize| RuleError::InvalidEscape {
        escape: src
            .get(at..(at + len).min(src.len()))
            .unwrap_or("\\")
            .to_owned(),
        pos: at,
    };
    let Some(&kind) = bytes.get(at + 1) else {
        return Err(invalid(1));
    };
    let simple = match kind {
        b'a' => Some(0x07),
        b'b' => Some(0x08),
        b'f' => Some(0x0c),
        b'n' => Some(b'\n'),
        b'r' => Some(b'\r'),
        b't' => Some(b'\t'),
        b'v' => Some(0x0b),
        b'\\' => Some(b'\\'),
        b'"' => Some(b'"'),
        _ => None,
    };
    if let Some(byte) = simple {
        out.push(byte);
        return Ok(at + 2);
    }
    let (digits, radix) = match kind {
        b'0'..=b'7' => (3, 8),
        b'x' => (2, 16),
        b'u' => (4, 16),
        b'U' => (8, 16),
        _ => return Err(invalid(2)),
    };
    let first = if radix == 8 { at + 1 } else { at + 2 };
    let text = src
        .get(first..first + digits)
        .filter(|t| t.chars().all(|c| c.is_digit(radix)))
        .ok_or_else(|| invalid(first + digits - at))?;
    let value = u32::from_str_radix(text, radix).map_err(|_| invalid(first + digits - at))?;
    if matches!(kind, b'u' | b'U') {
        let c = char::from_u32(value).ok_or_else(|| invalid(first + digits - at))?;
        let mut buf = [0; 4];
        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
    } else {
        // Octal and \x escapes denote single bytes, as in Go.
        let byte = u8::try_from(value).map_err(|_| invalid(first + digits - at))?;
        out.push(byte);
    }
    Ok(first + digits)
}

fn collapse(mut terms: Vec<Expr>, group: fn(Vec<Expr>) -> Expr) -> Expr {
    if terms.len() == 1 {
        if let Some(only) = terms.pop() {
            return only;
        }
    }
    group(terms)
}

fn unexpected(token: &Token, pos: usize, expected: &'static str) -> RuleError {
    let found = match token {
        Token::Ident(name) => format!("identifier `{name}`"),
        Token::Str(value) => format!("string {value:?}"),
        Token::LParen => "`(`".to_owned(),
        Token::RParen => "`)`".to_owned(),
        Token::Comma => "`,`".to_owned(),
        Token::AndAnd => "`&&`".to_owned(),
        Token::OrOr => "`||`".to_owned(),
        Token::Bang => "`!`".to_owned(),
        Token::Other(c) => format!("character `{c}`"),
        Token::End => "end of rule".to_owned(),
    };
    RuleError::Unexpected {
        found,
        pos,
        expected,
    }
}

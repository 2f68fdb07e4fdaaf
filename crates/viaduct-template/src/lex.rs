//! Splits template text into literal text and actions, then an action into tokens.

use crate::value::Value;

/// A piece of the template: literal text, or the inside of one `{{ … }}`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Chunk {
    Text(String),
    Action { tokens: Vec<Token>, line: usize },
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Token {
    /// A function name or a keyword (`if`, `range`, `end`, …).
    Ident(String),
    /// `.` (empty) or `.a.b`.
    Field(Vec<String>),
    /// `$` (empty name) or `$x`, with the fields that follow it.
    Var(String, Vec<String>),
    /// `.a.b` right after `)`: fields of a parenthesised pipeline's result.
    Chain(Vec<String>),
    Literal(Value),
    LeftParen,
    RightParen,
    Pipe,
    Declare,
    Assign,
    Comma,
}

/// Where and why lexing failed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LexError {
    pub line: usize,
    pub message: String,
}

/// Splits `text` at `{{` and `}}`, applying the `{{- ` and ` -}}` whitespace trimming and
/// dropping comments.
pub(crate) fn split(text: &str) -> Result<Vec<Chunk>, LexError> {
    let mut chunks = Vec::new();
    let mut rest = text;
    let mut line = 1;
    let mut trim_next = false;
    while let Some(open) = rest.find("{{") {
        let mut literal = &rest[..open];
        if trim_next {
            literal = literal.trim_start();
        }
        let inner_start = open + 2;
        let trim_before = rest[inner_start..].starts_with("- ")
            || rest[inner_start..].starts_with("-\t")
            || rest[inner_start..].starts_with("-\n")
            || rest[inner_start..].starts_with("-\r");
        if trim_before {
            literal = literal.trim_end();
        }
        if !literal.is_empty() {
            chunks.push(Chunk::Text(literal.to_string()));
        }
        line += rest[..inner_start].matches('\n').count();
        let body_start = inner_start + usize::from(trim_before);
        let action_line = line;
        let (inner, close_len) = find_close(&rest[body_start..]).ok_or_else(|| LexError {
            line: action_line,
            message: "unclosed action".to_string(),
        })?;
        let trim_after = inner.ends_with(" -")
            || inner.ends_with("\t-")
            || inner.ends_with("\n-")
            || inner.ends_with("\r-");
        let body = if trim_after {
            &inner[..inner.len() - 1]
        } else {
            inner
        };
        let trimmed = body.trim();
        if trimmed.starts_with("/*") {
            if !trimmed.ends_with("*/") {
                return Err(LexError {
                    line: action_line,
                    message: "unclosed comment".to_string(),
                });
            }
        } else {
            let tokens = tokenize(body, action_line)?;
            if tokens.is_empty() {
                return Err(LexError {
                    line: action_line,
                    message: "missing value for command".to_string(),
                });
            }
            chunks.push(Chunk::Action {
                tokens,
                line: action_line,
            });
        }
        line += inner.matches('\n').count();
        rest = &rest[body_start + inner.len() + close_len..];
        trim_next = trim_after;
    }
    let literal = if trim_next { rest.trim_start() } else { rest };
    if !literal.is_empty() {
        chunks.push(Chunk::Text(literal.to_string()));
    }
    Ok(chunks)
}

/// The action's inside up to its `}}`, skipping `}}` inside quoted strings and comments.
fn find_close(s: &str) -> Option<(&str, usize)> {
    let bytes = s.as_bytes();
    let mut i = 0;
    if s.trim_start().starts_with("/*") {
        let end = s.find("*/")? + 2;
        let close = s[end..].find("}}")? + end;
        return Some((&s[..close], 2));
    }
    while i < bytes.len() {
        match bytes[i] {
            b'"' | b'`' | b'\'' => {
                let quote = bytes[i];
                i += 1;
                while i < bytes.len() && bytes[i] != quote {
                    if bytes[i] == b'\\' && quote != b'`' {
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
            }
            b'}' if bytes.get(i + 1) == Some(&b'}') => return Some((&s[..i], 2)),
            _ => i += 1,
        }
    }
    None
}

fn tokenize(body: &str, line: usize) -> Result<Vec<Token>, LexError> {
    let err = |message: String| LexError { line, message };
    let chars: Vec<char> = body.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                tokens.push(Token::LeftParen);
                i += 1;
            }
            ')' => {
                tokens.push(Token::RightParen);
                i += 1;
                if chars.get(i) == Some(&'.') {
                    let (fields, next) = fields(&chars, i);
                    tokens.push(Token::Chain(fields));
                    i = next;
                }
            }
            '|' => {
                tokens.push(Token::Pipe);
                i += 1;
            }
            ',' => {
                tokens.push(Token::Comma);
                i += 1;
            }
            ':' if chars.get(i + 1) == Some(&'=') => {
                tokens.push(Token::Declare);
                i += 2;
            }
            '=' => {
                tokens.push(Token::Assign);
                i += 1;
            }
            '.' if !chars.get(i + 1).is_some_and(char::is_ascii_digit) => {
                let (fields, next) = fields(&chars, i);
                tokens.push(Token::Field(fields));
                i = next;
            }
            '$' => {
                let start = i + 1;
                let mut end = start;
                while end < chars.len() && is_word(chars[end]) {
                    end += 1;
                }
                let name: String = chars[start..end].iter().collect();
                let (fields, next) = if chars.get(end) == Some(&'.') {
                    fields(&chars, end)
                } else {
                    (Vec::new(), end)
                };
                tokens.push(Token::Var(name, fields));
                i = next;
            }
            '"' => {
                let (text, next) = quoted(&chars, i).map_err(err)?;
                tokens.push(Token::Literal(Value::String(text)));
                i = next;
            }
            '`' => {
                let end = chars[i + 1..]
                    .iter()
                    .position(|&c| c == '`')
                    .ok_or_else(|| err("unterminated raw quoted string".to_string()))?;
                let text: String = chars[i + 1..i + 1 + end].iter().collect();
                tokens.push(Token::Literal(Value::String(text)));
                i += end + 2;
            }
            '\'' => {
                let (text, next) = quoted(&chars, i).map_err(err)?;
                let mut it = text.chars();
                match (it.next(), it.next()) {
                    (Some(c), None) => {
                        tokens.push(Token::Literal(Value::Int(i64::from(u32::from(c)))))
                    }
                    _ => return Err(err("malformed character constant".to_string())),
                }
                i = next;
            }
            c if c.is_ascii_digit() || starts_number(c, chars.get(i + 1)) => {
                let start = i;
                i += 1;
                while let Some(&c) = chars.get(i) {
                    let exponent_sign = matches!(c, '+' | '-') && matches!(chars[i - 1], 'e' | 'E');
                    if c.is_ascii_alphanumeric() || c == '.' || c == '_' || exponent_sign {
                        i += 1;
                    } else {
                        break;
                    }
                }
                let text: String = chars[start..i].iter().collect();
                let value =
                    number(&text).ok_or_else(|| err(format!("bad number syntax: {text:?}")))?;
                tokens.push(Token::Literal(value));
            }
            c if is_word(c) => {
                let start = i;
                while i < chars.len() && is_word(chars[i]) {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                tokens.push(match word.as_str() {
                    "true" => Token::Literal(Value::Bool(true)),
                    "false" => Token::Literal(Value::Bool(false)),
                    "nil" => Token::Literal(Value::Nil),
                    _ => Token::Ident(word),
                });
            }
            other => return Err(err(format!("unexpected {other:?} in command"))),
        }
    }
    Ok(tokens)
}

/// A sign or a dot that begins a number (`-2`, `+1`, `.5`).
fn starts_number(c: char, next: Option<&char>) -> bool {
    matches!(c, '-' | '+' | '.') && next.is_some_and(char::is_ascii_digit)
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// `.a.b.c` starting at the first dot; a lone `.` is the empty chain.
fn fields(chars: &[char], mut i: usize) -> (Vec<String>, usize) {
    let mut out = Vec::new();
    while chars.get(i) == Some(&'.') {
        let start = i + 1;
        let mut end = start;
        while end < chars.len() && is_word(chars[end]) {
            end += 1;
        }
        if end == start {
            i = end;
            break;
        }
        out.push(chars[start..end].iter().collect());
        i = end;
    }
    (out, i)
}

/// A Go interpreted string starting at `chars[start]` (a `"` or `'`): its value and the index
/// after the closing quote.
fn quoted(chars: &[char], start: usize) -> Result<(String, usize), String> {
    let quote = chars[start];
    let mut out = String::new();
    let mut i = start + 1;
    loop {
        let Some(&c) = chars.get(i) else {
            return Err("unterminated quoted string".to_string());
        };
        i += 1;
        if c == quote {
            return Ok((out, i));
        }
        if c == '\n' {
            return Err("unterminated quoted string".to_string());
        }
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some(&e) = chars.get(i) else {
            return Err("unterminated quoted string".to_string());
        };
        i += 1;
        match e {
            'n' => out.push('\n'),
            't' => out.push('\t'),
            'r' => out.push('\r'),
            'a' => out.push('\u{7}'),
            'b' => out.push('\u{8}'),
            'f' => out.push('\u{c}'),
            'v' => out.push('\u{b}'),
            '\\' | '"' | '\'' => out.push(e),
            'x' | 'u' | 'U' => {
                let len = match e {
                    'x' => 2,
                    'u' => 4,
                    _ => 8,
                };
                let hex: String = chars.get(i..i + len).ok_or("bad escape")?.iter().collect();
                let code = u32::from_str_radix(&hex, 16).map_err(|_| "bad escape")?;
                out.push(char::from_u32(code).ok_or("bad escape")?);
                i += len;
            }
            other => return Err(format!("unknown escape sequence \\{other}")),
        }
    }
}

fn number(text: &str) -> Option<Value> {
    let clean = text.replace('_', "");
    let (negative, digits) = match clean.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, clean.strip_prefix('+').unwrap_or(&clean)),
    };
    let sign = if negative { -1 } else { 1 };
    let radix = [
        ("0x", 16),
        ("0X", 16),
        ("0o", 8),
        ("0O", 8),
        ("0b", 2),
        ("0B", 2),
    ]
    .iter()
    .find_map(|(p, r)| digits.strip_prefix(p).map(|d| (d, *r)));
    if let Some((d, r)) = radix {
        return i64::from_str_radix(d, r).ok().map(|n| Value::Int(sign * n));
    }
    if let Ok(n) = digits.parse::<i64>() {
        return Some(Value::Int(sign * n));
    }
    let float = digits.parse::<f64>().ok()?;
    Some(Value::Float(if negative { -float } else { float }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(chunks: &[Chunk]) -> Vec<String> {
        chunks
            .iter()
            .filter_map(|c| match c {
                Chunk::Text(t) => Some(t.clone()),
                Chunk::Action { .. } => None,
            })
            .collect()
    }

    #[test]
    fn trims_around_dashes_and_drops_comments() {
        let chunks = split("a  {{- 1 -}}  b {{/* note */}} c").unwrap();
        assert_eq!(texts(&chunks), ["a", "b ", " c"]);
        // `{{-3}}` is the number -3, not a trim marker.
        let chunks = split("x {{-3}}").unwrap();
        assert_eq!(texts(&chunks), ["x "]);
    }

    #[test]
    fn tokens() {
        let chunks = split(r#"{{ $x := printf "%d\n" (len .A.b).c | quote }}"#).unwrap();
        let Chunk::Action { tokens, .. } = &chunks[0] else {
            panic!("{chunks:?}")
        };
        assert_eq!(
            tokens,
            &[
                Token::Var("x".into(), vec![]),
                Token::Declare,
                Token::Ident("printf".into()),
                Token::Literal("%d\n".into()),
                Token::LeftParen,
                Token::Ident("len".into()),
                Token::Field(vec!["A".into(), "b".into()]),
                Token::RightParen,
                Token::Chain(vec!["c".into()]),
                Token::Pipe,
                Token::Ident("quote".into()),
            ]
        );
    }

    #[test]
    fn numbers_and_strings() {
        let chunks = split("{{ 0x1F -2 1.5 1e3 'a' `raw\\n` \"}}\" }}").unwrap();
        let Chunk::Action { tokens, .. } = &chunks[0] else {
            panic!()
        };
        assert_eq!(
            tokens,
            &[
                Token::Literal(Value::Int(31)),
                Token::Literal(Value::Int(-2)),
                Token::Literal(Value::Float(1.5)),
                Token::Literal(Value::Float(1000.0)),
                Token::Literal(Value::Int(97)),
                Token::Literal("raw\\n".into()),
                Token::Literal("}}".into()),
            ]
        );
    }

    #[test]
    fn lines_are_counted() {
        let chunks = split("a\nb\n{{ x }}\n{{\ny }}").unwrap();
        let lines: Vec<usize> = chunks
            .iter()
            .filter_map(|c| match c {
                Chunk::Action { line, .. } => Some(*line),
                Chunk::Text(_) => None,
            })
            .collect();
        assert_eq!(lines, [3, 4]);
        assert_eq!(split("a {{ x").unwrap_err().message, "unclosed action");
    }
}

//! The `defaultRule` template: the subset of Go's `text/template` that rules are written with.
//!
//! Supported: literal text; actions `{{ … }}` (with `{{-`/`-}}` trimming) holding a pipeline
//! whose operands are `.Name`, `.ContainerName`, `.Labels.key`, string literals, parenthesised
//! pipelines, and the functions `normalize`, `index .Labels "key"`, `lower`, `upper`; `x | f`
//! passes `x` as the last argument of `f`. Anything else is an error when the provider starts,
//! not when a container appears.

use std::collections::BTreeMap;

/// A parsed `defaultRule`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleTemplate {
    pieces: Vec<Piece>,
}

/// What a template is rendered with for one container.
#[derive(Debug, Clone, Copy)]
pub struct TemplateData<'a> {
    /// The service name (compose `service-project`, or the container name), normalized.
    pub name: &'a str,
    pub container_name: &'a str,
    pub labels: &'a BTreeMap<String, String>,
}

/// A template that does not parse, or an action that cannot be evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("defaultRule {template:?}: {reason}")]
pub struct TemplateError {
    pub template: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Action(Pipeline),
}

/// Commands separated by `|`; each one's result is the last argument of the next.
type Pipeline = Vec<Command>;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Command {
    Operand(Operand),
    Call(Function, Vec<Operand>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Operand {
    Name,
    ContainerName,
    Labels,
    Label(String),
    Literal(String),
    Nested(Pipeline),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Function {
    Normalize,
    Index,
    Lower,
    Upper,
}

/// An evaluated operand: a string, or the label map (only `index` accepts it).
enum Value<'a> {
    Text(String),
    Labels(&'a BTreeMap<String, String>),
}

impl RuleTemplate {
    pub fn parse(template: &str) -> Result<RuleTemplate, TemplateError> {
        let fail = |reason: String| TemplateError {
            template: template.to_owned(),
            reason,
        };
        let mut pieces = Vec::new();
        let mut rest = template;
        while let Some(open) = rest.find("{{") {
            let mut text = &rest[..open];
            let mut inner = &rest[open + 2..];
            if let Some(trimmed) = inner.strip_prefix('-') {
                text = text.trim_end();
                inner = trimmed;
            }
            let close = inner
                .find("}}")
                .ok_or_else(|| fail("unclosed action `{{`".into()))?;
            let mut action = &inner[..close];
            rest = &inner[close + 2..];
            if let Some(trimmed) = action.strip_suffix('-') {
                action = trimmed;
                rest = rest.trim_start();
            }
            if !text.is_empty() {
                pieces.push(Piece::Text(text.to_owned()));
            }
            let tokens = tokenize(action).map_err(fail)?;
            let mut position = 0;
            let pipeline = parse_pipeline(&tokens, &mut position).map_err(fail)?;
            if position != tokens.len() {
                return Err(fail(format!("unexpected {:?} in action", tokens[position])));
            }
            pieces.push(Piece::Action(pipeline));
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_owned()));
        }
        Ok(RuleTemplate { pieces })
    }

    pub fn render(&self, data: &TemplateData<'_>) -> Result<String, String> {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(text) => out.push_str(text),
                Piece::Action(pipeline) => match run(pipeline, data)? {
                    Value::Text(text) => out.push_str(&text),
                    Value::Labels(_) => return Err("`.Labels` cannot be printed".into()),
                },
            }
        }
        Ok(out)
    }
}

/// Traefik's `normalize`: every run of characters other than letters and digits becomes one
/// `-`, with none at either end.
pub fn normalize(name: &str) -> String {
    name.split(|c: char| !c.is_alphanumeric())
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join("-")
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Field(String),
    Ident(String),
    Str(String),
    Open,
    Close,
    Pipe,
}

fn tokenize(action: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut chars = action.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' | ')' | '|' => {
                chars.next();
                tokens.push(match c {
                    '(' => Token::Open,
                    ')' => Token::Close,
                    _ => Token::Pipe,
                });
            }
            '"' => {
                chars.next();
                let mut value = String::new();
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some('n') => value.push('\n'),
                            Some('t') => value.push('\t'),
                            Some(e @ ('\\' | '"')) => value.push(e),
                            _ => return Err("unsupported escape in string".into()),
                        },
                        Some(c) => value.push(c),
                        None => return Err("unterminated string".into()),
                    }
                }
                tokens.push(Token::Str(value));
            }
            '`' => {
                chars.next();
                let value: String = chars.by_ref().take_while(|&c| c != '`').collect();
                tokens.push(Token::Str(value));
            }
            '.' | 'a'..='z' | 'A'..='Z' | '_' => {
                let mut word = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_alphanumeric() || c == '_' || c == '.' {
                        word.push(c);
                        chars.next();
                    } else {
                        break;
                    }
                }
                tokens.push(match word.strip_prefix('.') {
                    Some(field) => Token::Field(field.to_owned()),
                    None => Token::Ident(word),
                });
            }
            other => return Err(format!("unexpected character {other:?} in action")),
        }
    }
    Ok(tokens)
}

fn parse_pipeline(tokens: &[Token], position: &mut usize) -> Result<Pipeline, String> {
    let mut pipeline = vec![parse_command(tokens, position)?];
    while tokens.get(*position) == Some(&Token::Pipe) {
        *position += 1;
        pipeline.push(parse_command(tokens, position)?);
    }
    Ok(pipeline)
}

fn parse_command(tokens: &[Token], position: &mut usize) -> Result<Command, String> {
    if let Some(Token::Ident(name)) = tokens.get(*position) {
        let function = match name.as_str() {
            "normalize" => Function::Normalize,
            "index" => Function::Index,
            "lower" => Function::Lower,
            "upper" => Function::Upper,
            other => {
                return Err(format!(
                    "unsupported function `{other}` (supported: normalize, index, lower, upper)"
                ))
            }
        };
        *position += 1;
        let mut args = Vec::new();
        while let Some(token) = tokens.get(*position) {
            if matches!(token, Token::Pipe | Token::Close) {
                break;
            }
            args.push(parse_operand(tokens, position)?);
        }
        return Ok(Command::Call(function, args));
    }
    parse_operand(tokens, position).map(Command::Operand)
}

fn parse_operand(tokens: &[Token], position: &mut usize) -> Result<Operand, String> {
    let token = tokens
        .get(*position)
        .ok_or("empty action or missing operand")?;
    *position += 1;
    match token {
        Token::Str(value) => Ok(Operand::Literal(value.clone())),
        Token::Field(field) => match field.split_once('.') {
            None if field == "Name" => Ok(Operand::Name),
            None if field == "ContainerName" => Ok(Operand::ContainerName),
            None if field == "Labels" => Ok(Operand::Labels),
            Some(("Labels", key)) if !key.is_empty() => Ok(Operand::Label(key.to_owned())),
            _ => Err(format!(
                "unknown field `.{field}` (known: .Name, .ContainerName, .Labels)"
            )),
        },
        Token::Open => {
            let inner = parse_pipeline(tokens, position)?;
            if tokens.get(*position) != Some(&Token::Close) {
                return Err("expected `)`".into());
            }
            *position += 1;
            Ok(Operand::Nested(inner))
        }
        Token::Ident(name) => Err(format!(
            "function `{name}` used as an argument; wrap it in parentheses"
        )),
        Token::Close | Token::Pipe => Err(format!("unexpected {token:?}")),
    }
}

fn run<'a>(pipeline: &Pipeline, data: &TemplateData<'a>) -> Result<Value<'a>, String> {
    let mut previous: Option<Value<'a>> = None;
    for command in pipeline {
        previous = Some(match command {
            Command::Operand(operand) => {
                if previous.is_some() {
                    return Err("only a function can follow `|`".into());
                }
                evaluate(operand, data)?
            }
            Command::Call(function, args) => {
                let mut values = args
                    .iter()
                    .map(|arg| evaluate(arg, data))
                    .collect::<Result<Vec<_>, _>>()?;
                values.extend(previous.take());
                call(*function, values)?
            }
        });
    }
    previous.ok_or_else(|| "empty action".into())
}

fn evaluate<'a>(operand: &Operand, data: &TemplateData<'a>) -> Result<Value<'a>, String> {
    Ok(match operand {
        Operand::Name => Value::Text(data.name.to_owned()),
        Operand::ContainerName => Value::Text(data.container_name.to_owned()),
        Operand::Labels => Value::Labels(data.labels),
        Operand::Label(key) => Value::Text(data.labels.get(key).cloned().unwrap_or_default()),
        Operand::Literal(text) => Value::Text(text.clone()),
        Operand::Nested(pipeline) => run(pipeline, data)?,
    })
}

fn call(function: Function, args: Vec<Value<'_>>) -> Result<Value<'_>, String> {
    match (function, args.as_slice()) {
        (Function::Index, [Value::Labels(labels), Value::Text(key)]) => {
            // A missing key gives the map's zero value, as in Go.
            Ok(Value::Text(labels.get(key).cloned().unwrap_or_default()))
        }
        (Function::Index, _) => Err("`index` takes `.Labels` and a key".into()),
        (Function::Normalize, [Value::Text(text)]) => Ok(Value::Text(normalize(text))),
        (Function::Lower, [Value::Text(text)]) => Ok(Value::Text(text.to_lowercase())),
        (Function::Upper, [Value::Text(text)]) => Ok(Value::Text(text.to_uppercase())),
        (other, _) => Err(format!("`{other:?}` takes one string argument").to_lowercase()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(template: &str) -> Result<String, String> {
        let labels: BTreeMap<String, String> = [("app.domain", "example.org"), ("tier", "Web")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let data = TemplateData {
            name: "web-shop",
            container_name: "shop_web_1",
            labels: &labels,
        };
        RuleTemplate::parse(template)
            .map_err(|e| e.reason)?
            .render(&data)
    }

    #[test]
    fn traefik_default_and_common_forms() {
        assert_eq!(
            render("Host(`{{ normalize .Name }}`)").unwrap(),
            "Host(`web-shop`)"
        );
        assert_eq!(
            render("Host(`{{ .ContainerName }}.{{ index .Labels \"app.domain\" }}`)").unwrap(),
            "Host(`shop_web_1.example.org`)"
        );
        assert_eq!(
            render("Host(`{{ normalize .ContainerName }}.local`)").unwrap(),
            "Host(`shop-web-1.local`)"
        );
        assert_eq!(render("{{ .Labels.tier | lower }}").unwrap(), "web");
        assert_eq!(
            render("{{ normalize (index .Labels `missing`) }}x").unwrap(),
            "x"
        );
        assert_eq!(render("a {{- .Name -}} b").unwrap(), "aweb-shopb");
        assert_eq!(render("PathPrefix(`/`)").unwrap(), "PathPrefix(`/`)");
    }

    #[test]
    fn unsupported_constructs_are_errors() {
        for (template, reason) in [
            ("{{ if .Name }}x{{ end }}", "unsupported function `if`"),
            ("{{ .Image }}", "unknown field `.Image`"),
            ("Host(`{{ .Name `)", "unclosed action"),
            ("{{ }}", "empty action"),
            ("{{ printf \"%s\" .Name }}", "unsupported function `printf`"),
        ] {
            let err = RuleTemplate::parse(template).unwrap_err();
            assert!(err.reason.contains(reason), "{template}: {err}");
        }
        assert!(render("{{ .Labels }}").is_err());
        assert!(render("{{ index .Name \"x\" }}").is_err());
    }

    #[test]
    fn normalize_matches_traefik() {
        assert_eq!(normalize("/my_app--1."), "my-app-1");
        assert_eq!(normalize("web_shop"), "web-shop");
    }
}

//! Builds the tree of a template from its chunks: control structures, pipelines, commands.

use crate::funcs;
use crate::lex::{Chunk, Token};
use crate::value::Value;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    Text(String),
    /// `{{ pipeline }}`: writes the result, unless the pipeline declares or assigns variables.
    Output(Pipeline),
    If(Conditional),
    With(Conditional),
    Range(Range),
    Break(usize),
    Continue(usize),
}

/// `if`/`with` with their `else if`/`else with` branches.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Conditional {
    pub branches: Vec<(Pipeline, Vec<Node>)>,
    pub otherwise: Vec<Node>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Range {
    pub pipeline: Pipeline,
    pub body: Vec<Node>,
    pub otherwise: Vec<Node>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Pipeline {
    pub line: usize,
    /// Variables declared (`$x :=`, `$i, $e :=`) or assigned (`$x =`).
    pub variables: Vec<String>,
    pub assign: bool,
    pub commands: Vec<Command>,
}

/// Operands separated by spaces; a function name first makes it a call.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Command {
    pub args: Vec<Arg>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Arg {
    Function(String),
    Field(Vec<String>),
    Variable(String, Vec<String>),
    Literal(Value),
    Nested(Box<Pipeline>, Vec<String>),
}

/// Where and why parsing failed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ParseError {
    pub line: usize,
    pub message: String,
}

pub(crate) fn parse(chunks: Vec<Chunk>) -> Result<Vec<Node>, ParseError> {
    let mut parser = Parser {
        chunks: chunks.into_iter(),
        loops: 0,
    };
    let (nodes, end) = parser.block()?;
    match end {
        None => Ok(nodes),
        Some(end) => Err(ParseError {
            line: end.line,
            message: format!("unexpected {{{{{}}}}}", end.keyword),
        }),
    }
}

/// The action that closed a block: `end`, or `else` with what follows it.
struct BlockEnd {
    keyword: &'static str,
    rest: Vec<Token>,
    line: usize,
}

struct Parser {
    chunks: std::vec::IntoIter<Chunk>,
    /// How many `range` bodies enclose the current position (`break`/`continue` need one).
    loops: usize,
}

impl Parser {
    /// Nodes up to an `{{end}}` or `{{else …}}` (returned), or to the end of the text (`None`).
    fn block(&mut self) -> Result<(Vec<Node>, Option<BlockEnd>), ParseError> {
        let mut nodes = Vec::new();
        while let Some(chunk) = self.chunks.next() {
            let (tokens, line) = match chunk {
                Chunk::Text(text) => {
                    nodes.push(Node::Text(text));
                    continue;
                }
                Chunk::Action { tokens, line } => (tokens, line),
            };
            let keyword = match tokens.first() {
                Some(Token::Ident(word)) => word.as_str(),
                _ => "",
            };
            let rest = tokens[1.min(tokens.len())..].to_vec();
            match keyword {
                "end" | "else" => {
                    let keyword = if keyword == "end" { "end" } else { "else" };
                    if keyword == "end" && !rest.is_empty() {
                        return Err(error(line, "unexpected tokens after end"));
                    }
                    return Ok((
                        nodes,
                        Some(BlockEnd {
                            keyword,
                            rest,
                            line,
                        }),
                    ));
                }
                "if" => nodes.push(Node::If(self.conditional("if", rest, line)?)),
                "with" => nodes.push(Node::With(self.conditional("with", rest, line)?)),
                "range" => nodes.push(Node::Range(self.range(rest, line)?)),
                "break" | "continue" => {
                    if self.loops == 0 {
                        return Err(error(
                            line,
                            &format!("{{{{{keyword}}}}} outside {{{{range}}}}"),
                        ));
                    }
                    if !rest.is_empty() {
                        return Err(error(line, &format!("unexpected tokens after {keyword}")));
                    }
                    nodes.push(if keyword == "break" {
                        Node::Break(line)
                    } else {
                        Node::Continue(line)
                    });
                }
                "define" | "template" | "block" => {
                    return Err(error(
                        line,
                        &format!("{{{{{keyword}}}}} is not supported in configuration templates"),
                    ))
                }
                _ => nodes.push(Node::Output(pipeline(tokens, line, true)?)),
            }
        }
        Ok((nodes, None))
    }

    fn conditional(
        &mut self,
        keyword: &str,
        tokens: Vec<Token>,
        line: usize,
    ) -> Result<Conditional, ParseError> {
        let mut branches = Vec::new();
        let mut condition = pipeline(tokens, line, true)?;
        loop {
            let (body, end) = self.block()?;
            branches.push((condition, body));
            let end = end.ok_or_else(|| error(line, &format!("unexpected EOF in {keyword}")))?;
            if end.keyword == "end" {
                return Ok(Conditional {
                    branches,
                    otherwise: Vec::new(),
                });
            }
            // `else`, `else if …` or `else with …` (the latter only after the same keyword).
            match end.rest.first() {
                None => {
                    let (otherwise, close) = self.block()?;
                    return match close {
                        Some(BlockEnd { keyword: "end", .. }) => Ok(Conditional {
                            branches,
                            otherwise,
                        }),
                        Some(other) => Err(error(other.line, "expected end; found else")),
                        None => Err(error(line, &format!("unexpected EOF in {keyword}"))),
                    };
                }
                Some(Token::Ident(word)) if word == keyword => {
                    condition = pipeline(end.rest[1..].to_vec(), end.line, true)?;
                }
                Some(_) => return Err(error(end.line, "unexpected tokens after else")),
            }
        }
    }

    fn range(&mut self, tokens: Vec<Token>, line: usize) -> Result<Range, ParseError> {
        let pipeline = pipeline(tokens, line, false)?;
        if pipeline.variables.len() > 2 {
            return Err(error(line, "too many declarations in range"));
        }
        self.loops += 1;
        let block = self.block();
        self.loops -= 1;
        let (body, end) = block?;
        let end = end.ok_or_else(|| error(line, "unexpected EOF in range"))?;
        if end.keyword == "end" {
            return Ok(Range {
                pipeline,
                body,
                otherwise: Vec::new(),
            });
        }
        if !end.rest.is_empty() {
            return Err(error(end.line, "unexpected tokens after else"));
        }
        let (otherwise, close) = self.block()?;
        match close {
            Some(BlockEnd { keyword: "end", .. }) => Ok(Range {
                pipeline,
                body,
                otherwise,
            }),
            _ => Err(error(line, "expected end after range's else")),
        }
    }
}

fn error(line: usize, message: &str) -> ParseError {
    ParseError {
        line,
        message: message.to_string(),
    }
}

/// `[$a[, $b] (:=|=)] command { | command }`. `single_declaration` is false only for `range`,
/// which may declare two variables.
fn pipeline(
    tokens: Vec<Token>,
    line: usize,
    single_declaration: bool,
) -> Result<Pipeline, ParseError> {
    let all = tokens;
    let mut variables = Vec::new();
    let mut assign = false;
    // A declaration: variables separated by commas, then `:=` or `=`.
    let mut start = 0;
    let declaration_end = all
        .iter()
        .position(|t| matches!(t, Token::Declare | Token::Assign));
    if let Some(end) = declaration_end {
        let names = &all[..end];
        let well_formed = names.iter().enumerate().all(|(i, t)| match (i % 2, t) {
            (0, Token::Var(_, fields)) => fields.is_empty(),
            (1, Token::Comma) => true,
            _ => false,
        }) && names.len() % 2 == 1;
        if well_formed {
            variables = names
                .iter()
                .filter_map(|t| match t {
                    Token::Var(name, _) => Some(name.clone()),
                    _ => None,
                })
                .collect();
            assign = matches!(all[end], Token::Assign);
            if single_declaration && variables.len() > 1 {
                return Err(error(line, "too many declarations"));
            }
            start = end + 1;
        }
    }
    let mut stream = all.into_iter().skip(start).peekable();
    let commands = commands(&mut stream, line)?;
    if stream.next().is_some() {
        return Err(error(line, "unexpected right paren"));
    }
    if commands.is_empty() {
        return Err(error(line, "missing value for command"));
    }
    Ok(Pipeline {
        line,
        variables,
        assign,
        commands,
    })
}

/// Commands up to the end of the tokens or an unmatched `)` (left in the stream).
fn commands<I: Iterator<Item = Token>>(
    stream: &mut std::iter::Peekable<I>,
    line: usize,
) -> Result<Vec<Command>, ParseError> {
    let mut parsed = Vec::new();
    let mut args = Vec::new();
    loop {
        let token = match stream.peek() {
            None | Some(Token::RightParen) => break,
            Some(_) => stream.next(),
        };
        let Some(token) = token else { break };
        let arg = match token {
            Token::Pipe => {
                if args.is_empty() {
                    return Err(error(line, "missing command before |"));
                }
                parsed.push(Command {
                    args: std::mem::take(&mut args),
                });
                continue;
            }
            Token::Ident(name) => {
                if !funcs::exists(&name) {
                    return Err(error(line, &format!("function {name:?} not defined")));
                }
                Arg::Function(name)
            }
            Token::Field(fields) => Arg::Field(fields),
            Token::Var(name, fields) => Arg::Variable(name, fields),
            Token::Literal(value) => Arg::Literal(value),
            Token::LeftParen => {
                let inner = commands(stream, line)?;
                if stream.next() != Some(Token::RightParen) {
                    return Err(error(line, "unclosed left paren"));
                }
                if inner.is_empty() {
                    return Err(error(line, "missing value for parenthesized pipeline"));
                }
                let chain = match stream.peek() {
                    Some(Token::Chain(_)) => match stream.next() {
                        Some(Token::Chain(fields)) => fields,
                        _ => Vec::new(),
                    },
                    _ => Vec::new(),
                };
                Arg::Nested(
                    Box::new(Pipeline {
                        line,
                        variables: Vec::new(),
                        assign: false,
                        commands: inner,
                    }),
                    chain,
                )
            }
            Token::Chain(_) | Token::RightParen => {
                return Err(error(line, "unexpected right paren"))
            }
            Token::Declare | Token::Assign | Token::Comma => {
                return Err(error(line, "unexpected declaration or comma"))
            }
        };
        args.push(arg);
    }
    if !args.is_empty() {
        parsed.push(Command { args });
    } else if !parsed.is_empty() {
        return Err(error(line, "missing command after |"));
    }
    Ok(parsed)
}

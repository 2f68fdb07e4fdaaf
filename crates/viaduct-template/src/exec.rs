//! Runs a parsed template over a data value.

use crate::funcs;
use crate::parse::{Arg, Command, Conditional, Node, Pipeline, Range};
use crate::value::Value;

/// Why running a template failed, and on which line.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ExecError {
    pub line: usize,
    pub message: String,
}

/// What a block's execution asks of the enclosing `range`.
enum Flow {
    Normal,
    Break,
    Continue,
}

pub(crate) struct Exec {
    variables: Vec<(String, Value)>,
    out: String,
}

/// Ranging over more than this many items is refused: configuration text has no use for it, and
/// `until 100000000` must not take the process's memory.
const MAX_ITERATIONS: usize = 100_000;
/// Output beyond this is refused for the same reason.
const MAX_OUTPUT: usize = 64 << 20;

impl Exec {
    /// Runs `nodes` with `root` as both `.` and `$`.
    pub(crate) fn run(nodes: &[Node], root: &Value) -> Result<String, ExecError> {
        let mut exec = Exec {
            variables: vec![(String::new(), root.clone())],
            out: String::new(),
        };
        exec.block(nodes, root)?;
        Ok(exec.out)
    }

    fn block(&mut self, nodes: &[Node], dot: &Value) -> Result<Flow, ExecError> {
        let mark = self.variables.len();
        let flow = self.nodes(nodes, dot);
        self.variables.truncate(mark);
        flow
    }

    fn nodes(&mut self, nodes: &[Node], dot: &Value) -> Result<Flow, ExecError> {
        for node in nodes {
            let flow = match node {
                Node::Text(text) => {
                    self.write(text, 0)?;
                    Flow::Normal
                }
                Node::Output(pipeline) => {
                    let value = self.pipeline(pipeline, dot)?;
                    if pipeline.variables.is_empty() {
                        let text = match value {
                            // A missing map key, as Go prints it.
                            Value::Nil => "<no value>".to_string(),
                            other => other.to_text(),
                        };
                        self.write(&text, pipeline.line)?;
                    }
                    Flow::Normal
                }
                Node::If(conditional) => self.conditional(conditional, dot, false)?,
                Node::With(conditional) => self.conditional(conditional, dot, true)?,
                Node::Range(range) => self.range(range, dot)?,
                Node::Break(_) => Flow::Break,
                Node::Continue(_) => Flow::Continue,
            };
            if !matches!(flow, Flow::Normal) {
                return Ok(flow);
            }
        }
        Ok(Flow::Normal)
    }

    fn write(&mut self, text: &str, line: usize) -> Result<(), ExecError> {
        if self.out.len() + text.len() > MAX_OUTPUT {
            return Err(ExecError {
                line,
                message: format!("output larger than {MAX_OUTPUT} bytes"),
            });
        }
        self.out.push_str(text);
        Ok(())
    }

    fn conditional(
        &mut self,
        conditional: &Conditional,
        dot: &Value,
        with: bool,
    ) -> Result<Flow, ExecError> {
        for (condition, body) in &conditional.branches {
            let mark = self.variables.len();
            let value = self.pipeline(condition, dot)?;
            if value.is_true() {
                let inner = if with { &value } else { dot };
                let flow = self.block(body, inner);
                self.variables.truncate(mark);
                return flow;
            }
            self.variables.truncate(mark);
        }
        self.block(&conditional.otherwise, dot)
    }

    fn range(&mut self, range: &Range, dot: &Value) -> Result<Flow, ExecError> {
        let mark = self.variables.len();
        let over = self.pipeline_value(&range.pipeline, dot)?;
        let items: Vec<(Value, Value)> = match over {
            Value::List(items) => items
                .into_iter()
                .enumerate()
                .map(|(i, v)| (Value::Int(i as i64), v))
                .collect(),
            Value::Map(map) => map
                .into_iter()
                .map(|(k, v)| (Value::String(k), v))
                .collect(),
            Value::StringMap(map) => map
                .into_iter()
                .map(|(k, v)| (Value::String(k), Value::String(v)))
                .collect(),
            Value::Int(n) => (0..n.max(0))
                .map(|i| (Value::Int(i), Value::Int(i)))
                .collect(),
            Value::Nil => Vec::new(),
            other => {
                return Err(ExecError {
                    line: range.pipeline.line,
                    message: format!("range can't iterate over {}", other.kind()),
                })
            }
        };
        if items.len() > MAX_ITERATIONS {
            return Err(ExecError {
                line: range.pipeline.line,
                message: format!(
                    "range over {} items (at most {MAX_ITERATIONS})",
                    items.len()
                ),
            });
        }
        if items.is_empty() {
            return self.block(&range.otherwise, dot);
        }
        for (key, item) in items {
            self.variables.truncate(mark);
            match range.pipeline.variables.as_slice() {
                [] => {}
                [element] => self.variables.push((element.clone(), item.clone())),
                [index, element, ..] => {
                    self.variables.push((index.clone(), key));
                    self.variables.push((element.clone(), item.clone()));
                }
            }
            match self.block(&range.body, &item)? {
                Flow::Break => break,
                Flow::Normal | Flow::Continue => {}
            }
        }
        self.variables.truncate(mark);
        Ok(Flow::Normal)
    }

    /// Evaluates a pipeline and binds its variables (in the current scope).
    fn pipeline(&mut self, pipeline: &Pipeline, dot: &Value) -> Result<Value, ExecError> {
        let value = self.pipeline_value(pipeline, dot)?;
        for name in &pipeline.variables {
            if pipeline.assign {
                let slot = self
                    .variables
                    .iter_mut()
                    .rev()
                    .find(|(n, _)| n == name)
                    .ok_or_else(|| ExecError {
                        line: pipeline.line,
                        message: format!("undefined variable: ${name}"),
                    })?;
                slot.1 = value.clone();
            } else {
                self.variables.push((name.clone(), value.clone()));
            }
        }
        Ok(value)
    }

    /// The pipeline's value, without binding its variables (`range` binds per item).
    fn pipeline_value(&mut self, pipeline: &Pipeline, dot: &Value) -> Result<Value, ExecError> {
        let mut previous = None;
        for command in &pipeline.commands {
            previous = Some(self.command(command, dot, previous, pipeline.line)?);
        }
        Ok(previous.unwrap_or_default())
    }

    fn command(
        &mut self,
        command: &Command,
        dot: &Value,
        previous: Option<Value>,
        line: usize,
    ) -> Result<Value, ExecError> {
        let fail = |message: String| ExecError { line, message };
        let Some((first, rest)) = command.args.split_first() else {
            return Err(fail("empty command".to_string()));
        };
        let Arg::Function(name) = first else {
            if !rest.is_empty() || previous.is_some() {
                return Err(fail(format!(
                    "can't give argument to non-function {}",
                    describe(first)
                )));
            }
            return self.arg(first, dot, line);
        };
        // `and` and `or` stop at the first argument that decides, as Go's do.
        if name == "and" || name == "or" {
            let mut last = Value::Nil;
            let count = rest.len() + usize::from(previous.is_some());
            if count == 0 {
                return Err(fail(format!(
                    "wrong number of args for {name}: want at least 1 got 0"
                )));
            }
            for arg in rest {
                last = self.arg(arg, dot, line)?;
                if last.is_true() == (name == "or") {
                    return Ok(last);
                }
            }
            return Ok(previous.unwrap_or(last));
        }
        let mut args = Vec::with_capacity(rest.len() + 1);
        for arg in rest {
            args.push(self.arg(arg, dot, line)?);
        }
        args.extend(previous);
        funcs::call(name, args).map_err(|e| fail(format!("error calling {name}: {e}")))
    }

    fn arg(&mut self, arg: &Arg, dot: &Value, line: usize) -> Result<Value, ExecError> {
        match arg {
            Arg::Literal(value) => Ok(value.clone()),
            Arg::Field(fields) => fields_of(dot, fields, line),
            Arg::Variable(name, fields) => {
                let value = self
                    .variables
                    .iter()
                    .rev()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.clone())
                    .ok_or_else(|| ExecError {
                        line,
                        message: format!("undefined variable: ${name}"),
                    })?;
                fields_of(&value, fields, line)
            }
            // A function in argument position is called without arguments.
            Arg::Function(name) => funcs::call(name, Vec::new()).map_err(|e| ExecError {
                line,
                message: format!("error calling {name}: {e}"),
            }),
            Arg::Nested(pipeline, fields) => {
                let mark = self.variables.len();
                let value = self.pipeline(pipeline, dot);
                self.variables.truncate(mark);
                fields_of(&value?, fields, line)
            }
        }
    }
}

/// `.a.b` of a value, each step as Go takes it (see [`Value::field`]).
fn fields_of(value: &Value, fields: &[String], line: usize) -> Result<Value, ExecError> {
    let mut current = value.clone();
    for field in fields {
        current = current
            .field(field)
            .map_err(|message| ExecError { line, message })?;
    }
    Ok(current)
}

fn describe(arg: &Arg) -> String {
    match arg {
        Arg::Field(fields) => format!(".{}", fields.join(".")),
        Arg::Variable(name, _) => format!("${name}"),
        Arg::Literal(value) => value.to_string(),
        Arg::Nested(..) => "(pipeline)".to_string(),
        Arg::Function(name) => name.clone(),
    }
}

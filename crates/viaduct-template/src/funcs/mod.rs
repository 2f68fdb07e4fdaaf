//! The functions a template can call: Go's built-ins, the sprig functions configuration files
//! use, and Traefik's `normalize` and `split`.

use std::collections::BTreeMap;

use crate::printf::sprintf;
use crate::value::Value;

mod collections;
mod strings;

pub(crate) type Args = Vec<Value>;
pub(crate) type Result = std::result::Result<Value, String>;

/// Every function name a template may call; others are refused when the template is parsed,
/// as Go does.
const NAMES: &[&str] = &[
    // Go's text/template built-ins.
    "and",
    "or",
    "not",
    "len",
    "index",
    "slice",
    "print",
    "printf",
    "println",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "urlquery",
    // Traefik's additions.
    "normalize",
    "split",
    // sprig: environment and defaults.
    "env",
    "expandenv",
    "default",
    "empty",
    "coalesce",
    "ternary",
    "required",
    "fail",
    // sprig: strings.
    "quote",
    "squote",
    "upper",
    "lower",
    "title",
    "trim",
    "trimAll",
    "trimPrefix",
    "trimSuffix",
    "replace",
    "contains",
    "hasPrefix",
    "hasSuffix",
    "repeat",
    "nospace",
    "indent",
    "nindent",
    "cat",
    "substr",
    "trunc",
    "toString",
    "toStrings",
    "b64enc",
    "b64dec",
    "splitList",
    "join",
    "sortAlpha",
    "toJson",
    "toPrettyJson",
    "fromJson",
    // sprig: lists and dictionaries.
    "list",
    "first",
    "last",
    "rest",
    "initial",
    "append",
    "prepend",
    "concat",
    "has",
    "uniq",
    "without",
    "dict",
    "get",
    "hasKey",
    "keys",
    "values",
    "pluck",
    "merge",
    // sprig: numbers.
    "add",
    "add1",
    "sub",
    "mul",
    "div",
    "mod",
    "max",
    "min",
    "int",
    "int64",
    "float64",
    "atoi",
    "until",
    "untilStep",
    "seq",
];

pub(crate) fn exists(name: &str) -> bool {
    NAMES.contains(&name)
}

pub(crate) fn call(name: &str, args: Args) -> Result {
    match name {
        "not" => {
            let [v] = exactly::<1>(name, args)?;
            Ok(Value::Bool(!v.is_true()))
        }
        "len" => {
            let [v] = exactly::<1>(name, args)?;
            match v {
                Value::String(s) => Ok(Value::Int(s.len() as i64)),
                Value::List(l) => Ok(Value::Int(l.len() as i64)),
                Value::Map(m) => Ok(Value::Int(m.len() as i64)),
                Value::StringMap(m) => Ok(Value::Int(m.len() as i64)),
                other => Err(format!("len of type {}", other.kind())),
            }
        }
        "index" => index(args),
        "slice" => collections::slice(args),
        "print" => Ok(Value::String(sprint(&args))),
        "println" => {
            let words: Vec<String> = args.iter().map(Value::to_text).collect();
            Ok(Value::String(words.join(" ") + "\n"))
        }
        "printf" => {
            let mut args = args.into_iter();
            let format = args.next().ok_or("printf needs a format")?;
            Ok(Value::String(sprintf(
                &format.to_text(),
                &args.collect::<Vec<_>>(),
            )))
        }
        "eq" => {
            let (first, rest) = args
                .split_first()
                .ok_or("missing argument for comparison")?;
            if rest.is_empty() {
                return Err("missing argument for comparison".to_string());
            }
            let mut found = false;
            for other in rest {
                found |= equal(first, other)?;
            }
            Ok(Value::Bool(found))
        }
        "ne" => {
            let [a, b] = exactly::<2>(name, args)?;
            Ok(Value::Bool(!equal(&a, &b)?))
        }
        "lt" | "le" | "gt" | "ge" => {
            let [a, b] = exactly::<2>(name, args)?;
            let ordering = compare(&a, &b)?;
            Ok(Value::Bool(match name {
                "lt" => ordering.is_lt(),
                "le" => ordering.is_le(),
                "gt" => ordering.is_gt(),
                _ => ordering.is_ge(),
            }))
        }
        "urlquery" => Ok(Value::String(url_query(&sprint(&args)))),
        "normalize" => {
            let [v] = exactly::<1>(name, args)?;
            Ok(Value::String(normalize(&v.to_text())))
        }
        // Traefik's `split` is Go's `strings.Split(s, sep)`, not sprig's.
        "split" => {
            let [s, sep] = exactly::<2>(name, args)?;
            Ok(split(&s.to_text(), &sep.to_text()))
        }
        "splitList" => {
            let [sep, s] = exactly::<2>(name, args)?;
            Ok(split(&s.to_text(), &sep.to_text()))
        }
        _ => strings::sprig(name, args),
    }
}

/// Go's `fmt.Sprint`: a space between two operands when neither is a string.
fn sprint(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, arg) in args.iter().enumerate() {
        let is_string = matches!(arg, Value::String(_));
        if i > 0 && !is_string && !matches!(args[i - 1], Value::String(_)) {
            out.push(' ');
        }
        out.push_str(&arg.to_text());
    }
    out
}

fn url_query(s: &str) -> String {
    let mut out = String::new();
    for byte in s.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(byte))
            }
            b' ' => out.push('+'),
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

fn index(args: Args) -> Result {
    let mut args = args.into_iter();
    let mut current = args.next().ok_or("index of nothing")?;
    for key in args {
        current = match (current, key) {
            (Value::List(items), key) => {
                let i = key.to_int();
                let len = items.len();
                usize::try_from(i)
                    .ok()
                    .and_then(|i| items.into_iter().nth(i))
                    .ok_or_else(|| format!("index out of range: {i} (length {len})"))?
            }
            (map @ (Value::Map(_) | Value::StringMap(_)), key) => map.field(&key.to_text())?,
            (Value::Nil, _) => return Err("index of untyped nil".to_string()),
            (other, _) => return Err(format!("can't index item of type {}", other.kind())),
        };
    }
    Ok(current)
}

fn equal(a: &Value, b: &Value) -> std::result::Result<bool, String> {
    Ok(match (a, b) {
        (Value::Int(x), Value::Float(y)) | (Value::Float(y), Value::Int(x)) => *x as f64 == *y,
        (Value::List(_) | Value::Map(_) | Value::StringMap(_) | Value::Record(_), _)
        | (_, Value::List(_) | Value::Map(_) | Value::StringMap(_) | Value::Record(_)) => {
            return Err("uncomparable type".to_string())
        }
        (Value::Nil, Value::Nil) => true,
        (Value::Nil, _) | (_, Value::Nil) => false,
        (x, y) if x.kind() != y.kind() => {
            return Err("incompatible types for comparison".to_string())
        }
        (x, y) => x == y,
    })
}

fn compare(a: &Value, b: &Value) -> std::result::Result<std::cmp::Ordering, String> {
    match (a, b) {
        (Value::String(x), Value::String(y)) => Ok(x.cmp(y)),
        (Value::Int(x), Value::Int(y)) => Ok(x.cmp(y)),
        (Value::Int(_) | Value::Float(_), Value::Int(_) | Value::Float(_)) => a
            .to_float()
            .partial_cmp(&b.to_float())
            .ok_or_else(|| "NaN in comparison".to_string()),
        _ => Err(format!(
            "incompatible types for comparison: {} and {}",
            a.kind(),
            b.kind()
        )),
    }
}

/// Traefik's `provider.Normalize`: runs of characters other than letters and digits become
/// one `-`, and none leads or trails.
pub fn normalize(name: &str) -> String {
    name.split(|c: char| !c.is_alphanumeric())
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join("-")
}

/// Go's `strings.Split`: an empty separator splits between characters.
fn split(s: &str, sep: &str) -> Value {
    let parts: Vec<Value> = if sep.is_empty() {
        s.chars().map(|c| Value::String(c.to_string())).collect()
    } else {
        s.split(sep).map(Value::from).collect()
    };
    Value::List(parts)
}

pub(crate) fn list_of(v: Value) -> std::result::Result<Vec<Value>, String> {
    match v {
        Value::List(items) => Ok(items),
        Value::Nil => Ok(Vec::new()),
        other => Err(format!("cannot use type {} as a list", other.kind())),
    }
}

pub(crate) fn map_of(v: Value) -> std::result::Result<BTreeMap<String, Value>, String> {
    match v {
        Value::Map(map) => Ok(map),
        Value::StringMap(map) => Ok(map
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect()),
        Value::Nil => Ok(BTreeMap::new()),
        other => Err(format!("cannot use type {} as a dictionary", other.kind())),
    }
}

/// The arguments as an array of exactly `N`, or Go's "wrong number of args" error.
pub(crate) fn exactly<const N: usize>(
    name: &str,
    args: Args,
) -> std::result::Result<[Value; N], String> {
    let got = args.len();
    <[Value; N]>::try_from(args)
        .map_err(|_| format!("wrong number of args for {name}: want {N} got {got}"))
}

/// Like [`exactly`], but missing leading arguments (down to `min`) are nil: `default "x"` with
/// nothing piped in.
pub(crate) fn between<const N: usize>(
    name: &str,
    mut args: Args,
    min: usize,
) -> std::result::Result<[Value; N], String> {
    if args.len() >= min && args.len() < N {
        while args.len() < N {
            args.push(Value::Nil);
        }
    }
    exactly::<N>(name, args)
}

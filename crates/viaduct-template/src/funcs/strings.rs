//! sprig's environment, default, string and JSON functions.

use base64::Engine as _;

use super::{between, collections, exactly, list_of, Args, Result};
use crate::printf::sprintf;
use crate::value::Value;

pub(super) fn sprig(name: &str, args: Args) -> Result {
    match name {
        "env" => {
            let [v] = exactly::<1>(name, args)?;
            Ok(Value::String(
                std::env::var(v.to_text()).unwrap_or_default(),
            ))
        }
        "expandenv" => {
            let [v] = exactly::<1>(name, args)?;
            Ok(Value::String(expand_env(&v.to_text())))
        }
        "default" => {
            let [fallback, given] = between::<2>(name, args, 1)?;
            Ok(if given.is_true() { given } else { fallback })
        }
        "empty" => {
            let [v] = exactly::<1>(name, args)?;
            Ok(Value::Bool(!v.is_true()))
        }
        "coalesce" => Ok(args.into_iter().find(Value::is_true).unwrap_or_default()),
        "ternary" => {
            let [yes, no, condition] = exactly::<3>(name, args)?;
            Ok(if condition.is_true() { yes } else { no })
        }
        "required" => {
            let [message, v] = exactly::<2>(name, args)?;
            match v {
                Value::Nil => Err(message.to_text()),
                Value::String(s) if s.is_empty() => Err(message.to_text()),
                other => Ok(other),
            }
        }
        "fail" => {
            let [message] = exactly::<1>(name, args)?;
            Err(message.to_text())
        }
        "quote" | "squote" => {
            let quoted: Vec<String> = args
                .iter()
                .filter(|v| **v != Value::Nil)
                .map(|v| {
                    if name == "quote" {
                        sprintf("%q", &[Value::String(v.to_text())])
                    } else {
                        format!("'{}'", v.to_text())
                    }
                })
                .collect();
            Ok(Value::String(quoted.join(" ")))
        }
        "upper" | "lower" | "title" | "trim" | "nospace" | "toString" | "b64enc" | "b64dec" => {
            let [v] = exactly::<1>(name, args)?;
            string_function(name, &v.to_text())
        }
        "trimAll" | "trimPrefix" | "trimSuffix" | "contains" | "hasPrefix" | "hasSuffix" => {
            let [a, s] = exactly::<2>(name, args)?;
            let (a, s) = (a.to_text(), s.to_text());
            Ok(match name {
                "trimAll" => Value::String(s.trim_matches(|c| a.contains(c)).to_string()),
                "trimPrefix" => Value::String(s.strip_prefix(a.as_str()).unwrap_or(&s).to_string()),
                "trimSuffix" => Value::String(s.strip_suffix(a.as_str()).unwrap_or(&s).to_string()),
                "contains" => Value::Bool(s.contains(a.as_str())),
                "hasPrefix" => Value::Bool(s.starts_with(a.as_str())),
                _ => Value::Bool(s.ends_with(a.as_str())),
            })
        }
        "replace" => {
            let [old, new, s] = exactly::<3>(name, args)?;
            Ok(Value::String(
                s.to_text().replace(&old.to_text(), &new.to_text()),
            ))
        }
        "repeat" => {
            let [n, s] = exactly::<2>(name, args)?;
            let n = usize::try_from(n.to_int()).map_err(|_| "negative repeat count")?;
            let s = s.to_text();
            if s.len().saturating_mul(n) > 1 << 20 {
                return Err("repeat result larger than 1 MiB".to_string());
            }
            Ok(Value::String(s.repeat(n)))
        }
        "indent" | "nindent" => {
            let [n, s] = exactly::<2>(name, args)?;
            let pad = " ".repeat(usize::try_from(n.to_int()).unwrap_or(0).min(1024));
            let indented = format!("{pad}{}", s.to_text().replace('\n', &format!("\n{pad}")));
            Ok(Value::String(if name == "nindent" {
                format!("\n{indented}")
            } else {
                indented
            }))
        }
        "cat" => {
            let words: Vec<String> = args
                .iter()
                .filter(|v| **v != Value::Nil)
                .map(Value::to_text)
                .collect();
            Ok(Value::String(words.join(" ")))
        }
        "substr" => {
            let [start, end, s] = exactly::<3>(name, args)?;
            let s = s.to_text();
            let len = s.len() as i64;
            let (start, end) = (start.to_int(), end.to_int());
            let start = if start < 0 { 0 } else { start.min(len) } as usize;
            let end = if end < 0 || end > len { len } else { end } as usize;
            Ok(Value::String(
                s.get(start..end.max(start)).unwrap_or("").to_string(),
            ))
        }
        "trunc" => {
            let [n, s] = exactly::<2>(name, args)?;
            let s = s.to_text();
            let n = n.to_int();
            let len = s.len() as i64;
            let piece = if n >= 0 {
                s.get(..n.min(len) as usize)
            } else {
                s.get((len + n).max(0) as usize..)
            };
            Ok(Value::String(piece.unwrap_or("").to_string()))
        }
        "toStrings" => {
            let [v] = exactly::<1>(name, args)?;
            Ok(Value::List(
                list_of(v)?
                    .iter()
                    .map(|v| Value::String(v.to_text()))
                    .collect(),
            ))
        }
        "join" => {
            let [sep, v] = exactly::<2>(name, args)?;
            let words: Vec<String> = list_of(v)?.iter().map(Value::to_text).collect();
            Ok(Value::String(words.join(&sep.to_text())))
        }
        "sortAlpha" => {
            let [v] = exactly::<1>(name, args)?;
            let mut words: Vec<String> = list_of(v)?.iter().map(Value::to_text).collect();
            words.sort();
            Ok(Value::List(words.into_iter().map(Value::String).collect()))
        }
        "toJson" | "toPrettyJson" => {
            let [v] = exactly::<1>(name, args)?;
            let json = to_json(&v);
            let text = if name == "toJson" {
                serde_json::to_string(&json)
            } else {
                serde_json::to_string_pretty(&json)
            };
            text.map(Value::String).map_err(|e| e.to_string())
        }
        "fromJson" => {
            let [v] = exactly::<1>(name, args)?;
            let json: serde_json::Value =
                serde_json::from_str(&v.to_text()).map_err(|e| e.to_string())?;
            Ok(from_json(json))
        }
        _ => collections::collections(name, args),
    }
}

fn string_function(name: &str, s: &str) -> Result {
    Ok(Value::String(match name {
        "upper" => s.to_uppercase(),
        "lower" => s.to_lowercase(),
        "title" => title(s),
        "trim" => s.trim().to_string(),
        "nospace" => s.chars().filter(|c| !c.is_whitespace()).collect(),
        "b64enc" => base64::engine::general_purpose::STANDARD.encode(s),
        "b64dec" => match base64::engine::general_purpose::STANDARD.decode(s) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) => e.to_string(),
        },
        _ => s.to_string(),
    }))
}

fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut start = true;
    for c in s.chars() {
        if start {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        start = c.is_whitespace();
    }
    out
}

/// `$VAR` and `${VAR}` from the environment; unset variables are empty.
fn expand_env(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let (name, consumed) = if let Some(braced) = after.strip_prefix('{') {
            match braced.find('}') {
                Some(end) => (&braced[..end], end + 2),
                None => ("", 0),
            }
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..end], end)
        };
        if consumed == 0 {
            out.push('$');
            rest = after;
            continue;
        }
        out.push_str(&std::env::var(name).unwrap_or_default());
        rest = &after[consumed..];
    }
    out.push_str(rest);
    out
}

fn to_json(v: &Value) -> serde_json::Value {
    match v {
        Value::Nil => serde_json::Value::Null,
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::Int(i) => serde_json::Value::from(*i),
        Value::Float(f) => serde_json::Value::from(*f),
        Value::String(s) => serde_json::Value::String(s.clone()),
        Value::List(items) => serde_json::Value::Array(items.iter().map(to_json).collect()),
        Value::StringMap(map) => serde_json::Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                .collect(),
        ),
        Value::Map(map) | Value::Record(map) => {
            serde_json::Value::Object(map.iter().map(|(k, v)| (k.clone(), to_json(v))).collect())
        }
    }
}

fn from_json(v: serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::Nil,
        serde_json::Value::Bool(b) => Value::Bool(b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Float(n.as_f64().unwrap_or(0.0)),
        },
        serde_json::Value::String(s) => Value::String(s),
        serde_json::Value::Array(items) => Value::List(items.into_iter().map(from_json).collect()),
        serde_json::Value::Object(map) => {
            Value::Map(map.into_iter().map(|(k, v)| (k, from_json(v))).collect())
        }
    }
}

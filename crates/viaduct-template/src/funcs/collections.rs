//! sprig's list, dictionary and number functions.

use std::collections::BTreeMap;

use super::{exactly, list_of, map_of, Args, Result};
use crate::value::Value;

pub(super) fn collections(name: &str, args: Args) -> Result {
    match name {
        "list" => Ok(Value::List(args)),
        "first" | "last" | "rest" | "initial" | "uniq" => {
            let [v] = exactly::<1>(name, args)?;
            let mut items = list_of(v)?;
            Ok(match name {
                "first" => items.into_iter().next().unwrap_or_default(),
                "last" => items.pop().unwrap_or_default(),
                "rest" => Value::List(items.into_iter().skip(1).collect()),
                "initial" => {
                    items.pop();
                    Value::List(items)
                }
                _ => {
                    let mut unique: Vec<Value> = Vec::new();
                    for item in items {
                        if !unique.contains(&item) {
                            unique.push(item);
                        }
                    }
                    Value::List(unique)
                }
            })
        }
        "append" | "prepend" => {
            let [l, v] = exactly::<2>(name, args)?;
            let mut items = list_of(l)?;
            if name == "append" {
                items.push(v);
            } else {
                items.insert(0, v);
            }
            Ok(Value::List(items))
        }
        "concat" => {
            let mut all = Vec::new();
            for l in args {
                all.extend(list_of(l)?);
            }
            Ok(Value::List(all))
        }
        "has" => {
            let [needle, l] = exactly::<2>(name, args)?;
            Ok(Value::Bool(list_of(l)?.contains(&needle)))
        }
        "without" => {
            let mut args = args.into_iter();
            let items = list_of(args.next().ok_or("without needs a list")?)?;
            let drop: Vec<Value> = args.collect();
            Ok(Value::List(
                items.into_iter().filter(|v| !drop.contains(v)).collect(),
            ))
        }
        "dict" => {
            let mut map = BTreeMap::new();
            let mut args = args.into_iter();
            while let Some(key) = args.next() {
                map.insert(key.to_text(), args.next().unwrap_or_default());
            }
            Ok(Value::Map(map))
        }
        "get" | "hasKey" => {
            let [m, key] = exactly::<2>(name, args)?;
            let map = map_of(m)?;
            let value = map.get(&key.to_text());
            Ok(if name == "get" {
                value
                    .cloned()
                    .unwrap_or_else(|| Value::String(String::new()))
            } else {
                Value::Bool(value.is_some())
            })
        }
        "keys" | "values" => {
            let mut out = Vec::new();
            for m in args {
                let map = map_of(m)?;
                if name == "keys" {
                    out.extend(map.into_keys().map(Value::String));
                } else {
                    out.extend(map.into_values());
                }
            }
            Ok(Value::List(out))
        }
        "pluck" => {
            let mut args = args.into_iter();
            let key = args.next().ok_or("pluck needs a key")?.to_text();
            let mut out = Vec::new();
            for m in args {
                if let Some(v) = map_of(m)?.remove(&key) {
                    out.push(v);
                }
            }
            Ok(Value::List(out))
        }
        "merge" => {
            let mut args = args.into_iter();
            let mut target = map_of(args.next().ok_or("merge needs a dictionary")?)?;
            for m in args {
                for (k, v) in map_of(m)? {
                    target.entry(k).or_insert(v);
                }
            }
            Ok(Value::Map(target))
        }
        _ => numbers(name, args),
    }
}

/// sprig's `slice`, which replaces Go's: lists only.
pub(super) fn slice(args: Args) -> Result {
    let mut args = args.into_iter();
    let items = match args.next().ok_or("slice of nothing")? {
        Value::List(items) => items,
        other => {
            return Err(format!(
                "list should be type of slice or array but {}",
                other.kind()
            ))
        }
    };
    let bounds: Vec<i64> = args.map(|v| v.to_int()).collect();
    let len = items.len() as i64;
    let start = bounds.first().copied().unwrap_or(0);
    let end = bounds.get(1).copied().unwrap_or(len);
    if start < 0 || end < start || end > len {
        return Err(format!("slice bounds out of range [{start}:{end}]"));
    }
    Ok(Value::List(items[start as usize..end as usize].to_vec()))
}

fn numbers(name: &str, args: Args) -> Result {
    match name {
        "add" | "mul" | "max" | "min" => {
            let mut values = args.iter().map(Value::to_int);
            let first = values
                .next()
                .ok_or_else(|| format!("{name} needs arguments"))?;
            Ok(Value::Int(values.fold(first, |acc, v| match name {
                "add" => acc.wrapping_add(v),
                "mul" => acc.wrapping_mul(v),
                "max" => acc.max(v),
                _ => acc.min(v),
            })))
        }
        "add1" => {
            let [v] = exactly::<1>(name, args)?;
            Ok(Value::Int(v.to_int().wrapping_add(1)))
        }
        "sub" | "div" | "mod" => {
            let [a, b] = exactly::<2>(name, args)?;
            let (a, b) = (a.to_int(), b.to_int());
            match name {
                "sub" => Ok(Value::Int(a.wrapping_sub(b))),
                _ if b == 0 => Err("integer divide by zero".to_string()),
                "div" => Ok(Value::Int(a.wrapping_div(b))),
                _ => Ok(Value::Int(a.wrapping_rem(b))),
            }
        }
        "int" | "int64" | "atoi" => {
            let [v] = exactly::<1>(name, args)?;
            Ok(Value::Int(v.to_int()))
        }
        "float64" => {
            let [v] = exactly::<1>(name, args)?;
            Ok(Value::Float(v.to_float()))
        }
        "until" => {
            let [n] = exactly::<1>(name, args)?;
            let n = n.to_int();
            let step = if n < 0 { -1 } else { 1 };
            steps(0, n, step)
        }
        "untilStep" => {
            let [start, stop, step] = exactly::<3>(name, args)?;
            steps(start.to_int(), stop.to_int(), step.to_int())
        }
        "seq" => {
            let bounds: Vec<i64> = args.iter().map(Value::to_int).collect();
            let (start, end, step) = match bounds.as_slice() {
                [end] => (1, *end, 1),
                [start, end] => (*start, *end, if start <= end { 1 } else { -1 }),
                [start, step, end] => (*start, *end, *step),
                _ => return Err("seq takes 1 to 3 arguments".to_string()),
            };
            // sprig's seq includes its end, unlike until.
            let stop = end.saturating_add(step.signum());
            let Value::List(items) = steps(start, stop, step)? else {
                return Ok(Value::String(String::new()));
            };
            let words: Vec<String> = items.iter().map(Value::to_text).collect();
            Ok(Value::String(words.join(" ")))
        }
        _ => Err(format!("function {name:?} not defined")),
    }
}

/// `[start, stop)` by `step`, bounded: a template has no use for more than 100,000 numbers.
fn steps(start: i64, stop: i64, step: i64) -> Result {
    if step == 0 || (step > 0 && start >= stop) || (step < 0 && start <= stop) {
        return Ok(Value::List(Vec::new()));
    }
    let count = (stop.abs_diff(start)).div_ceil(step.unsigned_abs());
    if count > 100_000 {
        return Err(format!("a list of {count} numbers (at most 100000)"));
    }
    let mut out = Vec::new();
    let mut i = start;
    while (step > 0 && i < stop) || (step < 0 && i > stop) {
        out.push(Value::Int(i));
        i += step;
    }
    Ok(Value::List(out))
}

//! Template values: what Go's `interface{}` holds in a template over configuration text.

use std::collections::BTreeMap;
use std::fmt;

/// A value an expression produces. Maps keep their keys sorted, as Go prints and ranges them.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value {
    /// Go's `nil`; also what a missing map key yields.
    #[default]
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    String(String),
    List(Vec<Value>),
    /// Go's `map[string]interface{}` (sprig's `dict`): a missing key is nil.
    Map(BTreeMap<String, Value>),
    /// Go's `map[string]string` (Docker labels): a missing key is the empty string.
    StringMap(BTreeMap<String, String>),
    /// A Go struct (the data a template is given): a missing field is an error, so that a typo
    /// such as `.name` for `.Name` is reported instead of rendering nothing.
    Record(BTreeMap<String, Value>),
}

impl Value {
    /// Go's notion of truth in `if`, `and`, `or`, `not`: the zero value of every kind is false.
    pub fn is_true(&self) -> bool {
        match self {
            Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::String(s) => !s.is_empty(),
            Value::List(l) => !l.is_empty(),
            Value::Map(m) => !m.is_empty(),
            Value::StringMap(m) => !m.is_empty(),
            Value::Record(_) => true,
        }
    }

    /// The kind's name, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Nil => "nil",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float64",
            Value::String(_) => "string",
            Value::List(_) => "slice",
            Value::Map(_) | Value::StringMap(_) => "map",
            Value::Record(_) => "struct",
        }
    }

    /// Sprig's lenient conversion to an integer (`cast.ToInt64`): strings are parsed, floats
    /// truncated, anything else is 0.
    pub fn to_int(&self) -> i64 {
        match self {
            Value::Bool(b) => i64::from(*b),
            Value::Int(i) => *i,
            Value::Float(f) => *f as i64,
            Value::String(s) => s.trim().parse().unwrap_or(0),
            Value::Nil
            | Value::List(_)
            | Value::Map(_)
            | Value::StringMap(_)
            | Value::Record(_) => 0,
        }
    }

    /// Sprig's lenient conversion to a float.
    pub fn to_float(&self) -> f64 {
        match self {
            Value::Float(f) => *f,
            Value::String(s) => s.trim().parse().unwrap_or(0.0),
            other => other.to_int() as f64,
        }
    }

    /// `.key` of a map or struct, with Go's answer for a missing key of each kind.
    pub fn field(&self, key: &str) -> Result<Value, String> {
        match self {
            Value::Map(map) => Ok(map.get(key).cloned().unwrap_or(Value::Nil)),
            Value::StringMap(map) => Ok(Value::String(map.get(key).cloned().unwrap_or_default())),
            Value::Record(fields) => fields
                .get(key)
                .cloned()
                .ok_or_else(|| format!("can't evaluate field {key} in type struct")),
            other => Err(format!(
                "can't evaluate field {key} in type {}",
                other.kind()
            )),
        }
    }

    /// Sprig's `toString`: what `print` would write.
    pub fn to_text(&self) -> String {
        match self {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_string())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}

/// Go's `fmt.Print` of the value: `[a b]` for slices, `map[k:v]` for maps, `<nil>` for nil.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Nil => f.write_str("<nil>"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => f.write_str(&format_float(*x)),
            Value::String(s) => f.write_str(s),
            Value::List(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("]")
            }
            Value::Map(map) => write_map(f, map.iter()),
            Value::StringMap(map) => write_map(f, map.iter()),
            Value::Record(fields) => {
                f.write_str("{")?;
                for (i, v) in fields.values().enumerate() {
                    if i > 0 {
                        f.write_str(" ")?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_str("}")
            }
        }
    }
}

/// `map[k1:v1 k2:v2]`, keys in order.
fn write_map<'a, V: fmt::Display + 'a>(
    f: &mut fmt::Formatter<'_>,
    entries: impl Iterator<Item = (&'a String, &'a V)>,
) -> fmt::Result {
    f.write_str("map[")?;
    for (i, (k, v)) in entries.enumerate() {
        if i > 0 {
            f.write_str(" ")?;
        }
        write!(f, "{k}:{v}")?;
    }
    f.write_str("]")
}

/// Go's `%v` of a float64: the shortest text that reads back the same, with an exponent from
/// 1e21 up (and below 1e-4).
fn format_float(x: f64) -> String {
    if x.is_infinite() {
        return if x > 0.0 { "+Inf" } else { "-Inf" }.to_string();
    }
    if x.is_nan() {
        return "NaN".to_string();
    }
    let abs = x.abs();
    if abs != 0.0 && !(1e-4..1e21).contains(&abs) {
        return go_exponent(format!("{x:e}"));
    }
    format!("{x}")
}

/// Rust's exponent notation as Go writes it: `1e21` → `1e+21`, `1e-5` → `1e-05` (a sign always,
/// at least two digits).
pub(crate) fn go_exponent(text: String) -> String {
    match text.split_once('e') {
        Some((mantissa, exp)) => match exp.strip_prefix('-') {
            Some(digits) => format!("{mantissa}e-{digits:0>2}"),
            None => format!("{mantissa}e+{exp:0>2}"),
        },
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_as_go_does() {
        let list = Value::List(vec![Value::Int(1), "a".into(), Value::Nil]);
        assert_eq!(list.to_string(), "[1 a <nil>]");
        let map = Value::Map(BTreeMap::from([
            ("b".to_string(), Value::Bool(true)),
            ("a".to_string(), Value::Float(1.5)),
        ]));
        assert_eq!(map.to_string(), "map[a:1.5 b:true]");
        assert_eq!(Value::Float(3.0).to_string(), "3");
        assert_eq!(Value::Float(1e21).to_string(), "1e+21");
        assert_eq!(Value::Float(0.00001).to_string(), "1e-05");
    }

    #[test]
    fn zero_values_are_false() {
        for v in [
            Value::Nil,
            Value::Bool(false),
            Value::Int(0),
            Value::Float(0.0),
            "".into(),
            Value::List(vec![]),
            Value::Map(BTreeMap::new()),
        ] {
            assert!(!v.is_true(), "{v:?}");
        }
        assert!(Value::from("x").is_true());
    }
}

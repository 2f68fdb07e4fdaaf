//! Go's `fmt.Sprintf` for the verbs templates use: `%s %v %d %q %x %X %f %g %e %t %c %%`, with
//! flags (`-+ 0#`), width and precision.

use crate::value::{go_exponent, Value};

pub(crate) fn sprintf(format: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut args = args.iter();
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = Spec::default();
        while let Some(&flag) = chars.peek() {
            match flag {
                '-' => spec.left = true,
                '+' => spec.plus = true,
                '0' => spec.zero = true,
                ' ' | '#' => {}
                _ => break,
            }
            chars.next();
        }
        spec.width = digits(&mut chars);
        if chars.peek() == Some(&'.') {
            chars.next();
            spec.precision = Some(digits(&mut chars).unwrap_or(0));
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.next() else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        let text = format_one(verb, arg, &spec);
        out.push_str(&spec.pad(text, matches!(arg, Value::Int(_) | Value::Float(_))));
    }
    let extra: Vec<String> = args.map(|a| format!("{}={a}", a.kind())).collect();
    if !extra.is_empty() {
        out.push_str(&format!("%!(EXTRA {})", extra.join(", ")));
    }
    out
}

#[derive(Default)]
struct Spec {
    left: bool,
    plus: bool,
    zero: bool,
    width: Option<usize>,
    precision: Option<usize>,
}

impl Spec {
    fn pad(&self, text: String, numeric: bool) -> String {
        let Some(width) = self.width else { return text };
        let len = text.chars().count();
        if len >= width {
            return text;
        }
        let fill = width - len;
        if self.left {
            format!("{text}{}", " ".repeat(fill))
        } else if self.zero && numeric {
            match text.strip_prefix('-') {
                Some(rest) => format!("-{}{rest}", "0".repeat(fill)),
                None => format!("{}{text}", "0".repeat(fill)),
            }
        } else {
            format!("{}{text}", " ".repeat(fill))
        }
    }
}

fn digits(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Option<usize> {
    let mut n: Option<usize> = None;
    while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
        n = Some(
            n.unwrap_or(0)
                .saturating_mul(10)
                .saturating_add(d as usize)
                .min(4096),
        );
        chars.next();
    }
    n
}

fn format_one(verb: char, arg: &Value, spec: &Spec) -> String {
    match (verb, arg) {
        ('v' | 's', Value::String(s)) => match spec.precision {
            Some(p) => s.chars().take(p).collect(),
            None => s.clone(),
        },
        ('v' | 'd', Value::Int(i)) if spec.plus && *i >= 0 => format!("+{i}"),
        ('v' | 'd', Value::Int(i)) => i.to_string(),
        ('q', Value::String(s)) => quote(s),
        ('q', Value::Int(i)) => match u32::try_from(*i).ok().and_then(char::from_u32) {
            Some(c) => format!("'{c}'"),
            None => format!("%!q(int={i})"),
        },
        ('c', Value::Int(i)) => u32::try_from(*i)
            .ok()
            .and_then(char::from_u32)
            .map(String::from)
            .unwrap_or_else(|| "\u{fffd}".to_string()),
        ('x', Value::Int(i)) => format!("{i:x}"),
        ('X', Value::Int(i)) => format!("{i:X}"),
        ('x', Value::String(s)) => s.bytes().map(|b| format!("{b:02x}")).collect(),
        ('X', Value::String(s)) => s.bytes().map(|b| format!("{b:02X}")).collect(),
        ('o', Value::Int(i)) => format!("{i:o}"),
        ('b', Value::Int(i)) => format!("{i:b}"),
        ('f' | 'F', Value::Float(_) | Value::Int(_)) => {
            format!("{:.*}", spec.precision.unwrap_or(6), arg.to_float())
        }
        ('e', Value::Float(_) | Value::Int(_)) => go_exponent(format!(
            "{:.*e}",
            spec.precision.unwrap_or(6),
            arg.to_float()
        )),
        ('g' | 'v', Value::Float(_)) => arg.to_string(),
        ('t' | 'v', Value::Bool(b)) => b.to_string(),
        ('v', other) => other.to_string(),
        ('s', Value::List(_) | Value::Map(_) | Value::StringMap(_) | Value::Record(_)) => {
            arg.to_string()
        }
        (verb, other) => format!("%!{verb}({}={other})", other.kind()),
    }
}

/// Go's `strconv.Quote`: double quotes, with Go's escapes for the rest.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let code = u32::from(c);
                if code < 0x100 {
                    out.push_str(&format!("\\x{code:02x}"));
                } else {
                    out.push_str(&format!("\\u{code:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbs() {
        let f = |format: &str, args: &[Value]| sprintf(format, args);
        assert_eq!(f("%s-%d", &["a".into(), Value::Int(3)]), "a-3");
        assert_eq!(
            f("%05d|%-4s|%4s", &[Value::Int(42), "ab".into(), "cd".into()]),
            "00042|ab  |  cd"
        );
        assert_eq!(
            f(
                "%.2f %v %t",
                &[Value::Float(1.23456), Value::Float(2.5), Value::Bool(true)]
            ),
            "1.23 2.5 true"
        );
        assert_eq!(f("%q", &["a\"b\n".into()]), r#""a\"b\n""#);
        assert_eq!(
            f("%x %X 100%%", &[Value::Int(255), "hi".into()]),
            "ff 6869 100%"
        );
        assert_eq!(
            f("%e|%.2e", &[Value::Float(1234.5678), Value::Float(0.00012)]),
            "1.234568e+03|1.20e-04"
        );
        assert_eq!(f("%d", &[]), "%!d(MISSING)");
        assert_eq!(f("%d", &["x".into()]), "%!d(string=x)");
        assert_eq!(f("x", &[Value::Int(1)]), "x%!(EXTRA int=1)");
    }
}

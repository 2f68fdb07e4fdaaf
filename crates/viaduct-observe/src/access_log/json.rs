//! A flat JSON object written by hand: the access log's lines are all strings and unsigned
//! numbers, and building a `serde_json` map per line (a tree of allocations) cost several
//! times the rest of the line's formatting. Keys come out sorted, as Traefik's logger writes
//! them, and strings are escaped as Go's `encoding/json` escapes them (`<`, `>`, `&` too).

use std::borrow::Cow;
use std::fmt::Write as _;

#[derive(Debug, Default)]
pub(super) struct JsonLine<'a> {
    fields: Vec<(Cow<'a, str>, JsonValue<'a>)>,
}

#[derive(Debug)]
pub(super) enum JsonValue<'a> {
    Number(u64),
    Text(Cow<'a, str>),
}

impl<'a> JsonLine<'a> {
    pub(super) fn with_capacity(n: usize) -> Self {
        JsonLine {
            fields: Vec::with_capacity(n),
        }
    }

    pub(super) fn number(&mut self, key: impl Into<Cow<'a, str>>, value: u64) {
        self.fields.push((key.into(), JsonValue::Number(value)));
    }

    pub(super) fn text(&mut self, key: impl Into<Cow<'a, str>>, value: impl Into<Cow<'a, str>>) {
        self.fields
            .push((key.into(), JsonValue::Text(value.into())));
    }

    /// The object on one line, with its newline. A key set twice keeps its last value.
    pub(super) fn finish(mut self) -> String {
        // Stable: of equal keys, the last one pushed stays last.
        self.fields.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out = String::with_capacity(64 + self.fields.len() * 40);
        out.push('{');
        let mut first = true;
        for (i, (key, value)) in self.fields.iter().enumerate() {
            if self.fields.get(i + 1).is_some_and(|(next, _)| next == key) {
                continue;
            }
            if !first {
                out.push(',');
            }
            first = false;
            escape_into(&mut out, key);
            out.push(':');
            match value {
                JsonValue::Number(n) => {
                    let _ = write!(out, "{n}");
                }
                JsonValue::Text(text) => escape_into(&mut out, text),
            }
        }
        out.push_str("}\n");
        out
    }
}

fn escape_into(out: &mut String, text: &str) {
    out.push('"');
    // Runs of characters that need no escaping are copied whole.
    let mut run = 0;
    for (i, c) in text.char_indices() {
        let plain = !matches!(c, '"' | '\\' | '<' | '>' | '&' | '\u{2028}' | '\u{2029}')
            && (c as u32) >= 0x20;
        if plain {
            continue;
        }
        out.push_str(&text[run..i]);
        run = i + c.len_utf8();
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
        }
    }
    out.push_str(&text[run..]);
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_escaped_and_parseable() {
        let mut line = JsonLine::default();
        line.text("b", "x\"<y>\n\u{1}");
        line.number("a", 7);
        line.text("B", "upper sorts first");
        line.number("a", 8);
        let text = line.finish();
        assert!(text.starts_with("{\"B\":"), "{text}");
        assert!(text.contains("\\u003cy\\u003e"));
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["a"], 8);
        assert_eq!(v["b"], "x\"<y>\n\u{1}");
    }
}

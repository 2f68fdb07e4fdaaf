//! Bridges the few places where Go's RE2 syntax and the `regex` crate read a pattern
//! differently, so that rules written for Traefik keep their meaning.
//!
//! - Go reads a `{` that does not start a repetition (`{2}`, `{2,}`, `{2,5}`) as a literal brace;
//!   the `regex` crate rejects it. This matters: v2 templates such as `{domain:[a-z]+}` are still
//!   valid v3 regexps that match the braces literally.
//! - Inside a character class Go reads `[` (other than `[:alpha:]`), `&` and `~` as literals; the
//!   `regex` crate reads them as nested classes and set operators.

use std::borrow::Cow;

/// Rewrites a Go regexp into an equivalent pattern for the `regex` crate.
pub(crate) fn to_rust_syntax(pattern: &str) -> Cow<'_, str> {
    if !pattern.contains(['{', '[']) {
        return Cow::Borrowed(pattern);
    }
    let bytes = pattern.as_bytes();
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i = copy_escape(pattern, i, &mut out),
            b'[' => i = copy_class(pattern, i, &mut out),
            b'{' if !starts_repetition(&bytes[i..]) => {
                out.push_str("\\{");
                i += 1;
            }
            _ => {
                let len = utf8_len(pattern, i);
                out.push_str(&pattern[i..i + len]);
                i += len;
            }
        }
    }
    Cow::Owned(out)
}

/// Copies a backslash escape (the backslash and the next character) verbatim.
fn copy_escape(pattern: &str, at: usize, out: &mut String) -> usize {
    out.push('\\');
    if at + 1 >= pattern.len() {
        return at + 1;
    }
    let len = utf8_len(pattern, at + 1);
    out.push_str(&pattern[at + 1..at + 1 + len]);
    at + 1 + len
}

/// Copies a bracketed class, escaping what Go reads literally but `regex` would not.
fn copy_class(pattern: &str, at: usize, out: &mut String) -> usize {
    let bytes = pattern.as_bytes();
    out.push('[');
    let mut i = at + 1;
    if bytes.get(i) == Some(&b'^') {
        out.push('^');
        i += 1;
    }
    // A `]` right after the opening bracket is a member, not the end.
    if bytes.get(i) == Some(&b']') {
        out.push_str("\\]");
        i += 1;
    }
    while i < bytes.len() {
        match bytes[i] {
            b']' => {
                out.push(']');
                return i + 1;
            }
            b'\\' => i = copy_escape(pattern, i, out),
            b'[' if bytes.get(i + 1) == Some(&b':') => {
                let end = pattern[i..].find(":]").map_or(bytes.len(), |e| i + e + 2);
                out.push_str(&pattern[i..end]);
                i = end;
            }
            b'[' | b'&' | b'~' => {
                out.push('\\');
                out.push(char::from(bytes[i]));
                i += 1;
            }
            _ => {
                let len = utf8_len(pattern, i);
                out.push_str(&pattern[i..i + len]);
                i += len;
            }
        }
    }
    i
}

/// Whether `text` (starting at `{`) is `{n}`, `{n,}` or `{n,m}`.
fn starts_repetition(text: &[u8]) -> bool {
    let mut i = 1;
    let digits = |i: &mut usize| {
        let start = *i;
        while text.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i > start
    };
    if !digits(&mut i) {
        return false;
    }
    if text.get(i) == Some(&b',') {
        i += 1;
        digits(&mut i);
    }
    text.get(i) == Some(&b'}')
}

fn utf8_len(s: &str, at: usize) -> usize {
    s[at..].chars().next().map_or(1, char::len_utf8)
}

#[cfg(test)]
mod tests {
    use super::to_rust_syntax;

    #[test]
    fn literal_braces_are_escaped_and_repetitions_kept() {
        assert_eq!(to_rust_syntax("/{path:(css|js)}"), "/\\{path:(css|js)}");
        assert_eq!(to_rust_syntax("a{2}b{1,}c{1,3}"), "a{2}b{1,}c{1,3}");
        assert_eq!(to_rust_syntax("x{,3}"), "x\\{,3}");
    }

    #[test]
    fn classes_keep_go_meaning() {
        assert_eq!(to_rust_syntax("[[:alpha:]{]"), "[[:alpha:]{]");
        assert_eq!(to_rust_syntax("[]a[&&~]"), "[\\]a\\[\\&\\&\\~]");
        assert_eq!(to_rust_syntax("[^]x]"), "[^\\]x]");
        assert_eq!(to_rust_syntax("\\{[\\]]"), "\\{[\\]]");
    }
}

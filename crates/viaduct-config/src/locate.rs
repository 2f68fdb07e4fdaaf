//! Finding the line of a dotted key in a YAML or TOML text, so schema errors can name it.
//!
//! Best effort: the decoded tree has no positions, so the key is searched in the text. Block
//! YAML and ordinary TOML (tables, dotted keys) are handled; flow-style YAML or inline TOML
//! tables may yield the line of the nearest enclosing key, or nothing.

use crate::Format;

/// The 1-based line where `path` (`entryPoints.web.adress`, `servers[0].url`) is written.
pub fn line_of_key(text: &str, format: Format, path: &str) -> Option<usize> {
    let segments = key_segments(path);
    if segments.is_empty() {
        return None;
    }
    match format {
        Format::Yaml => yaml_line(text, &segments),
        Format::Toml => toml_line(text, &segments),
    }
}

/// The named segments of a path; list indices are dropped because neither format writes them
/// as keys.
fn key_segments(path: &str) -> Vec<&str> {
    path.split('.')
        .map(|seg| seg.split('[').next().unwrap_or(seg))
        .filter(|seg| !seg.is_empty())
        .collect()
}

/// Follows the segments down the indentation of block YAML.
fn yaml_line(text: &str, segments: &[&str]) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let mut start = 0;
    let mut parent_indent: isize = -1;
    let mut found_line = None;
    for segment in segments {
        let mut hit = None;
        let mut child_indent = None;
        for (index, line) in lines.iter().enumerate().skip(start) {
            let Some((indent, key)) = yaml_key(line) else {
                continue;
            };
            if indent <= parent_indent {
                break;
            }
            // Only direct children count: the first key below the parent sets their indent.
            let sibling_indent = *child_indent.get_or_insert(indent);
            if indent == sibling_indent && key.eq_ignore_ascii_case(segment) {
                hit = Some((index, indent));
                break;
            }
        }
        let (index, indent) = hit?;
        found_line = Some(index + 1);
        start = index + 1;
        parent_indent = indent;
    }
    found_line
}

/// The indentation and key of a `key: …` line (list dashes count as indentation).
fn yaml_key(line: &str) -> Option<(isize, &str)> {
    let trimmed = line.trim_start();
    if trimmed.is_empty() || trimmed.starts_with('#') {
        return None;
    }
    let mut indent = line.len() - trimmed.len();
    let mut rest = trimmed;
    while let Some(after_dash) = rest.strip_prefix("- ") {
        let after = after_dash.trim_start();
        indent += rest.len() - after.len();
        rest = after;
    }
    let colon = rest.find(':')?;
    let key = rest[..colon].trim().trim_matches(|c| c == '"' || c == '\'');
    Some((isize::try_from(indent).ok()?, key))
}

/// Matches `[table]` headers and `key = …` lines against the full path.
fn toml_line(text: &str, segments: &[&str]) -> Option<usize> {
    let target: Vec<String> = segments.iter().map(|s| s.to_ascii_lowercase()).collect();
    let mut table: Vec<String> = Vec::new();
    let mut best: Option<(usize, usize)> = None;
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || trimmed.is_empty() {
            continue;
        }
        let full = if let Some(header) = trimmed.strip_prefix('[') {
            let header = header.trim_start_matches('[');
            let end = header.find(']').unwrap_or(header.len());
            table = toml_key_path(&header[..end]);
            table.clone()
        } else if let Some(eq) = trimmed.find('=') {
            let mut full = table.clone();
            full.extend(toml_key_path(&trimmed[..eq]));
            full
        } else {
            continue;
        };
        if full == target {
            return Some(index + 1);
        }
        let common = full.iter().zip(&target).take_while(|(a, b)| a == b).count();
        if common == full.len() && best.is_none_or(|(depth, _)| common > depth) {
            best = Some((common, index + 1));
        }
    }
    best.map(|(_, line)| line)
}

fn toml_key_path(key: &str) -> Vec<String> {
    key.split('.')
        .map(|part| {
            part.trim()
                .trim_matches(|c| c == '"' || c == '\'')
                .to_ascii_lowercase()
        })
        .filter(|part| !part.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nested_yaml_key() {
        let text = "log:\n  level: INFO\nentryPoints:\n  web:\n    adress: \":80\"\n";
        assert_eq!(
            line_of_key(text, Format::Yaml, "entryPoints.web.adress"),
            Some(5)
        );
    }

    #[test]
    fn yaml_key_under_list_item() {
        let text = "http:\n  services:\n    s:\n      loadBalancer:\n        servers:\n          - url: x\n            wieght: 2\n";
        assert_eq!(
            line_of_key(
                text,
                Format::Yaml,
                "http.services.s.loadBalancer.servers[0].wieght"
            ),
            Some(7)
        );
    }

    #[test]
    fn finds_toml_key_in_table() {
        let text = "[log]\nlevel = \"INFO\"\n\n[entryPoints.web]\nadress = \":80\"\n";
        assert_eq!(
            line_of_key(text, Format::Toml, "entryPoints.web.adress"),
            Some(5)
        );
        assert_eq!(line_of_key(text, Format::Toml, "entryPoints.web"), Some(4));
    }
}

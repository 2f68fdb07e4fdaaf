//! Media types as Go's `mime.ParseMediaType` reads them, for content-type lists.

/// `type/subtype` in lower case with its parameters (names in lower case).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct MediaType {
    pub essence: String,
    pub params: Vec<(String, String)>,
}

impl MediaType {
    pub fn parse(text: &str) -> Option<MediaType> {
        let mut parts = text.split(';');
        let essence = parts.next()?.trim().to_ascii_lowercase();
        let (kind, subtype) = essence.split_once('/')?;
        if !is_token(kind) || !is_token(subtype) {
            return None;
        }
        let mut params = Vec::new();
        for part in parts {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let (name, value) = part.split_once('=')?;
            let name = name.trim().to_ascii_lowercase();
            if !is_token(&name) {
                return None;
            }
            let value = value.trim();
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value);
            params.push((name, value.to_string()));
        }
        Some(MediaType { essence, params })
    }

    /// klauspost/gzhttp's rule: same type, and when `self` has parameters, the same ones.
    pub fn matches(&self, other: &MediaType) -> bool {
        if self.essence != other.essence {
            return false;
        }
        if self.params.is_empty() {
            return true;
        }
        self.params.len() == other.params.len()
            && self
                .params
                .iter()
                .all(|(k, v)| other.params.iter().any(|(ok, ov)| ok == k && ov == v))
    }
}

fn is_token(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?=".contains(&b))
}

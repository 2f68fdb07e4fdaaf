//! List endpoints: Traefik's filters (`search`, `status`, `provider`, `serviceName`,
//! `middlewareName`), sorting (`sortBy`, `direction`) and pages (`page`, `per_page`,
//! answered with `X-Next-Page`).

use std::cmp::Ordering;

use crate::view::ObjectInfo;

const DEFAULT_PER_PAGE: usize = 100;

/// A list request's query parameters.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct ListQuery {
    pub search: String,
    pub status: String,
    pub provider: String,
    pub service_name: String,
    pub middleware_name: String,
    pub sort_by: String,
    pub descending: bool,
    page: Option<String>,
    per_page: Option<String>,
}

/// One page of a filtered list, and the page after it (1 when this is the last).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Page {
    pub start: usize,
    pub end: usize,
    pub next: usize,
}

impl ListQuery {
    pub(crate) fn parse(query: Option<&str>) -> Self {
        let mut out = ListQuery::default();
        for (key, value) in query_pairs(query.unwrap_or("")) {
            match key.as_str() {
                "search" => out.search = value,
                "status" => out.status = value,
                "provider" => out.provider = value,
                "serviceName" => out.service_name = value,
                "middlewareName" => out.middleware_name = value,
                "sortBy" => out.sort_by = value,
                "direction" => out.descending = value.eq_ignore_ascii_case("desc"),
                "page" => out.page = Some(value),
                "per_page" => out.per_page = Some(value),
                _ => {}
            }
        }
        out
    }

    /// Whether `object` passes the filters. Routers are searched by name and rule,
    /// other objects by name, case-insensitively.
    pub(crate) fn keeps(&self, object: &ObjectInfo) -> bool {
        if !self.status.is_empty() && object.status.as_str() != self.status {
            return false;
        }
        if !self.provider.is_empty() && !object.provider.eq_ignore_ascii_case(&self.provider) {
            return false;
        }
        if !self.service_name.is_empty() && object.service() != self.service_name {
            return false;
        }
        if !self.middleware_name.is_empty()
            && !object
                .middlewares()
                .iter()
                .any(|m| m == &self.middleware_name)
        {
            return false;
        }
        if self.search.is_empty() {
            return true;
        }
        let needle = self.search.to_lowercase();
        [object.name.as_str(), object.rule()]
            .iter()
            .any(|hay| hay.to_lowercase().contains(&needle))
    }

    /// Sorts by `sortBy` (name by default), ties by name.
    pub(crate) fn sort(&self, objects: &mut [&ObjectInfo]) {
        let key = self.sort_by.as_str();
        objects.sort_by(|a, b| {
            let primary = match key {
                "provider" => a.provider.cmp(&b.provider),
                "priority" => a.priority.cmp(&b.priority),
                "rule" => a.rule().cmp(b.rule()),
                "service" => a.service().cmp(b.service()),
                "status" => a.status.cmp(&b.status),
                "type" => a.kind().cmp(&b.kind()),
                "entryPoints" => a.using.cmp(&b.using),
                "servers" => a.server_count().cmp(&b.server_count()),
                _ => Ordering::Equal,
            };
            let ordering = primary.then_with(|| a.name.cmp(&b.name));
            if self.descending {
                ordering.reverse()
            } else {
                ordering
            }
        });
    }

    /// The page asked for among `len` results, refused as Traefik refuses it.
    pub(crate) fn page(&self, len: usize) -> Result<Page, String> {
        let per_page = int_param("per_page", self.per_page.as_deref(), DEFAULT_PER_PAGE)?;
        let page = int_param("page", self.page.as_deref(), 1)?;
        let start = (page - 1).saturating_mul(per_page);
        if start != 0 && start >= len {
            return Err(format!(
                "invalid request: page: {page}, per_page: {per_page}"
            ));
        }
        let end = start.saturating_add(per_page).min(len);
        let next = if page.saturating_mul(per_page) < len {
            page + 1
        } else {
            1
        };
        Ok(Page { start, end, next })
    }
}

/// Go's `strconv.Atoi` then `value <= 0` check; the message shows 0 for unparsable values
/// as Traefik's does.
fn int_param(key: &str, raw: Option<&str>, default: usize) -> Result<usize, String> {
    match raw.filter(|r| !r.is_empty()) {
        None => Ok(default),
        Some(raw) => match raw.parse::<i64>() {
            Ok(value) if value > 0 => Ok(usize::try_from(value).unwrap_or(usize::MAX)),
            Ok(value) => Err(format!("invalid request: {key}: {value}")),
            Err(_) => Err(format!("invalid request: {key}: 0")),
        },
    }
}

/// `a=b&c=d` pairs, percent-decoded (`+` is a space).
pub(crate) fn query_pairs(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    query.split('&').filter(|p| !p.is_empty()).map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (
            percent_decode(&key.replace('+', " ")),
            percent_decode(&value.replace('+', " ")),
        )
    })
}

/// Decodes `%XX` escapes; malformed escapes are kept as written.
pub(crate) fn percent_decode(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_like_traefik() {
        let q = ListQuery::parse(Some("per_page=2"));
        assert_eq!(
            q.page(6),
            Ok(Page {
                start: 0,
                end: 2,
                next: 2
            })
        );
        let q = ListQuery::parse(Some("per_page=2&page=3"));
        assert_eq!(
            q.page(6),
            Ok(Page {
                start: 4,
                end: 6,
                next: 1
            })
        );
        let q = ListQuery::parse(Some("per_page=2&page=5"));
        assert_eq!(
            q.page(6),
            Err("invalid request: page: 5, per_page: 2".into())
        );
        assert_eq!(
            ListQuery::parse(Some("page=0")).page(6),
            Err("invalid request: page: 0".into())
        );
        assert_eq!(
            ListQuery::parse(Some("per_page=x")).page(6),
            Err("invalid request: per_page: 0".into())
        );
        assert_eq!(
            ListQuery::parse(None).page(0),
            Ok(Page {
                start: 0,
                end: 0,
                next: 1
            })
        );
    }

    #[test]
    fn decodes_queries() {
        let pairs: Vec<_> = query_pairs("search=a%40b+c&x=%zz&y").collect();
        assert_eq!(
            pairs,
            vec![
                ("search".into(), "a@b c".into()),
                ("x".into(), "%zz".into()),
                ("y".into(), String::new())
            ]
        );
        assert_eq!(percent_decode("a%2Fb%"), "a/b%");
    }
}

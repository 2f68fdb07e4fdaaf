//! The per-entry-point HTTP router table: priority order plus a host index, so a lookup only
//! evaluates routers that can match the request's host.

use crate::facts::RequestFacts;
use crate::http_rule::HttpRule;
use std::borrow::Cow;
use std::collections::HashMap;

/// One router offered to [`RouterTable::new`].
#[derive(Debug, Clone)]
pub struct RouterEntry<K, T> {
    pub rule: HttpRule,
    /// Effective priority (see [`crate::effective_priority`]); higher is tried first.
    pub priority: i64,
    /// Orders routers of equal priority, ascending (e.g. provider precedence, then name).
    pub tiebreak: K,
    pub value: T,
}

/// Routers sorted by priority descending then tiebreak ascending; [`RouterTable::find`] returns
/// the first whose rule matches.
///
/// Routers whose rule can only match a finite set of exact hosts are indexed by host, those
/// restricted to one-label wildcards by the wildcard's suffix, and the rest are kept in a
/// generic list; a lookup merges the three candidate lists in priority order, so its cost does
/// not grow with the number of routers for other hosts.
#[derive(Debug, Clone)]
pub struct RouterTable<T> {
    routes: Vec<Route<T>>,
    by_host: HashMap<Box<str>, Vec<usize>>,
    by_wildcard_suffix: HashMap<Box<str>, Vec<usize>>,
    generic: Vec<usize>,
}

#[derive(Debug, Clone)]
struct Route<T> {
    rule: HttpRule,
    priority: i64,
    value: T,
}

impl<T> RouterTable<T> {
    pub fn new<K: Ord>(mut entries: Vec<RouterEntry<K, T>>) -> Self {
        entries.sort_by(|a, b| {
            b.priority
                .cmp(&a.priority)
                .then_with(|| a.tiebreak.cmp(&b.tiebreak))
        });
        let mut table = RouterTable {
            routes: Vec::with_capacity(entries.len()),
            by_host: HashMap::new(),
            by_wildcard_suffix: HashMap::new(),
            generic: Vec::new(),
        };
        for (index, entry) in entries.into_iter().enumerate() {
            match entry.rule.required_hosts() {
                Some(hosts) => {
                    for host in hosts.exact {
                        push_once(table.by_host.entry(host.into()).or_default(), index);
                    }
                    for suffix in hosts.wildcard_suffixes {
                        push_once(
                            table.by_wildcard_suffix.entry(suffix.into()).or_default(),
                            index,
                        );
                    }
                }
                None => table.generic.push(index),
            }
            table.routes.push(Route {
                rule: entry.rule,
                priority: entry.priority,
                value: entry.value,
            });
        }
        table
    }

    /// The value of the highest-priority router whose rule matches the request.
    pub fn find(&self, facts: &RequestFacts<'_>) -> Option<&T> {
        let host = lookup_host(facts.host);
        let lists = self.candidate_lists(&host);
        let mut cursors = [0usize; 3];
        loop {
            let next = (0..3)
                .filter_map(|l| lists[l].get(cursors[l]).copied())
                .min()?;
            // A router indexed in two lists (exact and wildcard) is tried once.
            for l in 0..3 {
                if lists[l].get(cursors[l]) == Some(&next) {
                    cursors[l] += 1;
                }
            }
            let route = &self.routes[next];
            if route.rule.matches(facts) {
                return Some(&route.value);
            }
        }
    }

    /// How many routers [`RouterTable::find`] would consider for this request at most: those
    /// indexed under its host or wildcard suffix plus the generic ones. For tests and metrics.
    pub fn candidate_count(&self, facts: &RequestFacts<'_>) -> usize {
        let host = lookup_host(facts.host);
        let [exact, wildcard, generic] = self.candidate_lists(&host);
        exact.len() + wildcard.len() + generic.len()
    }

    fn candidate_lists(&self, host: &str) -> [&[usize]; 3] {
        let exact = self.by_host.get(host).map_or(&[][..], Vec::as_slice);
        let wildcard = match host.split_once('.') {
            Some((label, suffix)) if !label.is_empty() => self
                .by_wildcard_suffix
                .get(suffix)
                .map_or(&[][..], Vec::as_slice),
            _ => &[][..],
        };
        [exact, wildcard, self.generic.as_slice()]
    }

    /// The same answer as [`RouterTable::find`] by trying every router in order; for tests and
    /// diagnostics.
    pub fn find_linear(&self, facts: &RequestFacts<'_>) -> Option<&T> {
        self.routes
            .iter()
            .find(|r| r.rule.matches(facts))
            .map(|r| &r.value)
    }

    /// Routers in match order: rule, effective priority, value.
    pub fn iter(&self) -> impl Iterator<Item = (&HttpRule, i64, &T)> {
        self.routes.iter().map(|r| (&r.rule, r.priority, &r.value))
    }

    pub fn len(&self) -> usize {
        self.routes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// How many routers need evaluating regardless of host (host-less, regexp, negated).
    pub fn generic_len(&self) -> usize {
        self.generic.len()
    }
}

/// The index key of a request host: trailing dot dropped, lower-cased. Facts normally carry
/// the canonical host already, so this only copies for facts built by hand.
fn lookup_host(host: &str) -> Cow<'_, str> {
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(host.to_ascii_lowercase())
    } else {
        Cow::Borrowed(host)
    }
}

/// Indices arrive in ascending order, so a repeat (`Host(a) || Host(a)`) is always the last one.
fn push_once(list: &mut Vec<usize>, index: usize) {
    if list.last() != Some(&index) {
        list.push(index);
    }
}

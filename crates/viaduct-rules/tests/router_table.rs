//! The router table returns what a linear scan returns, while only trying the routers that can
//! match the request's host.

#![allow(clippy::unwrap_used)]

mod support;

use proptest::prelude::*;
use support::req;
use viaduct_rules::{parse_http, RouterEntry, RouterTable};

fn entry(rule: &str, priority: i64, tiebreak: u32, value: usize) -> RouterEntry<u32, usize> {
    let rule = parse_http(rule).unwrap_or_else(|e| panic!("{rule}: {e}"));
    let priority = if priority == 0 {
        rule.default_priority()
    } else {
        priority
    };
    RouterEntry {
        rule,
        priority,
        tiebreak,
        value,
    }
}

#[test]
fn ten_thousand_host_routers_cost_like_ten() {
    let mut entries: Vec<_> = (0..10_000)
        .map(|i| {
            entry(
                &format!("Host(`h{i}.example.com`) && PathPrefix(`/`)"),
                0,
                0,
                i,
            )
        })
        .collect();
    entries.push(entry("Host(`*.wild.com`)", 0, 0, 10_000));
    entries.push(entry("PathPrefix(`/static`)", 0, 0, 10_001));
    let table = RouterTable::new(entries);
    assert_eq!(table.len(), 10_002);
    assert_eq!(table.generic_len(), 1);
    let r = req("http://h1234.example.com/x");
    assert_eq!(table.find(&r.facts()), Some(&1234));
    assert_eq!(table.candidate_count(&r.facts()), 2);
    let r = req("http://a.wild.com/x");
    assert_eq!(table.find(&r.facts()), Some(&10_000));
    assert_eq!(table.candidate_count(&r.facts()), 2);
    let r = req("http://nobody.example.com/static/a.css");
    assert_eq!(table.find(&r.facts()), Some(&10_001));
    assert_eq!(table.find(&req("http://nobody.example.com/").facts()), None);
}

#[test]
fn disjunction_of_hosts_is_indexed_under_each() {
    let table = RouterTable::new(vec![
        entry("Host(`a.com`) || Host(`b.com`) || Host(`*.c.com`)", 0, 0, 1),
        entry("Host(`a.com`) || Path(`/x`)", 0, 0, 2),
        entry("!Host(`a.com`)", 0, 0, 3),
    ]);
    assert_eq!(table.generic_len(), 2);
    assert_eq!(table.find(&req("http://b.com/").facts()), Some(&1));
    assert_eq!(table.find(&req("http://x.c.com/").facts()), Some(&1));
    assert_eq!(table.find(&req("http://d.com/").facts()), Some(&3));
    assert_eq!(table.find(&req("http://d.com/x").facts()), Some(&2));
}

#[test]
fn ties_keep_tiebreak_then_input_order() {
    let table = RouterTable::new(vec![
        entry("Path(`/`)", 5, 2, 1),
        entry("Path(`/`)", 5, 1, 2),
        entry("Path(`/`)", 5, 1, 3),
    ]);
    let order: Vec<usize> = table.iter().map(|(_, _, v)| *v).collect();
    assert_eq!(order, vec![2, 3, 1]);
}

const HOSTS: &[&str] = &[
    "a.com",
    "b.com",
    "x.a.com",
    "y.b.com",
    "x.y.a.com",
    "A.COM",
    "",
];

fn atom() -> impl Strategy<Value = String> {
    prop_oneof![
        (0..4usize).prop_map(|i| format!("Host(`{}`)", ["a.com", "b.com", "x.a.com", "A.com."][i])),
        (0..2usize).prop_map(|i| format!("Host(`*.{}`)", ["a.com", "b.com"][i])),
        Just("Host(`*`)".to_owned()),
        Just(r"HostRegexp(`^[xy]\.`)".to_owned()),
        (0..3usize).prop_map(|i| format!("PathPrefix(`{}`)", ["/", "/a", "/b"][i])),
        (0..2usize).prop_map(|i| format!("Path(`{}`)", ["/a", "/b/c"][i])),
        Just("Method(`POST`)".to_owned()),
    ]
}

fn rule() -> impl Strategy<Value = String> {
    atom().prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            inner.clone().prop_map(|r| format!("!{r}")),
            inner.clone().prop_map(|r| format!("({r})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} && {b}")),
            (inner.clone(), inner).prop_map(|(a, b)| format!("({a} || {b})")),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn find_equals_linear_scan(
        rules in prop::collection::vec((rule(), prop_oneof![Just(0i64), -2i64..3], 0u32..3), 1..25),
        requests in prop::collection::vec(
            (0..HOSTS.len(), 0..5usize, any::<bool>()), 1..20),
    ) {
        let entries = rules
            .iter()
            .enumerate()
            .map(|(i, (r, p, t))| entry(r, *p, *t, i))
            .collect();
        let table = RouterTable::new(entries);
        for (h, p, post) in requests {
            let path = ["/", "/a", "/a/b", "/b/c", "/c"][p];
            let mut r = req(path).host(HOSTS[h]);
            if post {
                r = r.method("POST");
            }
            let facts = r.facts();
            prop_assert_eq!(table.find(&facts), table.find_linear(&facts), "host {:?} path {}", HOSTS[h], path);
        }
    }
}

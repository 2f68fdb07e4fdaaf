//! A strict reader of the Prometheus text exposition format (0.0.4): every sample must belong
//! to a family declared by `# TYPE`, label sets must be well formed, values must be numbers.
//! Histograms are checked for cumulative buckets ending in `+Inf` equal to `_count`.

use std::collections::{BTreeMap, HashMap};

use viaduct_testkit::{HttpClient, ProxyUnderTest};

pub type Labels = BTreeMap<String, String>;

/// GET `/metrics` on the `traefik` entry point, which must answer a well-formed exposition.
pub async fn scrape(proxy: &ProxyUnderTest, client: &HttpClient) -> Exposition {
    let reply = client
        .get(&format!("{}/metrics", proxy.url("traefik")))
        .await
        .unwrap();
    assert_eq!(reply.status, 200, "{}", reply.text());
    Exposition::parse(&reply.text()).unwrap_or_else(|e| panic!("{e}\n{}", reply.text()))
}

#[derive(Debug, Default)]
pub struct Exposition {
    pub types: HashMap<String, String>,
    pub samples: Vec<(String, Labels, f64)>,
}

impl Exposition {
    pub fn parse(text: &str) -> Result<Exposition, String> {
        let mut out = Exposition::default();
        for (n, line) in text.lines().enumerate() {
            let at = |e: String| format!("line {}: {e}: {line:?}", n + 1);
            if line.is_empty() {
                continue;
            }
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').ok_or_else(|| at("bad TYPE".into()))?;
                if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind) {
                    return Err(at(format!("unknown type {kind}")));
                }
                if out.types.insert(name.into(), kind.into()).is_some() {
                    return Err(at("family declared twice".into()));
                }
                continue;
            }
            if line.starts_with('#') {
                continue;
            }
            let (name, labels, value) = sample(line).map_err(at)?;
            let family =
                family_of(&name, &out.types).ok_or_else(|| at(format!("no TYPE for {name}")))?;
            if out.types[&family] == "histogram"
                && !(name.ends_with("_bucket")
                    || name.ends_with("_sum")
                    || name.ends_with("_count"))
            {
                return Err(at("bare histogram sample".into()));
            }
            out.samples.push((name, labels, value));
        }
        out.check_histograms()?;
        Ok(out)
    }

    /// The value of the sample `name` whose labels include all of `want`.
    pub fn value(&self, name: &str, want: &[(&str, &str)]) -> Option<f64> {
        let mut found = self.samples.iter().filter(|(n, labels, _)| {
            n == name
                && want
                    .iter()
                    .all(|(k, v)| labels.get(*k).map(String::as_str) == Some(*v))
        });
        let first = found.next().map(|(_, _, v)| *v);
        assert!(
            found.next().is_none(),
            "{name} {want:?} matches several samples"
        );
        first
    }

    /// Like [`Exposition::value`], 0 when absent (a series not yet created).
    pub fn value_or_zero(&self, name: &str, want: &[(&str, &str)]) -> f64 {
        self.value(name, want).unwrap_or(0.0)
    }

    pub fn names(&self) -> std::collections::BTreeSet<String> {
        self.samples.iter().map(|(n, _, _)| n.clone()).collect()
    }

    pub fn label_names(&self, name: &str) -> Vec<Vec<String>> {
        self.samples
            .iter()
            .filter(|(n, _, _)| n == name)
            .map(|(_, l, _)| l.keys().cloned().collect())
            .collect()
    }

    fn check_histograms(&self) -> Result<(), String> {
        let mut series: BTreeMap<(String, Labels), Vec<(f64, f64)>> = BTreeMap::new();
        let mut counts: BTreeMap<(String, Labels), f64> = BTreeMap::new();
        for (name, labels, value) in &self.samples {
            if let Some(base) = name.strip_suffix("_bucket") {
                let mut rest = labels.clone();
                let le = rest.remove("le").ok_or("bucket without le")?;
                let le = parse_number(&le)?;
                series
                    .entry((base.into(), rest))
                    .or_default()
                    .push((le, *value));
            } else if let Some(base) = name.strip_suffix("_count") {
                counts.insert((base.into(), labels.clone()), *value);
            }
        }
        for (key, buckets) in series {
            let mut previous = 0.0;
            for (_, v) in &buckets {
                if *v < previous {
                    return Err(format!("{key:?}: buckets not cumulative"));
                }
                previous = *v;
            }
            let last = buckets.last().ok_or("empty histogram")?;
            if last.0 != f64::INFINITY {
                return Err(format!("{key:?}: last bucket is not +Inf"));
            }
            if counts.get(&key) != Some(&last.1) {
                return Err(format!("{key:?}: +Inf bucket differs from _count"));
            }
        }
        Ok(())
    }
}

fn family_of(name: &str, types: &HashMap<String, String>) -> Option<String> {
    if types.contains_key(name) {
        return Some(name.into());
    }
    ["_bucket", "_sum", "_count"]
        .iter()
        .filter_map(|s| name.strip_suffix(s))
        .find(|base| {
            matches!(
                types.get(*base).map(String::as_str),
                Some("histogram" | "summary")
            )
        })
        .map(str::to_string)
}

fn sample(line: &str) -> Result<(String, Labels, f64), String> {
    let name_end = line.find(['{', ' ']).ok_or("no value")?;
    let name = &line[..name_end];
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
        || name.starts_with(|c: char| c.is_ascii_digit())
    {
        return Err(format!("bad metric name {name:?}"));
    }
    let mut labels = Labels::new();
    let mut rest = &line[name_end..];
    if let Some(body) = rest.strip_prefix('{') {
        let mut at = 0;
        loop {
            if body[at..].starts_with('}') {
                rest = &body[at + 1..];
                break;
            }
            let eq = body[at..].find('=').ok_or("label without =")? + at;
            let key = &body[at..eq];
            if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!("bad label name {key:?}"));
            }
            if !body[eq + 1..].starts_with('"') {
                return Err("label value not quoted".into());
            }
            let mut value = String::new();
            let mut end = None;
            let mut escaped = false;
            for (i, c) in body[eq + 2..].char_indices() {
                match (escaped, c) {
                    (true, 'n') => {
                        value.push('\n');
                        escaped = false
                    }
                    (true, c) => {
                        value.push(c);
                        escaped = false
                    }
                    (false, '\\') => escaped = true,
                    (false, '"') => {
                        end = Some(eq + 2 + i + 1);
                        break;
                    }
                    (false, c) => value.push(c),
                }
            }
            let end = end.ok_or("unterminated label value")?;
            if labels.insert(key.into(), value).is_some() {
                return Err(format!("label {key} twice"));
            }
            at = match &body[end..] {
                after if after.starts_with(',') => end + 1,
                after if after.starts_with('}') => end,
                _ => return Err("labels not separated by commas".into()),
            };
        }
    }
    let rest = rest.strip_prefix(' ').ok_or("no space before the value")?;
    let value = rest.split(' ').next().ok_or("no value")?;
    Ok((name.into(), labels, parse_number(value)?))
}

fn parse_number(text: &str) -> Result<f64, String> {
    match text {
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => text.parse().map_err(|_| format!("bad number {text:?}")),
    }
}

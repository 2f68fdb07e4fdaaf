//! `TRAEFIK_*` environment variables.
//!
//! A variable name is `TRAEFIK_` followed by the option path joined with `_`, in any case:
//! `TRAEFIK_ENTRYPOINTS_WEB_ADDRESS=:80`, `TRAEFIK_PROVIDERS_DOCKER=true`,
//! `TRAEFIK_LOG_LEVEL=INFO`. Since `_` separates both option names and user-chosen names,
//! segments are resolved against the model:
//!
//! - in a section, one segment names one option (Traefik option names contain no `_`);
//! - in a map (entry points, resolvers…), the name is the **shortest** run of segments after
//!   which the rest resolves as options of the value — so `TRAEFIK_ENTRYPOINTS_MY_EP_ADDRESS`
//!   declares the entry point `my_ep`; for maps of plain values (headers, labels) the name is
//!   everything left;
//! - in a list, a numeric segment is an index (`…_DOMAINS_0_MAIN`), otherwise the value is a
//!   comma-separated list;
//! - names taken from variables are lowercased (`WEB` → `web`), as in Traefik.

use crate::flat::decode_paths;
use crate::schema::{schema_of, Schema};
use crate::{ConfigError, Origin, StaticConfig};

/// The prefix of the variables read.
pub const ENV_PREFIX: &str = "TRAEFIK_";

/// Decodes the `TRAEFIK_*` variables of `env`; `None` when there are none.
pub fn decode_env(env: &[(String, String)]) -> Result<Option<StaticConfig>, ConfigError> {
    let variables: Vec<(&str, &str)> = env
        .iter()
        .filter_map(|(name, value)| {
            let has_prefix = name.len() > ENV_PREFIX.len()
                && name.is_char_boundary(ENV_PREFIX.len())
                && name[..ENV_PREFIX.len()].eq_ignore_ascii_case(ENV_PREFIX);
            has_prefix.then(|| (&name[ENV_PREFIX.len()..], value.as_str()))
        })
        .collect();
    if variables.is_empty() {
        return Ok(None);
    }
    let schema = schema_of::<StaticConfig>().ok_or_else(|| ConfigError {
        origin: Origin::Env,
        key: String::new(),
        line: None,
        message: "the static configuration model cannot be described".into(),
    })?;
    let mut paths = Vec::with_capacity(variables.len());
    for (rest, value) in variables {
        let segments: Vec<String> = rest.split('_').map(str::to_ascii_lowercase).collect();
        let path = resolve(&schema, &segments).ok_or_else(|| ConfigError {
            origin: Origin::Env,
            key: format!("{ENV_PREFIX}{rest}"),
            line: None,
            message: "no such static configuration option".into(),
        })?;
        paths.push((path, value.to_owned()));
    }
    decode_paths(paths, Origin::Env).map(Some)
}

/// The option path `segments` denote in `schema`, or `None` if they denote nothing.
pub(crate) fn resolve(schema: &Schema, segments: &[String]) -> Option<Vec<String>> {
    if segments.is_empty() {
        return Some(Vec::new());
    }
    match schema {
        Schema::Optional(inner) => resolve(inner, segments),
        Schema::Struct(fields) => {
            let (first, rest) = segments.split_first()?;
            let (name, field) = fields
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(first))?;
            prepend((*name).to_owned(), resolve(field, rest)?)
        }
        Schema::Map(value) => (1..=segments.len()).find_map(|split| {
            let rest = resolve(value, &segments[split..])?;
            prepend(segments[..split].join("_"), rest)
        }),
        Schema::Seq(element) => {
            let (first, rest) = segments.split_first()?;
            first.parse::<usize>().ok()?;
            prepend(first.clone(), resolve(element, rest)?)
        }
        // The shape below is unknown: treat every `_` as a level.
        Schema::Any => Some(segments.to_vec()),
        Schema::Scalar => None,
    }
}

fn prepend(head: String, mut rest: Vec<String>) -> Option<Vec<String>> {
    rest.insert(0, head);
    Some(rest)
}

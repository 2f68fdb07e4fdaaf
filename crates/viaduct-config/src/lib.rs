//! Traefik v3 configuration for Viaduct: the static and dynamic models and their loaders.
//!
//! Every source — YAML and TOML files, command-line flags, `TRAEFIK_*` variables, labels, KV
//! stores — becomes a value tree decoded by one set of rules ([`decode_value`]): keys are
//! case-insensitive, scalars lenient, unknown keys errors that name the key (and, for files,
//! the line).

#![cfg_attr(test, allow(clippy::unwrap_used))]

mod decode;
mod duration;
pub mod dynamic;
mod error;
pub mod flat;
pub mod load;
mod locate;
mod parse;
mod schema;
pub mod static_config;

pub use decode::decode_value;
pub use duration::{parse_go_duration, GoDuration};
pub use dynamic::*;
pub use error::{ConfigError, Origin};
pub use flat::{decode_flat, decode_labels};
pub use load::{load_static, LoadedStatic, StaticSource};
pub use locate::line_of_key;
pub use parse::{parse_document, Format};
pub use static_config::StaticConfig;

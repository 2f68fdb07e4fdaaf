//! Traefik v3 configuration for Viaduct: the static and dynamic models and their loaders.

mod decode;
mod duration;
pub mod dynamic;
mod error;
mod locate;
mod parse;
pub mod static_config;

pub use decode::decode_value;
pub use duration::{parse_go_duration, GoDuration};
pub use dynamic::*;
pub use error::{ConfigError, Origin};
pub use parse::{parse_document, Format};
pub use static_config::StaticConfig;

//! Traefik v3 configuration for Viaduct: the static and dynamic models and their loaders.

mod duration;
pub mod dynamic;
mod error;
mod parse;
pub mod static_config;

pub use duration::{parse_go_duration, GoDuration};
pub use dynamic::*;
pub use error::{ConfigError, Origin};
pub use parse::{parse_document, Format};
pub use static_config::StaticConfig;

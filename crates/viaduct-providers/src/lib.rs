//! Configuration providers and the aggregator that merges their output.
//!
//! Every provider produces complete dynamic configurations and sends them as
//! [`ProviderMessage`]s. The [`Aggregator`] keeps the latest configuration per provider,
//! throttles bursts, qualifies every name as `name@provider` and publishes one
//! [`MergedConfig`] for the compiler.

#![forbid(unsafe_code)]

mod aggregator;
mod error;
mod file;

use std::sync::Arc;

use viaduct_config::DynamicConfig;

pub use aggregator::{merge, Aggregator, MergedConfig};
pub use error::{FileError, ProviderError};
pub use file::{FileProvider, ObjectOrigin, ObjectOrigins, ReloadHandle, FILE_PROVIDER_NAME};

/// One complete configuration from one provider; it replaces that provider's previous one.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderMessage {
    /// The provider's name, used as the `@provider` suffix (`file`, `docker`, `internal`).
    pub provider: String,
    /// Shared, not copied: a large configuration is held once by the provider and the
    /// aggregator.
    pub config: Arc<DynamicConfig>,
}

//! Finding and reading the static configuration, Traefik's way (file, then flags, then
//! `TRAEFIK_*` environment variables; the first found wins).

use viaduct_config::load::{load_static, StaticSource};
use viaduct_config::StaticConfig;

pub struct Loaded {
    pub config: StaticConfig,
    pub source: StaticSource,
    /// Flags given alongside a configuration file, which Traefik (and so Viaduct) ignores.
    pub ignored_flags: Vec<String>,
}

impl Loaded {
    pub fn is_embedded(&self) -> bool {
        matches!(self.source, StaticSource::None)
    }

    pub fn describe(&self) -> String {
        match &self.source {
            StaticSource::File(path) => format!("file {}", path.display()),
            StaticSource::Flags => "command-line flags".into(),
            StaticSource::Env => "TRAEFIK_* environment variables".into(),
            StaticSource::None => "none found (embedded default)".into(),
        }
    }
}

pub fn load(args: &[String]) -> anyhow::Result<Loaded> {
    let env: Vec<(String, String)> = std::env::vars().collect();
    let cwd = std::env::current_dir()?;
    let loaded = load_static(args, &env, &cwd)?;
    let config = if matches!(loaded.source, StaticSource::None) {
        crate::embedded::static_config()
    } else {
        loaded.config
    };
    Ok(Loaded {
        config,
        source: loaded.source,
        ignored_flags: loaded.ignored_flags,
    })
}

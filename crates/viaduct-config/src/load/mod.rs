//! Loading the static configuration the way Traefik does.
//!
//! Three sources are tried in order and **the first that holds configuration wins**; they are
//! never merged:
//!
//! 1. a configuration file: `--configFile=PATH` (relative to the working directory), else the
//!    first of `traefik.toml`, `traefik.yaml`, `traefik.yml`, `viaduct.toml`, `viaduct.yaml`,
//!    `viaduct.yml` found in each search directory in turn (`/etc/traefik/`,
//!    `$XDG_CONFIG_HOME/`, `$HOME/.config/`, the working directory);
//! 2. command-line flags (see [`parse_flags`]);
//! 3. `TRAEFIK_*` environment variables (see [`env`]).
//!
//! If none is found the source is [`StaticSource::None`] and the configuration is the plain
//! default: the binary then uses its embedded default. Otherwise Traefik's implicit entry
//! points are applied ([`StaticConfig::with_implicit_defaults`]).

pub mod env;
mod flags;

use std::path::{Path, PathBuf};

use crate::flat::decode_flat;
use crate::{parse_document, ConfigError, Format, Origin, StaticConfig};

pub use flags::{parse_flags, Flag};

/// The static configuration and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedStatic {
    pub config: StaticConfig,
    pub source: StaticSource,
    /// Flags given next to a configuration file: Traefik ignores them, the binary should
    /// say so. Each is the flag as written.
    pub ignored_flags: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StaticSource {
    File(PathBuf),
    Flags,
    Env,
    None,
}

/// Base names of configuration files, in search order within one directory.
pub const CONFIG_FILE_NAMES: &[&str] = &[
    "traefik.toml",
    "traefik.yaml",
    "traefik.yml",
    "viaduct.toml",
    "viaduct.yaml",
    "viaduct.yml",
];

/// Loads the static configuration from `args` (without the program name or sub-command),
/// the environment `env` and, for files, the default search directories.
pub fn load_static(
    args: &[String],
    env: &[(String, String)],
    cwd: &Path,
) -> Result<LoadedStatic, ConfigError> {
    load_static_with(args, env, cwd, &default_search_dirs(env, cwd))
}

/// As [`load_static`], searching configuration files in `search_dirs` only.
pub fn load_static_with(
    args: &[String],
    env: &[(String, String)],
    cwd: &Path,
    search_dirs: &[PathBuf],
) -> Result<LoadedStatic, ConfigError> {
    let flags = parse_flags(args)?;
    let (config_files, other_flags): (Vec<_>, Vec<_>) = flags
        .into_iter()
        .partition(|flag| flag.key.eq_ignore_ascii_case("configFile"));
    let file = match config_files.last() {
        Some(flag) => Some(explicit_config_file(&cwd.join(&flag.value))?),
        None => find_config_file(search_dirs),
    };
    if let Some(path) = file {
        return Ok(LoadedStatic {
            config: read_static_file(&path)?.with_implicit_defaults(),
            source: StaticSource::File(path),
            ignored_flags: other_flags.into_iter().map(|f| f.written).collect(),
        });
    }
    if !other_flags.is_empty() {
        let pairs: Vec<(String, String)> =
            other_flags.into_iter().map(|f| (f.key, f.value)).collect();
        let config: StaticConfig = decode_flat(&pairs, Origin::Flags)?;
        return Ok(loaded(config.with_implicit_defaults(), StaticSource::Flags));
    }
    if let Some(config) = env::decode_env(env)? {
        return Ok(loaded(config.with_implicit_defaults(), StaticSource::Env));
    }
    Ok(loaded(StaticConfig::default(), StaticSource::None))
}

/// `/etc/traefik`, `$XDG_CONFIG_HOME`, `$HOME/.config`, `cwd`, reading the variables from
/// `env` (not the process) so callers and tests control them.
pub fn default_search_dirs(env: &[(String, String)], cwd: &Path) -> Vec<PathBuf> {
    let var = |name: &str| {
        env.iter()
            .rev()
            .find(|(key, value)| key == name && !value.is_empty())
            .map(|(_, value)| PathBuf::from(value))
    };
    let mut dirs = vec![PathBuf::from("/etc/traefik")];
    dirs.extend(var("XDG_CONFIG_HOME"));
    dirs.extend(var("HOME").map(|home| home.join(".config")));
    dirs.push(cwd.to_path_buf());
    dirs
}

/// The first configuration file found, directory by directory.
pub fn find_config_file(search_dirs: &[PathBuf]) -> Option<PathBuf> {
    search_dirs.iter().find_map(|dir| {
        CONFIG_FILE_NAMES
            .iter()
            .map(|name| dir.join(name))
            .find(|path| path.is_file())
    })
}

/// Reads and decodes one static configuration file (format from its extension).
pub fn read_static_file(path: &Path) -> Result<StaticConfig, ConfigError> {
    let origin = Origin::File(path.to_path_buf());
    let format = Format::from_path(path).ok_or_else(|| ConfigError {
        origin: origin.clone(),
        key: String::new(),
        line: None,
        message: "unsupported file extension: use .yml, .yaml or .toml".into(),
    })?;
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        origin: origin.clone(),
        key: String::new(),
        line: None,
        message: format!("cannot read the configuration file: {e}"),
    })?;
    parse_document(&text, format, origin)
}

fn explicit_config_file(path: &Path) -> Result<PathBuf, ConfigError> {
    if path.is_file() {
        Ok(path.to_path_buf())
    } else {
        Err(ConfigError {
            origin: Origin::Flags,
            key: "configFile".into(),
            line: None,
            message: format!("configuration file {} not found", path.display()),
        })
    }
}

fn loaded(config: StaticConfig, source: StaticSource) -> LoadedStatic {
    LoadedStatic {
        config,
        source,
        ignored_flags: Vec::new(),
    }
}

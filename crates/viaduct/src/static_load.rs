//! Finding and reading the static configuration.

use std::path::{Path, PathBuf};

use viaduct_config::{parse_document, Format, Origin, StaticConfig};

pub enum StaticSource {
    File(PathBuf),
    Embedded,
}

pub struct LoadedStatic {
    pub config: StaticConfig,
    pub source: StaticSource,
}

/// `--configFile=PATH` or the first traefik/viaduct file in Traefik's search path.
pub fn load(args: &[String]) -> anyhow::Result<LoadedStatic> {
    let explicit = args.iter().enumerate().find_map(|(i, a)| {
        let lower = a.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("--configfile=") {
            Some(a[a.len() - v.len()..].to_string())
        } else if lower == "--configfile" {
            args.get(i + 1).cloned()
        } else {
            None
        }
    });
    let path = match explicit {
        Some(p) => Some(PathBuf::from(p)),
        None => search(),
    };
    let Some(path) = path else {
        return Ok(LoadedStatic {
            config: crate::embedded::static_config(),
            source: StaticSource::Embedded,
        });
    };
    let text =
        std::fs::read_to_string(&path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let format = Format::from_path(&path).unwrap_or(Format::Yaml);
    let config: StaticConfig = parse_document(&text, format, Origin::File(path.clone()))?;
    Ok(LoadedStatic {
        config,
        source: StaticSource::File(path),
    })
}

fn search() -> Option<PathBuf> {
    let mut dirs = vec![PathBuf::from("/etc/traefik")];
    if let Some(x) = std::env::var_os("XDG_CONFIG_HOME") {
        dirs.push(PathBuf::from(x));
    }
    if let Some(h) = std::env::var_os("HOME") {
        dirs.push(Path::new(&h).join(".config"));
    }
    dirs.push(PathBuf::from("."));
    for dir in dirs {
        for base in ["traefik", "viaduct"] {
            for ext in ["toml", "yaml", "yml"] {
                let candidate = dir.join(format!("{base}.{ext}"));
                if candidate.is_file() {
                    return Some(candidate);
                }
            }
        }
    }
    None
}

//! The process log (`log.level`, `log.format`, `log.filePath`, `log.noColor`).

use tracing_subscriber::EnvFilter;
use viaduct_config::static_config::Log;

/// Traefik's levels mapped onto tracing's (FATAL and PANIC are ERROR).
fn level(name: &str) -> &'static str {
    match name.trim().to_ascii_uppercase().as_str() {
        "TRACE" => "trace",
        "DEBUG" => "debug",
        "INFO" => "info",
        "WARN" | "WARNING" => "warn",
        _ => "error",
    }
}

pub fn init(config: &Log) -> anyhow::Result<()> {
    // RUST_LOG overrides, for debugging Viaduct itself.
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level(&config.level)));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    let json = config.format.eq_ignore_ascii_case("json");
    match &config.file_path {
        Some(path) if !path.is_empty() => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| anyhow::anyhow!("log.filePath {path}: {e}"))?;
            let builder = builder
                .with_ansi(false)
                .with_writer(std::sync::Mutex::new(file));
            if json {
                builder.json().init();
            } else {
                builder.init();
            }
        }
        _ => {
            let builder = builder
                .with_ansi(!config.no_color)
                .with_writer(std::io::stderr);
            if json {
                builder.json().init();
            } else {
                builder.init();
            }
        }
    }
    Ok(())
}

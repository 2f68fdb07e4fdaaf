//! The process log (`log.level`, `log.format`, `log.filePath`, `log.noColor`), with a file
//! that can be reopened after rotation (SIGUSR1).

use std::fs::{File, OpenOptions};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tracing_subscriber::fmt::writer::MutexGuardWriter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;
use viaduct_config::static_config::Log;

/// What [`init`] set up that outlives it: the log file, to reopen on SIGUSR1.
#[derive(Debug, Clone, Default)]
pub struct LogHandle {
    file: Option<LogFile>,
}

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("log.filePath {path}: {source}")]
    Open {
        path: String,
        source: std::io::Error,
    },
    #[error("the process log is already set up: {0}")]
    AlreadySet(String),
}

/// A log file shared with the subscriber, swapped in place when reopened.
#[derive(Debug, Clone)]
struct LogFile {
    path: PathBuf,
    file: Arc<Mutex<File>>,
}

/// Traefik's levels mapped onto tracing's (FATAL and PANIC are ERROR).
pub fn level_filter(name: &str) -> &'static str {
    match name.trim().to_ascii_uppercase().as_str() {
        "TRACE" => "trace",
        "DEBUG" => "debug",
        "INFO" => "info",
        "WARN" | "WARNING" => "warn",
        _ => "error",
    }
}

/// Installs the global subscriber. `RUST_LOG` overrides the level, for debugging Viaduct
/// itself.
pub fn init(config: &Log) -> Result<LogHandle, LogError> {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(level_filter(&config.level)));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    let json = config.format.eq_ignore_ascii_case("json");
    let already = |e: Box<dyn std::error::Error + Send + Sync>| LogError::AlreadySet(e.to_string());
    match config.file_path.as_deref().filter(|p| !p.trim().is_empty()) {
        Some(path) => {
            let file = LogFile::open(PathBuf::from(path))?;
            let builder = builder.with_ansi(false).with_writer(file.clone());
            if json {
                builder
                    .json()
                    .flatten_event(true)
                    .try_init()
                    .map_err(already)?;
            } else {
                builder.try_init().map_err(already)?;
            }
            Ok(LogHandle { file: Some(file) })
        }
        None => {
            let builder = builder
                .with_ansi(!config.no_color)
                .with_writer(std::io::stderr);
            if json {
                builder
                    .json()
                    .flatten_event(true)
                    .try_init()
                    .map_err(already)?;
            } else {
                builder.try_init().map_err(already)?;
            }
            Ok(LogHandle::default())
        }
    }
}

impl LogHandle {
    /// Reopens `log.filePath` (after logrotate moved it). Without a file, does nothing.
    pub fn reopen(&self) -> Result<(), LogError> {
        match &self.file {
            Some(file) => file.reopen(),
            None => Ok(()),
        }
    }
}

impl LogFile {
    fn open(path: PathBuf) -> Result<LogFile, LogError> {
        let file = open_append(&path)?;
        Ok(LogFile {
            path,
            file: Arc::new(Mutex::new(file)),
        })
    }

    fn reopen(&self) -> Result<(), LogError> {
        let fresh = open_append(&self.path)?;
        *self.file.lock().unwrap_or_else(|e| e.into_inner()) = fresh;
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LogFile {
    type Writer = MutexGuardWriter<'a, File>;

    fn make_writer(&'a self) -> Self::Writer {
        self.file.make_writer()
    }
}

fn open_append(path: &PathBuf) -> Result<File, LogError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|source| LogError::Open {
            path: path.display().to_string(),
            source,
        })
}

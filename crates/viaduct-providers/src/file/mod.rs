//! The file provider: dynamic configuration from one file or a directory of files.

mod combine;
mod files;
mod origins;
mod watch;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{mpsc, Notify};
use viaduct_config::static_config;
use viaduct_config::DynamicConfig;

use crate::{FileError, ProviderError, ProviderMessage};
use files::{FileSet, Source};
pub use origins::{ObjectOrigin, ObjectOrigins};

/// The name the file provider's objects are qualified with (`name@file`).
pub const FILE_PROVIDER_NAME: &str = "file";

/// Reads dynamic configuration from `providers.file`, watches it and sends every change.
///
/// Unlike Traefik, which drops the whole update when any file is bad, each file is isolated:
/// a file that fails to parse keeps contributing its last good configuration.
#[derive(Debug)]
pub struct FileProvider {
    source: Source,
    watch: bool,
    log_rendered: bool,
    reload: Arc<Notify>,
}

/// Forces the provider to re-read every file now (the binary calls it on SIGHUP).
#[derive(Debug, Clone)]
pub struct ReloadHandle {
    reload: Arc<Notify>,
}

impl FileProvider {
    /// Builds the provider; exactly one of `filename` and `directory` must be set.
    pub fn new(options: &static_config::FileProvider) -> Result<Self, ProviderError> {
        let filename = non_empty(options.filename.as_deref());
        let directory = non_empty(options.directory.as_deref());
        let source = match (filename, directory) {
            (Some(_), Some(_)) => return Err(ProviderError::FileBothSources),
            (None, None) => return Err(ProviderError::FileNoSource),
            (Some(file), None) => Source::Filename(PathBuf::from(file)),
            (None, Some(dir)) => Source::Directory(PathBuf::from(dir)),
        };
        Ok(FileProvider {
            source,
            watch: options.watch,
            log_rendered: options.debug_log_generated_template,
            reload: Arc::new(Notify::new()),
        })
    }

    pub fn reload_handle(&self) -> ReloadHandle {
        ReloadHandle {
            reload: Arc::clone(&self.reload),
        }
    }

    /// Reads everything once and reports every error (for `viaduct check`). Bad files
    /// contribute nothing; the rest is merged.
    pub fn load_once(&self) -> (Arc<DynamicConfig>, Vec<FileError>) {
        let (config, _, errors) = self.load_once_with_origins();
        (config, errors)
    }

    /// As [`load_once`](Self::load_once), and where each object is defined.
    pub fn load_once_with_origins(&self) -> (Arc<DynamicConfig>, ObjectOrigins, Vec<FileError>) {
        let mut set = FileSet::new(self.source.clone(), self.log_rendered);
        let errors = set.refresh(true);
        let (config, owners) = combine::combine_with_owners(set.contributions());
        let origins = ObjectOrigins::locate(owners, &set);
        (Arc::new(config), origins, errors)
    }

    /// Sends the current configuration at once, then each time it changes, until `tx` closes.
    pub async fn run(self, tx: mpsc::Sender<ProviderMessage>) {
        let set = Arc::new(Mutex::new(FileSet::new(
            self.source.clone(),
            self.log_rendered,
        )));
        let fs_changed = Arc::new(Notify::new());
        // Kept alive for as long as the provider runs.
        let _watcher = if self.watch {
            match watch::watch(&self.source, Arc::clone(&fs_changed)) {
                Ok(watcher) => Some(watcher),
                Err(e) => {
                    tracing::error!(
                        provider = FILE_PROVIDER_NAME,
                        source = ?self.source,
                        error = %e,
                        "cannot watch the configuration files; changes are applied on reload (SIGHUP) only"
                    );
                    None
                }
            }
        } else {
            None
        };

        let mut last_sent: Option<Arc<DynamicConfig>> = None;
        let mut force = true;
        loop {
            let config = refresh(&set, force).await;
            let unchanged = |c: &Arc<DynamicConfig>| {
                last_sent
                    .as_ref()
                    .is_some_and(|last| Arc::ptr_eq(last, c) || **last == **c)
            };
            if let Some(config) = config.filter(|c| !unchanged(c)) {
                let message = ProviderMessage {
                    provider: FILE_PROVIDER_NAME.to_owned(),
                    config: Arc::clone(&config),
                };
                if tx.send(message).await.is_err() {
                    return;
                }
                last_sent = Some(config);
            }
            tokio::select! {
                _ = fs_changed.notified() => {
                    watch::debounce(&fs_changed).await;
                    force = false;
                }
                _ = self.reload.notified() => force = true,
                _ = tx.closed() => return,
            }
        }
    }
}

impl ReloadHandle {
    /// Asks for a full re-read. Several calls before the provider wakes count as one.
    pub fn reload(&self) {
        self.reload.notify_one();
    }
}

/// Re-reads the files off the async threads, logs what went wrong and returns the merged
/// configuration; `None` only if the reading task itself died (the next change retries).
async fn refresh(set: &Arc<Mutex<FileSet>>, force: bool) -> Option<Arc<DynamicConfig>> {
    let set = Arc::clone(set);
    let task = tokio::task::spawn_blocking(move || {
        let mut set = set.lock().unwrap_or_else(PoisonError::into_inner);
        let errors = set.refresh(force);
        for error in &errors {
            log_file_error(&set, error);
        }
        combine::combine(set.contributions())
    });
    match task.await {
        Ok(config) => Some(config),
        Err(e) => {
            tracing::error!(provider = FILE_PROVIDER_NAME, error = %e, "reading the configuration files failed");
            None
        }
    }
}

fn log_file_error(set: &FileSet, error: &FileError) {
    let file = error.path().display();
    if matches!(error, FileError::ListDirectory { .. }) {
        tracing::error!(provider = FILE_PROVIDER_NAME, file = %file, "{error}");
    } else if set.has_last_good(error.path()) {
        tracing::error!(provider = FILE_PROVIDER_NAME, file = %file, "{error}; keeping its last good configuration");
    } else {
        tracing::error!(provider = FILE_PROVIDER_NAME, file = %file, "{error}; it contributes nothing");
    }
}

fn non_empty(value: Option<&str>) -> Option<&str> {
    value.filter(|v| !v.is_empty())
}

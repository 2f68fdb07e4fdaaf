//! Turning filesystem events into debounced "something changed" signals.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::event::{AccessKind, AccessMode};
use notify::{Event, EventKind, RecursiveMode, Watcher};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::files::{is_hidden, Source};

/// How long the files must stay quiet before they are read: editors write in several steps.
pub(crate) const QUIET_PERIOD: Duration = Duration::from_millis(150);
/// The longest a burst of events can delay a read, so a file written continuously still loads.
pub(crate) const MAX_DELAY: Duration = Duration::from_secs(1);

/// Starts watching `source`; each relevant event wakes `changed`. The watcher stops when the
/// returned value is dropped.
pub(crate) fn watch(
    source: &Source,
    changed: Arc<Notify>,
) -> Result<notify::RecommendedWatcher, notify::Error> {
    let filter = EventFilter::new(source);
    let mut watcher =
        notify::recommended_watcher(move |event: notify::Result<Event>| match event {
            Ok(event) if filter.is_relevant(&event) => changed.notify_one(),
            Ok(_) => {}
            // A lost event (queue overflow) may hide a change: read again to be safe.
            Err(_) => changed.notify_one(),
        })?;
    let (path, mode) = match source {
        // The parent directory, so that a file replaced by rename (as editors and Kubernetes
        // do) is still seen.
        Source::Filename(file) => (parent_dir(file), RecursiveMode::NonRecursive),
        Source::Directory(dir) => (dir.clone(), RecursiveMode::Recursive),
    };
    watcher.watch(&path, mode)?;
    Ok(watcher)
}

/// Waits until `changed` has been quiet for [`QUIET_PERIOD`], or [`MAX_DELAY`] has passed.
pub(crate) async fn debounce(changed: &Notify) {
    let cap = Instant::now() + MAX_DELAY;
    loop {
        let now = Instant::now();
        if now >= cap {
            return;
        }
        let quiet_until = (now + QUIET_PERIOD).min(cap);
        tokio::select! {
            _ = changed.notified() => continue,
            _ = tokio::time::sleep_until(quiet_until) => return,
        }
    }
}

struct EventFilter {
    /// For a single file, the only name in its directory that matters.
    file_name: Option<OsString>,
}

impl EventFilter {
    fn new(source: &Source) -> Self {
        let file_name = match source {
            Source::Filename(file) => file.file_name().map(OsString::from),
            Source::Directory(_) => None,
        };
        EventFilter { file_name }
    }

    fn is_relevant(&self, event: &Event) -> bool {
        // Reading a file (our own reads included) opens and closes it; only a finished
        // write among access events means new content.
        if let EventKind::Access(kind) = event.kind {
            if kind != AccessKind::Close(AccessMode::Write) {
                return false;
            }
        }
        event.paths.iter().any(|path| self.concerns(path))
    }

    fn concerns(&self, path: &Path) -> bool {
        let Some(name) = path.file_name() else {
            return true;
        };
        match &self.file_name {
            // `..data` is how a Kubernetes ConfigMap volume swaps every file at once.
            Some(wanted) => name == wanted || name.to_string_lossy().starts_with(".."),
            None => !is_hidden(path) || name.to_string_lossy().starts_with(".."),
        }
    }
}

fn parent_dir(file: &Path) -> PathBuf {
    match file.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{CreateKind, ModifyKind};

    fn event(kind: EventKind, path: &str) -> Event {
        Event::new(kind).add_path(PathBuf::from(path))
    }

    #[test]
    fn single_file_filter_ignores_siblings_and_reads() {
        let filter = EventFilter::new(&Source::Filename("/etc/v/dyn.yml".into()));
        let modify = EventKind::Modify(ModifyKind::Any);
        assert!(filter.is_relevant(&event(modify, "/etc/v/dyn.yml")));
        assert!(filter.is_relevant(&event(modify, "/etc/v/..data")));
        assert!(!filter.is_relevant(&event(modify, "/etc/v/other.yml")));
        let open = EventKind::Access(AccessKind::Open(AccessMode::Any));
        assert!(!filter.is_relevant(&event(open, "/etc/v/dyn.yml")));
        let closed_write = EventKind::Access(AccessKind::Close(AccessMode::Write));
        assert!(filter.is_relevant(&event(closed_write, "/etc/v/dyn.yml")));
    }

    #[test]
    fn directory_filter_ignores_hidden_scratch_files() {
        let filter = EventFilter::new(&Source::Directory("/etc/v".into()));
        let create = EventKind::Create(CreateKind::File);
        assert!(filter.is_relevant(&event(create, "/etc/v/sub/a.yml")));
        assert!(filter.is_relevant(&event(create, "/etc/v/sub")));
        assert!(!filter.is_relevant(&event(create, "/etc/v/.a.yml.swp")));
    }
}

//! The set of configuration files a file provider reads, each with its last good parse.

use std::collections::{BTreeMap, BTreeSet};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use viaduct_config::{parse_document, DynamicConfig, Format, Origin};

use crate::FileError;

/// Where the provider's configuration lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Source {
    Filename(PathBuf),
    Directory(PathBuf),
}

/// Every file of a [`Source`] with what it last contributed. A file that fails to parse keeps
/// contributing its last good configuration, so one bad edit never takes the others down.
#[derive(Debug)]
pub(crate) struct FileSet {
    source: Source,
    files: BTreeMap<PathBuf, FileEntry>,
    /// `debugLogGeneratedTemplate`: log what each file's template rendered to.
    log_rendered: bool,
}

#[derive(Debug, Default)]
struct FileEntry {
    /// The text last read, to skip re-parsing (and re-reporting) an untouched file.
    text: Option<String>,
    last_good: Option<Arc<DynamicConfig>>,
}

impl FileSet {
    pub(crate) fn new(source: Source, log_rendered: bool) -> Self {
        FileSet {
            source,
            files: BTreeMap::new(),
            log_rendered,
        }
    }

    /// Re-reads the source. Returns the errors found in files that changed since the last
    /// refresh, or in every file when `force` is set.
    pub(crate) fn refresh(&mut self, force: bool) -> Vec<FileError> {
        let mut errors = Vec::new();
        let (paths, unreadable_dirs) = match &self.source {
            Source::Filename(path) => (vec![path.clone()], Vec::new()),
            Source::Directory(dir) => {
                let mut listing = Listing::default();
                listing.walk(dir);
                (listing.files, listing.unreadable_dirs)
            }
        };

        // Files under a directory we could not list keep their last good configuration;
        // a directory that is gone takes its files with it.
        let mut kept_dirs = Vec::new();
        for (dir, source) in unreadable_dirs {
            if source.kind() != ErrorKind::NotFound {
                kept_dirs.push(dir.clone());
            }
            errors.push(FileError::ListDirectory { path: dir, source });
        }
        let listed: BTreeSet<&PathBuf> = paths.iter().collect();
        self.files.retain(|path, _| {
            listed.contains(path) || kept_dirs.iter().any(|d| path.starts_with(d))
        });

        let single_file = matches!(self.source, Source::Filename(_));
        for path in &paths {
            match std::fs::read_to_string(path) {
                Ok(text) => {
                    if let Some(error) = self.update(path, text, force) {
                        errors.push(error);
                    }
                }
                // A file listed a moment ago and gone now was deleted: it stops contributing.
                // The one configured `filename` missing is worth reporting, though.
                Err(source) if source.kind() == ErrorKind::NotFound => {
                    self.files.remove(path);
                    if single_file {
                        errors.push(FileError::Read {
                            path: path.clone(),
                            source,
                        });
                    }
                }
                Err(source) => {
                    let entry = self.files.entry(path.clone()).or_default();
                    entry.text = None;
                    errors.push(FileError::Read {
                        path: path.clone(),
                        source,
                    });
                }
            }
        }
        errors
    }

    /// Every file's last good configuration, in path order.
    pub(crate) fn contributions(&self) -> impl Iterator<Item = (&Path, &Arc<DynamicConfig>)> {
        self.files
            .iter()
            .filter_map(|(path, entry)| Some((path.as_path(), entry.last_good.as_ref()?)))
    }

    /// The text last read from `path`.
    pub(crate) fn text(&self, path: &Path) -> Option<&str> {
        self.files.get(path)?.text.as_deref()
    }

    /// True when `path` has a last good configuration that it still contributes.
    pub(crate) fn has_last_good(&self, path: &Path) -> bool {
        self.files
            .get(path)
            .is_some_and(|entry| entry.last_good.is_some())
    }

    fn update(&mut self, path: &Path, text: String, force: bool) -> Option<FileError> {
        let entry = self.files.entry(path.to_path_buf()).or_default();
        if !force && entry.text.as_deref() == Some(text.as_str()) {
            return None;
        }
        // The listing only yields known extensions, but a `filename` may have any.
        let Some(format) = Format::from_path(path) else {
            return Some(FileError::UnsupportedExtension {
                path: path.to_path_buf(),
            });
        };
        let rendered = match render(path, &text, self.log_rendered) {
            Ok(rendered) => rendered,
            Err(source) => {
                entry.text = Some(text);
                return Some(FileError::Template {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        let parsed = parse_document::<DynamicConfig>(&rendered, format, Origin::File(path.into()));
        entry.text = Some(text);
        match parsed {
            Ok(config) => {
                entry.last_good = Some(Arc::new(config));
                None
            }
            Err(source) => Some(FileError::Parse {
                path: path.to_path_buf(),
                source,
            }),
        }
    }
}

/// Renders a file as the Go template Traefik reads it as, with `.` set to `false` as Traefik
/// sets it. Text without an action renders to itself and is not copied.
fn render<'t>(
    path: &Path,
    text: &'t str,
    log_rendered: bool,
) -> Result<std::borrow::Cow<'t, str>, viaduct_template::Error> {
    if !text.contains("{{") {
        return Ok(std::borrow::Cow::Borrowed(text));
    }
    let name = path.display().to_string();
    let rendered = viaduct_template::render(&name, text, &viaduct_template::Value::Bool(false))?;
    if log_rendered {
        tracing::debug!(provider = "file", file = %name, rendered = %rendered, "template rendered");
    }
    Ok(std::borrow::Cow::Owned(rendered))
}

/// The configuration files under a directory, found recursively.
#[derive(Default)]
struct Listing {
    files: Vec<PathBuf>,
    unreadable_dirs: Vec<(PathBuf, std::io::Error)>,
}

impl Listing {
    fn walk(&mut self, dir: &Path) {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) => {
                self.unreadable_dirs.push((dir.to_path_buf(), e));
                return;
            }
        };
        let mut children: Vec<PathBuf> = Vec::new();
        for entry in entries {
            match entry {
                Ok(entry) => children.push(entry.path()),
                Err(e) => self.unreadable_dirs.push((dir.to_path_buf(), e)),
            }
        }
        // Sorted per directory, descending as we go: the same order as sorting full paths.
        children.sort();
        for child in children {
            if is_hidden(&child) {
                continue;
            }
            // Not following symlinked directories avoids loops; symlinked files are read.
            match std::fs::symlink_metadata(&child) {
                Ok(meta) if meta.is_dir() => self.walk(&child),
                Ok(_) if is_config_file(&child) => self.files.push(child),
                Ok(_) => {}
                // Gone between listing and looking: nothing to read.
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => self.unreadable_dirs.push((child, e)),
            }
        }
    }
}

/// Hidden entries are editor scratch (`.#foo.yml`, `.foo.yml.swp`) or machinery such as a
/// Kubernetes ConfigMap's `..data` directory, whose files are already seen through symlinks.
pub(crate) fn is_hidden(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with('.'))
}

pub(crate) fn is_config_file(path: &Path) -> bool {
    Format::from_path(path).is_some()
}

//! Where each object of the file provider's configuration is defined, so that `viaduct check`
//! can name the file (and line) of an object the compiler rejects. The running proxy does not
//! need it: only [`FileProvider::load_once_with_origins`](super::FileProvider) computes it.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use viaduct_config::{line_of_key, Format};

use super::files::FileSet;

/// The origin of every object, by its dotted key without the provider's name
/// (`http.routers.api` for the router `api@file`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectOrigins {
    by_object: BTreeMap<String, ObjectOrigin>,
}

/// The file that defines an object and, when it can be found in the text, the 1-based line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectOrigin {
    pub file: PathBuf,
    pub line: Option<usize>,
}

impl ObjectOrigins {
    /// `object` is a dotted key: `http.routers.api`, `tcp.services.db`, `tls.options.strict`.
    pub fn get(&self, object: &str) -> Option<&ObjectOrigin> {
        self.by_object.get(object)
    }

    pub fn is_empty(&self) -> bool {
        self.by_object.is_empty()
    }

    /// The origins of the objects `owners` attributes to the files of `set`.
    pub(crate) fn locate(owners: BTreeMap<String, &Path>, set: &FileSet) -> ObjectOrigins {
        let by_object = owners
            .into_iter()
            .map(|(object, path)| {
                let line = set
                    .text(path)
                    .zip(Format::from_path(path))
                    .and_then(|(text, format)| line_of_key(text, format, &object));
                let origin = ObjectOrigin {
                    file: path.to_path_buf(),
                    line,
                };
                (object, origin)
            })
            .collect();
        ObjectOrigins { by_object }
    }
}

/// `routes.yml:12`, or `routes.yml` without a line.
impl fmt::Display for ObjectOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}", self.file.display()),
            None => write!(f, "{}", self.file.display()),
        }
    }
}

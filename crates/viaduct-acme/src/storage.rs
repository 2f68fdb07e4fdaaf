//! Where resolvers keep their account and certificates: Traefik's `acme.json` layout (an object keyed by resolver
//! name), behind [`CertificateStorage`] so that a shared store (a KV store with a lock, for several instances) can take
//! the file's place later.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::AcmeError;

/// One resolver's stored data, as Traefik writes it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResolverData {
    /// Traefik's account, kept as read so that Traefik can take the file back.
    #[serde(rename = "Account", default, skip_serializing_if = "Option::is_none")]
    pub account: Option<StoredAccount>,
    /// Viaduct's account. Traefik signs with RSA account keys, which Viaduct's ACME client cannot use, and reads only
    /// RSA keys in `Account`: each keeps its own account, and Traefik ignores this field.
    #[serde(
        rename = "ViaductAccount",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub viaduct_account: Option<StoredAccount>,
    #[serde(rename = "Certificates", default, deserialize_with = "null_as_empty")]
    pub certificates: Vec<StoredCertificate>,
}

/// An ACME account (Traefik's `acme.Account`). `private_key` is the DER key, base64 in JSON: an RSA PKCS#1 key in
/// Traefik's account, a P-256 PKCS#8 key in Viaduct's.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StoredAccount {
    #[serde(rename = "Email", default)]
    pub email: String,
    #[serde(rename = "Registration", default)]
    pub registration: Option<Registration>,
    #[serde(rename = "PrivateKey", default, with = "base64_bytes")]
    pub private_key: Vec<u8>,
    #[serde(rename = "KeyType", default)]
    pub key_type: String,
}

/// lego's `registration.Resource`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Registration {
    #[serde(default)]
    pub body: Value,
    #[serde(default)]
    pub uri: String,
}

/// One certificate: the PEM chain and PEM key, each base64-encoded in JSON.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StoredCertificate {
    pub domain: StoredDomain,
    #[serde(default, with = "base64_bytes")]
    pub certificate: Vec<u8>,
    #[serde(default, with = "base64_bytes")]
    pub key: Vec<u8>,
    #[serde(rename = "Store", default)]
    pub store: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StoredDomain {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub main: String,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_empty"
    )]
    pub sans: Vec<String>,
}

/// Storage for resolvers' data. Implementations serialise writes themselves; a shared implementation will also offer
/// a lock so that only one instance orders at a time.
pub trait CertificateStorage: Send + Sync + std::fmt::Debug {
    /// The data stored for `resolver`, if any.
    fn load(&self, resolver: &str) -> Result<Option<ResolverData>, AcmeError>;
    /// Replaces the data of `resolver`, keeping other resolvers' data.
    fn save(&self, resolver: &str, data: &ResolverData) -> Result<(), AcmeError>;
}

/// Traefik's `acme.json`: mode 0600, replaced atomically (written to a temporary file, then renamed). Several resolvers
/// may share one file.
#[derive(Debug)]
pub struct FileStorage {
    path: PathBuf,
    write_lock: Mutex<()>,
}

impl FileStorage {
    pub fn new(path: impl Into<PathBuf>) -> FileStorage {
        FileStorage {
            path: path.into(),
            write_lock: Mutex::new(()),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn read_all(&self) -> Result<BTreeMap<String, Value>, AcmeError> {
        let text = match std::fs::read(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
            Err(source) => {
                return Err(AcmeError::StorageIo {
                    path: self.path.clone(),
                    action: "read",
                    source,
                })
            }
        };
        if text.iter().all(u8::is_ascii_whitespace) {
            return Ok(BTreeMap::new());
        }
        serde_json::from_slice(&text).map_err(|source| AcmeError::StorageFormat {
            path: self.path.clone(),
            source,
        })
    }

    fn write_all(&self, all: &BTreeMap<String, Value>) -> Result<(), AcmeError> {
        let io = |action: &'static str| {
            let path = self.path.clone();
            move |source| AcmeError::StorageIo {
                path,
                action,
                source,
            }
        };
        let text = serde_json::to_vec_pretty(all).map_err(|source| AcmeError::StorageFormat {
            path: self.path.clone(),
            source,
        })?;
        let dir = match self.path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&dir).map_err(io("create the directory of"))?;
        let file_name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "acme.json".into());
        let temporary = dir.join(format!(".{file_name}.tmp"));
        {
            let mut file = open_private(&temporary).map_err(io("create a temporary file for"))?;
            file.write_all(&text).map_err(io("write"))?;
            file.sync_all().map_err(io("flush"))?;
        }
        std::fs::rename(&temporary, &self.path).map_err(io("replace"))
    }
}

impl CertificateStorage for FileStorage {
    fn load(&self, resolver: &str) -> Result<Option<ResolverData>, AcmeError> {
        check_mode(&self.path);
        let Some(value) = self.read_all()?.remove(resolver) else {
            return Ok(None);
        };
        if value.is_null() {
            return Ok(None);
        }
        serde_json::from_value(value)
            .map(Some)
            .map_err(|source| AcmeError::StorageFormat {
                path: self.path.clone(),
                source,
            })
    }

    fn save(&self, resolver: &str, data: &ResolverData) -> Result<(), AcmeError> {
        let _serialised = self
            .write_lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut all = self.read_all()?;
        let value = serde_json::to_value(data).map_err(|source| AcmeError::StorageFormat {
            path: self.path.clone(),
            source,
        })?;
        all.insert(resolver.to_string(), value);
        self.write_all(&all)
    }
}

#[cfg(unix)]
fn open_private(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    // An existing temporary file keeps its mode through `open`.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    Ok(file)
}

#[cfg(not(unix))]
fn open_private(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::File::create(path)
}

/// Traefik refuses an `acme.json` readable by others; Viaduct warns and tightens the mode, since the file holds keys.
#[cfg(unix)]
fn check_mode(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = std::fs::metadata(path) else {
        return;
    };
    if meta.permissions().mode() & 0o077 != 0 {
        tracing::warn!(path = %path.display(), "ACME storage is readable by others; setting its mode to 0600");
        if let Err(e) = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)) {
            tracing::warn!(path = %path.display(), error = %e, "cannot set the mode of the ACME storage");
        }
    }
}

#[cfg(not(unix))]
fn check_mode(_path: &Path) {}

fn null_as_empty<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

/// Go's JSON encoding of `[]byte`: standard base64, `null` for nil.
mod base64_bytes {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = Option::<String>::deserialize(d)?.unwrap_or_default();
        STANDARD
            .decode(text.trim())
            .map_err(serde::de::Error::custom)
    }
}

//! `acme.json`: Traefik's layout read as is, written back atomically with mode 0600, other resolvers kept.

#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt;

use base64::Engine as _;
use viaduct_acme::{
    CertificateStorage, FileStorage, LoadedCertificate, ResolverData, StoredCertificate,
    StoredDomain,
};

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A certificate and its key in the PEM forms lego writes (`EC PRIVATE KEY` is SEC1).
fn certificate_for(names: &[&str]) -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let params =
        rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .unwrap();
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), key.serialize_pem())
}

#[test]
fn a_traefik_acme_json_is_read_as_is() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("acme.json");
    let (cert, key) = certificate_for(&["app.example.com", "www.example.com"]);
    // As Traefik writes it: an RSA PKCS#1 account key, lego's registration, `null` SANs allowed.
    let text = format!(
        r#"{{
  "le": {{
    "Account": {{
      "Email": "admin@example.com",
      "Registration": {{"body": {{"status": "valid", "contact": ["mailto:admin@example.com"]}}, "uri": "https://acme.example/acct/1"}},
      "PrivateKey": "{account_key}",
      "KeyType": "4096"
    }},
    "Certificates": [
      {{"domain": {{"main": "app.example.com", "sans": ["www.example.com"]}}, "certificate": "{cert}", "key": "{key}", "Store": "default"}},
      {{"domain": {{"main": "other.example.com", "sans": null}}, "certificate": "", "key": "", "Store": "default"}}
    ]
  }},
  "other": {{"Account": null, "Certificates": null}}
}}"#,
        account_key = b64(b"not really a key"),
        cert = b64(cert.as_bytes()),
        key = b64(key.as_bytes()),
    );
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();

    let storage = FileStorage::new(&path);
    let data = storage.load("le").unwrap().unwrap();
    let account = data.account.as_ref().unwrap();
    assert_eq!(account.email, "admin@example.com");
    assert_eq!(account.private_key, b"not really a key");
    assert_eq!(
        account.registration.as_ref().unwrap().uri,
        "https://acme.example/acct/1"
    );
    assert_eq!(data.certificates.len(), 2);
    assert!(data.certificates[1].domain.sans.is_empty());

    let loaded = LoadedCertificate::parse(&data.certificates[0]).unwrap();
    assert_eq!(loaded.names, ["app.example.com", "www.example.com"]);
    assert!(loaded.covers("WWW.example.com."));
    assert!(!loaded.covers("example.com"));
    assert!(LoadedCertificate::parse(&data.certificates[1]).is_err());

    let empty = storage.load("other").unwrap().unwrap();
    assert!(empty.account.is_none() && empty.certificates.is_empty());
    assert!(storage.load("missing").unwrap().is_none());
}

#[test]
fn saving_writes_mode_0600_and_keeps_other_resolvers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub").join("acme.json");
    let storage = FileStorage::new(&path);
    assert!(
        storage.load("le").unwrap().is_none(),
        "a missing file is empty"
    );
    let (cert, key) = certificate_for(&["*.example.com"]);
    let data = ResolverData {
        account: None,
        viaduct_account: None,
        certificates: vec![StoredCertificate {
            domain: StoredDomain {
                main: "*.example.com".into(),
                sans: vec![],
            },
            certificate: cert.into_bytes(),
            key: key.into_bytes(),
            store: "default".into(),
        }],
    };
    storage.save("le", &data).unwrap();
    storage.save("other", &ResolverData::default()).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(storage.load("le").unwrap().unwrap(), data);

    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let stored = &json["le"]["Certificates"][0];
    assert_eq!(stored["domain"]["main"], "*.example.com");
    assert!(
        stored["domain"].get("sans").is_none(),
        "empty SANs are omitted, as Go does"
    );
    assert_eq!(stored["Store"], "default");
    assert!(json.get("other").is_some());

    let loaded = LoadedCertificate::parse(&data.certificates[0]).unwrap();
    assert!(loaded.covers("a.example.com"));
    assert!(
        !loaded.covers("a.b.example.com"),
        "a wildcard covers one label"
    );
    assert!(!loaded.covers("example.com"));
}

#[test]
fn a_damaged_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("acme.json");
    std::fs::write(&path, "{not json").unwrap();
    let error = FileStorage::new(&path).load("le").unwrap_err().to_string();
    assert!(
        error.contains("acme.json") && error.contains("invalid content"),
        "{error}"
    );
}

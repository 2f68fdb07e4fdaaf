//! A TLS scan of a live Viaduct with sslyze: no protocol below TLS 1.2, no weak cipher suite.

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is the failure report

mod common;

/// The suites Viaduct may accept for TLS 1.2: ECDHE key exchange with an AEAD cipher.
const STRONG_TLS12: &[&str] = &[
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
];

const TLS_ROUTE: &str = r#"
http:
  routers:
    secure:
      rule: "PathPrefix(`/`)"
      service: whoami@internal
      tls: {}
"#;

fn sslyze_python() -> std::path::PathBuf {
    std::env::var_os("SSLYZE_PYTHON")
        .map(Into::into)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv-sslyze/bin/python")
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs sslyze"]
async fn sslyze_finds_no_old_protocol_and_no_weak_suite() {
    let proxy = common::start(TLS_ROUTE, &[]).await;
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("scan.json");
    let target = format!("127.0.0.1:{}", proxy.port("web"));
    let status = tokio::process::Command::new(sslyze_python())
        .args([
            "-m",
            "sslyze",
            "--quiet",
            "--sslv2",
            "--sslv3",
            "--tlsv1",
            "--tlsv1_1",
            "--tlsv1_2",
            "--tlsv1_3",
        ])
        .arg(format!("--json_out={}", report.display()))
        .arg(&target)
        .status()
        .await
        .expect("running sslyze (set SSLYZE_PYTHON to a python with sslyze installed)");
    assert!(status.success(), "sslyze failed: {status}");
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let result = &json["server_scan_results"][0]["scan_result"];
    let accepted = |scan: &str| -> Vec<String> {
        assert_eq!(
            result[scan]["status"], "COMPLETED",
            "{scan}: {}",
            result[scan]
        );
        result[scan]["result"]["accepted_cipher_suites"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["cipher_suite"]["name"].as_str().unwrap().to_string())
            .collect()
    };
    for old in [
        "ssl_2_0_cipher_suites",
        "ssl_3_0_cipher_suites",
        "tls_1_0_cipher_suites",
        "tls_1_1_cipher_suites",
    ] {
        assert!(
            accepted(old).is_empty(),
            "{old} must be refused: {:?}",
            accepted(old)
        );
    }
    let tls12 = accepted("tls_1_2_cipher_suites");
    assert!(!tls12.is_empty(), "TLS 1.2 stays available");
    for suite in &tls12 {
        assert!(
            STRONG_TLS12.contains(&suite.as_str()),
            "weak TLS 1.2 suite accepted: {suite}"
        );
    }
    assert!(
        !accepted("tls_1_3_cipher_suites").is_empty(),
        "TLS 1.3 is offered"
    );
}

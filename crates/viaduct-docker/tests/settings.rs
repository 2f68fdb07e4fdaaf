//! Static options: what the provider accepts, refuses, and how it behaves without an engine.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::mpsc;
use viaduct_config::static_config::{ClientTls, DockerProvider as DockerOptions};
use viaduct_docker::{DockerError, DockerProvider, Endpoint, TlsFiles};

fn options(edit: impl FnOnce(&mut DockerOptions)) -> DockerOptions {
    let mut options = DockerOptions::default();
    edit(&mut options);
    options
}

#[test]
fn endpoints() {
    assert_eq!(
        Endpoint::new(&options(|_| {})).unwrap(),
        Endpoint::Unix(PathBuf::from("/var/run/docker.sock"))
    );
    assert_eq!(
        Endpoint::new(&options(|o| o.endpoint = "tcp://127.0.0.1:2375".into())).unwrap(),
        Endpoint::Tcp {
            address: "127.0.0.1:2375".into(),
            tls: None
        }
    );
    let with_tls = options(|o| {
        o.endpoint = "tcp://docker.example:2376".into();
        o.tls = Some(ClientTls {
            ca: Some("/c/ca.pem".into()),
            cert: Some("/c/cert.pem".into()),
            key: Some("/c/key.pem".into()),
            insecure_skip_verify: false,
        });
    });
    assert_eq!(
        Endpoint::new(&with_tls).unwrap(),
        Endpoint::Tcp {
            address: "docker.example:2376".into(),
            tls: Some(TlsFiles {
                ca: "/c/ca.pem".into(),
                cert: "/c/cert.pem".into(),
                key: "/c/key.pem".into(),
            })
        }
    );
}

#[test]
fn bad_options_are_refused_with_their_key() {
    let cases: Vec<(DockerOptions, &str)> = vec![
        (
            options(|o| o.endpoint = "ftp://x".into()),
            "providers.docker.endpoint",
        ),
        (
            options(|o| o.endpoint = "unix://".into()),
            "socket path is empty",
        ),
        (
            options(|o| o.endpoint = "https://x:2376".into()),
            "needs `tls`",
        ),
        (
            options(|o| {
                o.endpoint = "tcp://x:2376".into();
                o.tls = Some(ClientTls {
                    ca: Some("/ca".into()),
                    ..Default::default()
                });
            }),
            "providers.docker.tls",
        ),
        (
            options(|o| o.constraints = Some("Label(`a`)".into())),
            "providers.docker.constraints",
        ),
        (
            options(|o| o.default_rule = "Host(`{{ .Nope }}`)".into()),
            "providers.docker.defaultRule",
        ),
    ];
    for (options, needle) in cases {
        let err: DockerError = DockerProvider::new(&options).unwrap_err();
        assert!(err.to_string().contains(needle), "{needle} not in {err}");
    }
}

#[tokio::test]
async fn without_an_engine_it_retries_until_the_channel_closes() {
    let provider = DockerProvider::new(&options(|o| {
        o.endpoint = "unix:///nonexistent/viaduct-test/docker.sock".into()
    }))
    .unwrap();
    let (tx, mut rx) = mpsc::channel(4);
    let task = tokio::spawn(provider.run(tx));
    // Nothing is sent while the engine cannot be read.
    let nothing = tokio::time::timeout(Duration::from_millis(1500), rx.recv()).await;
    assert!(
        nothing.is_err(),
        "a configuration was sent without an engine"
    );
    drop(rx);
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("the provider ends when its channel closes")
        .unwrap();
}

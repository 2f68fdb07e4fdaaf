//! What the KV providers' tests share: reading what a provider sends, and a small store.

use std::time::Duration;

use tokio::sync::mpsc;
use viaduct_config::DynamicConfig;
use viaduct_providers::ProviderMessage;

/// The next configuration `provider` sends (within 10 s).
pub async fn next(rx: &mut mpsc::Receiver<ProviderMessage>, provider: &str) -> DynamicConfig {
    let message = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("a configuration within 10 s")
        .expect("the provider is running");
    assert_eq!(message.provider, provider);
    (*message.config).clone()
}

/// Fails if a configuration arrives within `wait`.
pub async fn nothing_for(rx: &mut mpsc::Receiver<ProviderMessage>, wait: Duration) {
    if let Ok(Some(message)) = tokio::time::timeout(wait, rx.recv()).await {
        panic!("unexpected configuration: {:?}", message.config);
    }
}

/// The HTTP routers' names, sorted.
pub fn routers(config: &DynamicConfig) -> Vec<String> {
    config
        .http
        .as_ref()
        .map(|http| http.routers.keys().cloned().collect())
        .unwrap_or_default()
}

/// One router and its service, as keys under `traefik/`.
pub const R1: [(&str, &str); 3] = [
    ("traefik/http/routers/r1/rule", "Host(`a.test`)"),
    ("traefik/http/routers/r1/service", "s"),
    (
        "traefik/http/services/s/loadbalancer/servers/0/url",
        "http://127.0.0.1:1",
    ),
];

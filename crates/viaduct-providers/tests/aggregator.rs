//! The aggregator: throttling, skipping unchanged messages, publishing generations.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{router_doc, yaml};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use viaduct_providers::{Aggregator, MergedConfig, ProviderMessage};

struct Running {
    tx: mpsc::Sender<ProviderMessage>,
    out: watch::Receiver<Arc<MergedConfig>>,
    task: JoinHandle<()>,
}

impl Running {
    fn start(throttle: Duration) -> Running {
        let (tx, rx) = mpsc::channel(16);
        let (out_tx, out) = watch::channel(Arc::new(MergedConfig::default()));
        let task = tokio::spawn(Aggregator::new(throttle).run(rx, out_tx));
        Running { tx, out, task }
    }

    async fn send(&self, provider: &str, router: &str, rule: &str) {
        let message = ProviderMessage {
            provider: provider.into(),
            config: yaml(&router_doc(router, rule)).into(),
        };
        self.tx.send(message).await.unwrap();
        // Let the aggregator take the message before the test looks.
        tokio::time::sleep(Duration::from_millis(1)).await;
    }

    fn generation(&self) -> u64 {
        self.out.borrow().generation
    }

    fn rule(&self, router: &str) -> Option<String> {
        common::rule_of(&self.out.borrow().config, router)
    }

    async fn stop(self) -> watch::Receiver<Arc<MergedConfig>> {
        drop(self.tx);
        self.task.await.unwrap();
        self.out
    }
}

#[tokio::test(start_paused = true)]
async fn first_message_applies_at_once_and_a_burst_is_coalesced() {
    let running = Running::start(Duration::from_secs(2));

    running.send("file", "r", "Host(`v1`)").await;
    assert_eq!(running.generation(), 1);
    assert_eq!(running.rule("r@file").unwrap(), "Host(`v1`)");

    for version in ["v2", "v3", "v4"] {
        tokio::time::sleep(Duration::from_millis(300)).await;
        running
            .send("file", "r", &format!("Host(`{version}`)"))
            .await;
    }
    assert_eq!(running.generation(), 1, "held back by the throttle");

    // The window opened by v1 ends 2 s after it: only the latest of the burst applies.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(running.generation(), 2);
    assert_eq!(running.rule("r@file").unwrap(), "Host(`v4`)");

    // Applying v4 opened a new window.
    running.send("file", "r", "Host(`v5`)").await;
    assert_eq!(running.generation(), 2);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(running.rule("r@file").unwrap(), "Host(`v5`)");
    assert_eq!(running.generation(), 3);
    running.stop().await;
}

#[tokio::test(start_paused = true)]
async fn throttling_is_per_provider() {
    let running = Running::start(Duration::from_secs(2));
    running.send("file", "a", "Host(`a1`)").await;
    running.send("file", "a", "Host(`a2`)").await;

    running.send("docker", "b", "Host(`b1`)").await;

    assert_eq!(running.rule("b@docker").unwrap(), "Host(`b1`)");
    assert_eq!(running.rule("a@file").unwrap(), "Host(`a1`)");
    assert_eq!(running.generation(), 2);
    running.stop().await;
}

#[tokio::test(start_paused = true)]
async fn unchanged_messages_are_skipped() {
    let running = Running::start(Duration::ZERO);
    running.send("file", "r", "Host(`same`)").await;
    running.send("file", "r", "Host(`same`)").await;
    assert_eq!(running.generation(), 1);

    // A burst that ends where it started publishes nothing new.
    let running2 = Running::start(Duration::from_secs(2));
    running2.send("file", "r", "Host(`x`)").await;
    running2.send("file", "r", "Host(`y`)").await;
    running2.send("file", "r", "Host(`x`)").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(running2.generation(), 1);
    assert_eq!(running2.rule("r@file").unwrap(), "Host(`x`)");
    running.stop().await;
    running2.stop().await;
}

#[tokio::test(start_paused = true)]
async fn zero_throttle_applies_every_message() {
    let running = Running::start(Duration::ZERO);
    for version in ["1", "2", "3"] {
        running.send("file", "r", version).await;
        assert_eq!(running.rule("r@file").unwrap(), version);
    }
    assert_eq!(running.generation(), 3);
    running.stop().await;
}

#[tokio::test(start_paused = true)]
async fn held_back_configuration_is_applied_when_providers_stop() {
    let running = Running::start(Duration::from_secs(2));
    running.send("file", "r", "Host(`v1`)").await;
    running.send("file", "r", "Host(`v2`)").await;

    let out = running.stop().await;

    assert_eq!(out.borrow().generation, 2);
    assert_eq!(
        common::rule_of(&out.borrow().config, "r@file").unwrap(),
        "Host(`v2`)"
    );
}

#[tokio::test(start_paused = true)]
async fn the_first_merge_is_published_even_when_empty() {
    let running = Running::start(Duration::from_secs(2));
    let message = ProviderMessage {
        provider: "file".into(),
        config: Default::default(),
    };
    running.tx.send(message).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(running.generation(), 1);
    assert!(running.out.borrow().config.is_empty());
    running.stop().await;
}

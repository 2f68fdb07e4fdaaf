//! Dynamic configuration reloads: hitless under load, last-good on a broken edit, SIGHUP.

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is the failure report

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{get, routed_to, start, start_with, wait_backend};
use viaduct_testkit::{EchoBackend, HttpClient};

const OLD_ROUTER: &str = r#"
    old:
      rule: "PathPrefix(`/old`)"
      service: a
"#;

const NEW_ROUTER: &str = r#"
    new:
      rule: "PathPrefix(`/new`)"
      service: b
"#;

fn old_only() -> String {
    routed_to(OLD_ROUTER, &["a"])
}

fn old_and_new() -> String {
    routed_to(&format!("{OLD_ROUTER}{NEW_ROUTER}"), &["a", "b"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_under_load_drops_no_request_and_adds_the_new_route() {
    let a = EchoBackend::start("a").await.unwrap();
    let b = EchoBackend::start("b").await.unwrap();
    let proxy = start(&old_only(), &[("a", a.url()), ("b", b.url())]).await;
    let client = HttpClient::http1();
    wait_backend(&proxy, &client, "app.test", "/old", "a").await;

    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for worker in 0..2 {
        let (client, stop, sent) = (client.clone(), Arc::clone(&stop), Arc::clone(&sent));
        let url = format!("{}/old/{worker}", proxy.url("web"));
        workers.push(tokio::spawn(async move {
            let mut failures = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                match client.get_host(&url, "app.test").await {
                    Ok(reply) if reply.status == 200 && reply.backend() == Some("a") => {}
                    Ok(reply) => failures.push(format!(
                        "status {} from {:?}",
                        reply.status,
                        reply.backend()
                    )),
                    Err(e) => failures.push(e.to_string()),
                }
                sent.fetch_add(1, Ordering::Relaxed);
            }
            failures
        }));
    }

    // Several edits while requests flow: add the route, remove it, add it back.
    let started = Instant::now();
    for (i, config) in [old_and_new(), old_only(), old_and_new()]
        .iter()
        .enumerate()
    {
        tokio::time::sleep(Duration::from_millis(700)).await;
        proxy.write_dynamic(config).unwrap();
        if i == 0 {
            wait_backend(&proxy, &client, "app.test", "/new", "b").await;
        }
    }
    wait_backend(&proxy, &client, "app.test", "/new", "b").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let mut failures = Vec::new();
    for worker in workers {
        failures.extend(worker.await.unwrap());
    }
    let total = sent.load(Ordering::Relaxed);
    assert!(
        total > 20,
        "only {total} requests in {:?}",
        started.elapsed()
    );
    assert!(
        failures.is_empty(),
        "{} of {total} requests failed during reloads: {failures:?}",
        failures.len()
    );
}

/// A syntax error in the file keeps the last good configuration, and the log names the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_edit_keeps_the_last_good_configuration() {
    let a = EchoBackend::start("a").await.unwrap();
    let proxy = start(&old_only(), &[("a", a.url())]).await;
    let client = HttpClient::http1();
    wait_backend(&proxy, &client, "app.test", "/old", "a").await;

    let mark = proxy.log_mark();
    proxy
        .write_dynamic("http:\n  routers: [unclosed\n    old: {\n")
        .unwrap();
    proxy
        .wait_for_log_line(mark, &["dynamic.yml", "error"], Duration::from_secs(10))
        .await
        .unwrap_or_else(|e| panic!("no error line names the broken file: {e}"));
    for _ in 0..10 {
        assert_eq!(
            get(&proxy, &client, "app.test", "/old").await.backend(),
            Some("a")
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // And a good edit after the broken one is picked up.
    let b = EchoBackend::start("b").await.unwrap();
    proxy
        .write_dynamic(&old_and_new().replace("{{b}}", &b.url()))
        .unwrap();
    wait_backend(&proxy, &client, "app.test", "/new", "b").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_forces_a_reread_of_the_file() {
    let a = EchoBackend::start("a").await.unwrap();
    let b = EchoBackend::start("b").await.unwrap();
    let static_yaml = common::static_config("").replace("    watch: true", "    watch: false");
    let proxy = start_with(&static_yaml, &old_only(), &[("a", a.url()), ("b", b.url())]).await;
    let client = HttpClient::http1();
    wait_backend(&proxy, &client, "app.test", "/old", "a").await;

    proxy.write_dynamic(&old_and_new()).unwrap();
    // Unwatched: the edit alone changes nothing.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(get(&proxy, &client, "app.test", "/new").await.status, 404);
    proxy.sighup().unwrap();
    wait_backend(&proxy, &client, "app.test", "/new", "b").await;
    assert_eq!(
        get(&proxy, &client, "app.test", "/old").await.backend(),
        Some("a")
    );
}

/// Once the configuration has settled, Viaduct releases its start-up code's pages (see
/// `viaduct-startup-pages`); requests and a reload afterwards run on code mapped back on demand.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_and_reloads_after_the_start_up_code_is_released() {
    let a = EchoBackend::start("a").await.unwrap();
    let b = EchoBackend::start("b").await.unwrap();
    let proxy = start(&old_only(), &[("a", a.url()), ("b", b.url())]).await;
    let client = HttpClient::http1();
    wait_backend(&proxy, &client, "app.test", "/old", "a").await;
    let released = "released the start-up code's pages";
    if !proxy.kind().is_traefik() {
        proxy
            .wait_for_log(released, Duration::from_secs(10))
            .await
            .unwrap_or_else(|e| panic!("the start-up pages were not released: {e}"));
    }
    assert_eq!(
        get(&proxy, &client, "app.test", "/old").await.backend(),
        Some("a")
    );

    let mark = proxy.log_mark();
    proxy.write_dynamic(&old_and_new()).unwrap();
    wait_backend(&proxy, &client, "app.test", "/new", "b").await;
    if !proxy.kind().is_traefik() {
        // The compiler's code came back for the reload, and is released again.
        proxy
            .wait_for_log_line(mark, &[released], Duration::from_secs(10))
            .await
            .unwrap_or_else(|e| panic!("not released again after the reload: {e}"));
    }
    for path in ["/old", "/new"] {
        assert_eq!(get(&proxy, &client, "app.test", path).await.status, 200);
    }
}

//! The running file provider: first message, watching, per-file isolation, reload.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use common::{router_doc, router_names, rule_of, write};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use viaduct_config::static_config;
use viaduct_providers::{FileProvider, ProviderMessage};

/// Long enough for the debounce (150 ms quiet) and inotify on a loaded machine.
const UPDATE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long "nothing else arrives" is checked for.
const QUIET: Duration = Duration::from_millis(500);

struct Running {
    rx: mpsc::Receiver<ProviderMessage>,
    task: JoinHandle<()>,
}

impl Running {
    fn start(options: static_config::FileProvider) -> (Running, viaduct_providers::ReloadHandle) {
        let provider = FileProvider::new(&options).unwrap();
        let reload = provider.reload_handle();
        let (tx, rx) = mpsc::channel(16);
        let task = tokio::spawn(provider.run(tx));
        (Running { rx, task }, reload)
    }

    fn directory(dir: &Path) -> Running {
        Running::start(static_config::FileProvider {
            directory: Some(dir.display().to_string()),
            ..Default::default()
        })
        .0
    }

    async fn next(&mut self) -> ProviderMessage {
        tokio::time::timeout(UPDATE_TIMEOUT, self.rx.recv())
            .await
            .expect("no configuration update in time")
            .expect("provider stopped")
    }

    async fn assert_quiet(&mut self) {
        if let Ok(message) = tokio::time::timeout(QUIET, self.rx.recv()).await {
            panic!("unexpected update: {message:?}");
        }
    }

    /// Closing the channel stops the provider.
    async fn stop(self) {
        drop(self.rx);
        tokio::time::timeout(UPDATE_TIMEOUT, self.task)
            .await
            .expect("provider did not stop")
            .unwrap();
    }
}

#[tokio::test]
async fn first_configuration_is_sent_at_once() {
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("a.yml"), &router_doc("a", "Host(`a`)"));
    let mut running = Running::directory(dir.path());

    let first = running.next().await;

    assert_eq!(first.provider, "file");
    assert_eq!(router_names(&first.config), ["a"]);
    running.stop().await;
}

#[tokio::test]
async fn a_file_written_in_several_steps_gives_one_update_with_the_final_content() {
    let dir = tempfile::tempdir().unwrap();
    let mut running = Running::directory(dir.path());
    assert!(running.next().await.config.is_empty());

    // A half-written file, then a valid draft, then the final text: without the debounce
    // the draft would be sent too.
    let path = dir.path().join("app.yml");
    let final_doc = router_doc("app", "Host(`final`)");
    let mut file = std::fs::File::create(&path).unwrap();
    file.write_all(&final_doc.as_bytes()[..final_doc.len() / 2])
        .unwrap();
    file.flush().unwrap();
    drop(file);
    for step in [router_doc("app", "Host(`draft`)"), final_doc] {
        tokio::time::sleep(Duration::from_millis(40)).await;
        std::fs::write(&path, step).unwrap();
    }

    let update = running.next().await;
    assert_eq!(rule_of(&update.config, "app").unwrap(), "Host(`final`)");
    running.assert_quiet().await;
    running.stop().await;
}

#[tokio::test]
async fn a_broken_file_keeps_its_last_good_config_while_others_apply() {
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("a.yml"), &router_doc("a", "Host(`a`)"));
    write(&dir.path().join("b.yml"), &router_doc("b", "Host(`b`)"));
    let mut running = Running::directory(dir.path());
    assert_eq!(router_names(&running.next().await.config), ["a", "b"]);

    write(&dir.path().join("a.yml"), "http:\n  routers: [\n");
    // The merged result did not change: nothing to send.
    running.assert_quiet().await;

    write(&dir.path().join("b.yml"), &router_doc("b", "Host(`b2`)"));
    let update = running.next().await;
    assert_eq!(rule_of(&update.config, "a").unwrap(), "Host(`a`)");
    assert_eq!(rule_of(&update.config, "b").unwrap(), "Host(`b2`)");

    write(&dir.path().join("a.yml"), &router_doc("a", "Host(`a2`)"));
    let update = running.next().await;
    assert_eq!(rule_of(&update.config, "a").unwrap(), "Host(`a2`)");
    running.stop().await;
}

#[tokio::test]
async fn a_bad_file_at_startup_contributes_nothing_but_the_rest_applies() {
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("bad.yml"), "http: [\n");
    write(
        &dir.path().join("good.yml"),
        &router_doc("good", "Host(`g`)"),
    );
    let mut running = Running::directory(dir.path());

    assert_eq!(router_names(&running.next().await.config), ["good"]);

    write(
        &dir.path().join("bad.yml"),
        &router_doc("fixed", "Host(`f`)"),
    );
    assert_eq!(
        router_names(&running.next().await.config),
        ["fixed", "good"]
    );
    running.stop().await;
}

#[tokio::test]
async fn deleting_a_file_removes_its_objects() {
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("a.yml"), &router_doc("a", "Host(`a`)"));
    write(&dir.path().join("sub/b.yml"), &router_doc("b", "Host(`b`)"));
    let mut running = Running::directory(dir.path());
    assert_eq!(router_names(&running.next().await.config), ["a", "b"]);

    std::fs::remove_file(dir.path().join("a.yml")).unwrap();
    assert_eq!(router_names(&running.next().await.config), ["b"]);

    std::fs::remove_dir_all(dir.path().join("sub")).unwrap();
    assert!(running.next().await.config.is_empty());
    running.stop().await;
}

#[tokio::test]
async fn a_single_file_replaced_by_rename_is_seen() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dynamic.yml");
    write(&file, &router_doc("r", "Host(`old`)"));
    write(
        &dir.path().join("other.yml"),
        &router_doc("other", "Host(`o`)"),
    );
    let (mut running, _) = Running::start(static_config::FileProvider {
        filename: Some(file.display().to_string()),
        ..Default::default()
    });
    assert_eq!(router_names(&running.next().await.config), ["r"]);

    // Editors save by writing a scratch file and renaming it over the original.
    let scratch = dir.path().join(".dynamic.yml.tmp");
    write(&scratch, &router_doc("r", "Host(`new`)"));
    std::fs::rename(&scratch, &file).unwrap();

    let update = running.next().await;
    assert_eq!(rule_of(&update.config, "r").unwrap(), "Host(`new`)");
    // Siblings of the watched file do not count.
    write(
        &dir.path().join("other.yml"),
        &router_doc("other", "Host(`o2`)"),
    );
    running.assert_quiet().await;
    running.stop().await;
}

#[tokio::test]
async fn reload_rereads_when_watching_is_off() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dynamic.toml");
    write(&file, "[http.routers.r]\nrule = \"Host(`one`)\"\n");
    let (mut running, reload) = Running::start(static_config::FileProvider {
        filename: Some(file.display().to_string()),
        watch: false,
        ..Default::default()
    });
    assert_eq!(
        rule_of(&running.next().await.config, "r").unwrap(),
        "Host(`one`)"
    );

    write(&file, "[http.routers.r]\nrule = \"Host(`two`)\"\n");
    running.assert_quiet().await;

    reload.clone().reload();
    let update = running.next().await;
    assert_eq!(rule_of(&update.config, "r").unwrap(), "Host(`two`)");

    // A reload that finds nothing new sends nothing.
    reload.reload();
    running.assert_quiet().await;
    running.stop().await;
}

#[tokio::test]
async fn a_directory_that_cannot_be_watched_still_serves_and_reloads() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("conf");
    let (mut running, reload) = Running::start(static_config::FileProvider {
        directory: Some(conf.display().to_string()),
        ..Default::default()
    });
    assert!(running.next().await.config.is_empty());

    write(&conf.join("a.yml"), &router_doc("a", "Host(`a`)"));
    reload.reload();
    assert_eq!(router_names(&running.next().await.config), ["a"]);
    running.stop().await;
}

#[tokio::test]
async fn files_in_a_new_subdirectory_are_watched() {
    let dir = tempfile::tempdir().unwrap();
    let mut running = Running::directory(dir.path());
    assert!(running.next().await.config.is_empty());

    std::fs::create_dir(dir.path().join("new")).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    write(&dir.path().join("new/a.yml"), &router_doc("a", "Host(`a`)"));
    assert_eq!(router_names(&running.next().await.config), ["a"]);

    write(
        &dir.path().join("new/a.yml"),
        &router_doc("a", "Host(`a2`)"),
    );
    assert_eq!(
        rule_of(&running.next().await.config, "a").unwrap(),
        "Host(`a2`)"
    );
    running.stop().await;
}

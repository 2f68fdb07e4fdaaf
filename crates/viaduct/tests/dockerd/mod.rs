//! A private Docker Engine for one test: its own socket, data root and exec root under a
//! temporary directory, no bridge and no firewall rules, and a busybox image imported from the
//! host's `busybox-static` (no registry). Containers run on the host network and serve
//! loopback ports. Dropping it removes the containers and stops the daemon.

#![allow(dead_code)] // the test binary uses its own subset

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use viaduct_testkit::wait_until;

/// The image every container runs: busybox with `sh` and `httpd`.
pub const IMAGE: &str = "local/busybox:test";

/// One daemon at a time: tests of the binary run in parallel, daemons share host state
/// (cgroups, the host network) that is not worth isolating.
static ONE_DAEMON: Mutex<()> = Mutex::new(());

pub struct Dockerd {
    dir: tempfile::TempDir,
    daemon: Option<Child>,
    /// Extra daemon flags (`--live-restore`).
    flags: Vec<String>,
    _turn: std::sync::MutexGuard<'static, ()>,
}

impl Dockerd {
    /// Starts the daemon and imports the image; waits until the engine answers.
    pub async fn start() -> Dockerd {
        Dockerd::start_with(&[]).await
    }

    /// As [`Dockerd::start`] with extra daemon flags; `--live-restore` keeps containers
    /// running while the daemon is stopped.
    pub async fn start_with(flags: &[&str]) -> Dockerd {
        let turn = ONE_DAEMON.lock().unwrap_or_else(|p| p.into_inner());
        let dir = tempfile::Builder::new()
            .prefix("viaduct-dockerd-")
            .tempdir()
            .unwrap_or_else(|e| panic!("temporary directory: {e}"));
        let mut engine = Dockerd {
            dir,
            daemon: None,
            flags: flags.iter().map(|f| f.to_string()).collect(),
            _turn: turn,
        };
        engine.spawn_daemon().await;
        engine.import_image();
        engine
    }

    /// `unix://…` of the daemon's socket, as `providers.docker.endpoint` takes it.
    pub fn endpoint(&self) -> String {
        format!("unix://{}", self.socket().display())
    }

    /// Runs busybox httpd on `127.0.0.1:port` answering `name` at `/`, with these labels.
    pub fn run_httpd(&self, name: &str, port: u16, labels: &[(&str, &str)]) {
        self.run_httpd_with(name, port, labels, &[]);
    }

    pub fn run_httpd_with(&self, name: &str, port: u16, labels: &[(&str, &str)], extra: &[&str]) {
        let mut args: Vec<String> = ["run", "-d", "--init", "--network", "host", "--name", name]
            .iter()
            .map(|s| s.to_string())
            .collect();
        for (key, value) in labels {
            args.push("--label".into());
            args.push(format!("{key}={value}"));
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        args.push(IMAGE.into());
        args.extend(
            [
                "/bin/sh".to_string(),
                "-c".into(),
                format!(
                    "mkdir -p /w && echo {name} > /w/index.html && exec httpd -f -p 127.0.0.1:{port} -h /w"
                ),
            ],
        );
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.docker(&args);
    }

    /// Runs the docker CLI against this daemon; panics with its output when it fails.
    pub fn docker(&self, args: &[&str]) -> Output {
        let output = self
            .cli(args)
            .unwrap_or_else(|e| panic!("docker {args:?}: {e}"));
        if !output.status.success() {
            panic!(
                "docker {args:?} failed: {}{}\ndaemon log:\n{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr),
                self.daemon_log()
            );
        }
        output
    }

    /// Stops the daemon and starts it again on the same data. Containers stop with it unless
    /// the daemon runs with `--live-restore`.
    pub async fn restart(&mut self) {
        self.stop_daemon();
        self.spawn_daemon().await;
    }

    pub fn stop_daemon(&mut self) {
        if let Some(mut daemon) = self.daemon.take() {
            terminate(&mut daemon);
        }
    }

    pub fn daemon_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dockerd.log")).unwrap_or_default()
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("docker.sock")
    }

    fn cli(&self, args: &[&str]) -> std::io::Result<Output> {
        Command::new("docker")
            .args(args)
            .env("DOCKER_HOST", self.endpoint())
            .env("DOCKER_CONFIG", self.dir.path().join("cli"))
            .stdin(Stdio::null())
            .output()
    }

    async fn spawn_daemon(&mut self) {
        let dir = self.dir.path();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("dockerd.log"))
            .unwrap_or_else(|e| panic!("dockerd log: {e}"));
        let log_err = log
            .try_clone()
            .unwrap_or_else(|e| panic!("dockerd log: {e}"));
        let daemon = Command::new("dockerd")
            .arg("--host")
            .arg(self.endpoint())
            .arg("--data-root")
            .arg(dir.join("root"))
            .arg("--exec-root")
            .arg(dir.join("exec"))
            .arg("--pidfile")
            .arg(dir.join("dockerd.pid"))
            .args([
                "--bridge",
                "none",
                "--iptables=false",
                "--ip6tables=false",
                "--ip-masq=false",
            ])
            .args(&self.flags)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .unwrap_or_else(|e| panic!("starting dockerd (apt-get install docker.io): {e}"));
        self.daemon = Some(daemon);
        let ready = wait_until("dockerd to answer", Duration::from_secs(30), || async {
            match self.cli(&["version", "--format", "{{.Server.Version}}"]) {
                Ok(out) if out.status.success() => Ok(Some(())),
                Ok(out) => Err(String::from_utf8_lossy(&out.stderr).into_owned()),
                Err(e) => Err(e.to_string()),
            }
        })
        .await;
        if let Err(e) = ready {
            panic!("{e}\ndaemon log:\n{}", self.daemon_log());
        }
    }

    fn import_image(&self) {
        let rootfs = self.dir.path().join("rootfs");
        let bin = rootfs.join("bin");
        std::fs::create_dir_all(&bin).unwrap_or_else(|e| panic!("rootfs: {e}"));
        let busybox = ["/bin/busybox", "/usr/bin/busybox"]
            .into_iter()
            .map(Path::new)
            .find(|p| p.exists())
            .unwrap_or_else(|| panic!("busybox not found (apt-get install busybox-static)"));
        std::fs::copy(busybox, bin.join("busybox")).unwrap_or_else(|e| panic!("busybox: {e}"));
        for applet in ["sh", "httpd", "mkdir"] {
            std::os::unix::fs::symlink("busybox", bin.join(applet))
                .unwrap_or_else(|e| panic!("symlink {applet}: {e}"));
        }
        let archive = self.dir.path().join("rootfs.tar");
        let tar = Command::new("tar")
            .arg("-C")
            .arg(&rootfs)
            .arg("-cf")
            .arg(&archive)
            .arg(".")
            .status()
            .unwrap_or_else(|e| panic!("tar: {e}"));
        assert!(tar.success(), "tar of the root file system failed");
        self.docker(&["import", &archive.to_string_lossy(), IMAGE]);
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        if self.daemon.is_some() {
            if let Ok(out) = self.cli(&["ps", "-aq"]) {
                let ids = String::from_utf8_lossy(&out.stdout).into_owned();
                let ids: Vec<&str> = ids.split_whitespace().collect();
                if !ids.is_empty() {
                    let mut args = vec!["rm", "-f"];
                    args.extend(ids);
                    self.cli(&args).ok();
                }
            }
        }
        self.stop_daemon();
        self.kill_leftovers();
    }
}

impl Dockerd {
    /// Containers that outlived their daemon (`--live-restore`, a test that failed while the
    /// daemon was down): their init processes and runtime shims, found under this exec root.
    fn kill_leftovers(&self) {
        let exec_root = self.dir.path().join("exec");
        let mut pids = Vec::new();
        collect_init_pids(&exec_root, &mut pids);
        let needle = exec_root.to_string_lossy().into_owned();
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains(&needle) {
                pids.push(pid);
            }
        }
        for pid in pids {
            Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .stderr(Stdio::null())
                .status()
                .ok();
        }
    }
}

fn collect_init_pids(dir: &Path, pids: &mut Vec<u32>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_init_pids(&path, pids);
        } else if path.file_name().is_some_and(|n| n == "init.pid") {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            pids.extend(text.trim().parse::<u32>().ok());
        }
    }
}

/// SIGTERM, then SIGKILL if the daemon has not exited after a while.
fn terminate(daemon: &mut Child) {
    Command::new("kill")
        .args(["-TERM", &daemon.id().to_string()])
        .status()
        .ok();
    for _ in 0..150 {
        if matches!(daemon.try_wait(), Ok(Some(_))) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    daemon.kill().ok();
    daemon.wait().ok();
}

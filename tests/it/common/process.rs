//! The real binary as a child process, for restart, crash and CLI tests.

use super::{Call, User};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_keystrate");

pub use super::free_port;

/// Lines a child process wrote, collected by a reader thread.
pub type Lines = Arc<Mutex<Vec<String>>>;

/// The binary serving `data` on a fresh port, once `/health` answers.
pub struct Proc {
    pub child: Child,
    pub base: String,
    /// Standard output and error, when started with [`Proc::start_logged`]
    /// (empty otherwise).
    pub stdout: Lines,
    pub stderr: Lines,
}

/// How to start the binary: its flags, environment, and whether its output
/// is kept.
#[derive(Default)]
struct Launch<'a> {
    extra: &'a [&'a str],
    envs: &'a [(&'a str, &'a str)],
    logged: bool,
}

impl Proc {
    pub async fn start(data: &Path, extra: &[&str]) -> Proc {
        Self::start_with_env(data, extra, &[]).await
    }

    /// Like `start`, with environment variables set for the server.
    pub async fn start_with_env(data: &Path, extra: &[&str], envs: &[(&str, &str)]) -> Proc {
        let launch = Launch {
            extra,
            envs,
            ..Launch::default()
        };
        Self::spawn(free_port(), data, launch).await
    }

    /// Like `start_with_env`, keeping what the server prints (its log lines,
    /// the metrics address).
    pub async fn start_logged(data: &Path, extra: &[&str], envs: &[(&str, &str)]) -> Proc {
        let launch = Launch {
            extra,
            envs,
            logged: true,
        };
        Self::spawn(free_port(), data, launch).await
    }

    /// Like [`Proc::start`], on a port chosen beforehand (a proxy in front
    /// was configured with it).
    pub async fn start_on(port: u16, data: &Path, extra: &[&str]) -> Proc {
        let launch = Launch {
            extra,
            ..Launch::default()
        };
        Self::spawn(port, data, launch).await
    }

    async fn spawn(port: u16, data: &Path, launch: Launch<'_>) -> Proc {
        let output = || {
            if launch.logged {
                Stdio::piped()
            } else {
                Stdio::null()
            }
        };
        let mut command = Command::new(BIN);
        command
            .arg("--data")
            .arg(data)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(launch.extra)
            .stdout(output());
        if launch.logged {
            command.stderr(output());
        } else {
            logs_to_ledger_dir(&mut command);
        }
        let mut child = command.envs(launch.envs.iter().copied()).spawn().unwrap();
        let proc = Proc {
            stdout: collect(child.stdout.take()),
            stderr: collect(child.stderr.take()),
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        let health = proc.url("/health");
        super::wait_until("the server answers /health", || async {
            reqwest::get(&health).await.is_ok_and(|r| r.status() == 200)
        })
        .await;
        proc
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// The `/metrics` URL the binary printed (`--metrics-listen`, started
    /// with [`Proc::start_logged`]).
    pub async fn metrics_url(&self) -> String {
        let printed = || {
            self.stdout.lock().unwrap().iter().find_map(|line| {
                line.strip_prefix("keystrate metrics on ")
                    .map(str::to_string)
            })
        };
        super::wait_until("the metrics address is printed", || {
            let found = printed().is_some();
            async move { found }
        })
        .await;
        printed().unwrap()
    }

    /// The server's resident set size in KiB.
    pub fn rss_kb(&self) -> u64 {
        super::procfs::rss_kb(self.child.id())
    }

    /// SIGTERM, and the process must exit 0 (the graceful path).
    pub fn stop(mut self) {
        let status = self.sigterm();
        assert!(status.success(), "server exits 0 on SIGTERM: {status:?}");
    }

    /// Like [`Proc::stop`], and the lines the server wrote on stderr.
    pub fn stop_logged(mut self) -> Vec<String> {
        let status = self.sigterm();
        assert!(status.success(), "server exits 0 on SIGTERM: {status:?}");
        // The reader thread ends at end of file, just after the exit.
        std::thread::sleep(Duration::from_millis(200));
        let lines = self.stderr.lock().unwrap().clone();
        lines
    }

    pub fn kill9(&mut self) {
        self.child.kill().unwrap(); // SIGKILL
        self.child.wait().unwrap();
    }

    pub fn sigterm(&mut self) -> std::process::ExitStatus {
        self.signal("TERM")
    }

    /// Sends `kill -<name>` and waits for the exit.
    pub fn signal(&mut self, name: &str) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill")
            .args([&format!("-{name}"), &pid])
            .status()
            .unwrap()
            .success());
        self.child.wait().unwrap()
    }
}

/// Collects `stream`'s lines on a thread of their own (none without one).
fn collect(stream: Option<impl std::io::Read + Send + 'static>) -> Lines {
    let lines = Lines::default();
    if let Some(stream) = stream {
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
    }
    lines
}

/// Starts the binary with `args` and `envs`, which must make it exit at
/// once, non-zero: its standard error.
pub fn start_fails(args: &[&str], envs: &[(&str, &str)]) -> String {
    let mut child = Command::new(BIN)
        .args(args)
        .envs(envs.iter().copied())
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the server started with {args:?} {envs:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success(), "{args:?} {envs:?}: {out:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Registers `name` (201, strictly) and returns the logged-in user.
pub async fn register(base: &str, name: &str) -> User {
    authenticate(base, name, "/auth/register", 201).await
}

/// Sends the server's log, at `debug`, where `.ci/run` looks for secrets
/// (`ledger.rs`); nowhere when it does not collect them. The caller's own
/// `RUST_LOG` (set afterwards) wins.
pub fn logs_to_ledger_dir(command: &mut Command) {
    match super::ledger::log_file("server") {
        Some(file) => command.env("RUST_LOG", "debug").stderr(file),
        None => command.stderr(Stdio::null()),
    };
}

/// Logs `name` in (200, strictly: a lost account must not be re-created).
pub async fn login(base: &str, name: &str) -> User {
    authenticate(base, name, "/auth/login", 200).await
}

async fn authenticate(base: &str, name: &str, route: &str, expected: u16) -> User {
    let http = super::client();
    super::ledger::record(super::PASSWORD);
    let r = http
        .post(format!("{base}{route}"))
        .json(&super::credentials(name))
        .sent()
        .await;
    assert_eq!(r.status(), expected, "{route} {name}");
    let cookie = super::session_cookie(&r).expect("session cookie");
    User {
        name: name.into(),
        http,
        cookie,
        base: base.into(),
    }
}

/// Runs `keystrate <args>`.
pub fn cli(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("RUST_LOG", "off")
        .output()
        .expect("cli runs")
}

/// Runs `keystrate <args>` with `input` on standard input.
pub fn cli_with_stdin(args: &[&str], input: impl AsRef<[u8]>) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .env("RUST_LOG", "off")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cli runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_ref())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// A command's standard output; it must have succeeded.
pub fn succeeded(o: &Output) -> String {
    assert!(o.status.success(), "should succeed: {o:?}");
    String::from_utf8(o.stdout.clone()).unwrap()
}

/// The command must have failed with `message` on standard error.
pub fn failed_with(o: &Output, message: &str) {
    assert!(!o.status.success(), "should fail: {o:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(message),
        "stderr {err:?} should contain {message:?}"
    );
}

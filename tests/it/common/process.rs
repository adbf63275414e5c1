//! The real binary as a child process, for restart, crash and CLI tests.

use super::User;
use serde_json::json;
use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_keystrate");

pub use super::free_port;

/// The binary serving `data` on a fresh port, once `/health` answers.
pub struct Proc {
    pub child: Child,
    pub base: String,
}

impl Proc {
    pub async fn start(data: &Path, extra: &[&str]) -> Proc {
        Self::start_with_env(data, extra, &[]).await
    }

    /// Like `start`, with environment variables set for the server.
    pub async fn start_with_env(data: &Path, extra: &[&str], envs: &[(&str, &str)]) -> Proc {
        Self::spawn(free_port(), data, extra, envs).await
    }

    /// Like [`Proc::start`], on a port chosen beforehand (a proxy in front
    /// was configured with it).
    pub async fn start_on(port: u16, data: &Path, extra: &[&str]) -> Proc {
        Self::spawn(port, data, extra, &[]).await
    }

    async fn spawn(port: u16, data: &Path, extra: &[&str], envs: &[(&str, &str)]) -> Proc {
        let child = Command::new(BIN)
            .arg("--data")
            .arg(data)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(extra)
            .envs(envs.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = reqwest::get(format!("{base}/health")).await {
                if r.status() == 200 {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "server did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Proc { child, base }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
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

/// Logs `name` in (200, strictly: a lost account must not be re-created).
pub async fn login(base: &str, name: &str) -> User {
    authenticate(base, name, "/auth/login", 200).await
}

async fn authenticate(base: &str, name: &str, route: &str, expected: u16) -> User {
    let http = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = http
        .post(format!("{base}{route}"))
        .json(&json!({"username": name, "password": "correct horse"}))
        .send()
        .await
        .unwrap();
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
pub fn cli_with_stdin(args: &[&str], input: &str) -> Output {
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
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

//! The real binary as a child process, for restart, crash and CLI tests.

use super::User;
use serde_json::json;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_keystrate");

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The binary serving `data` on a fresh port, once `/health` answers.
pub struct Proc {
    pub child: Child,
    pub base: String,
}

impl Proc {
    pub async fn start(data: &Path, extra: &[&str]) -> Proc {
        Self::start_on(free_port(), data, extra).await
    }

    /// Like [`Proc::start`], on a port chosen beforehand (a proxy in front
    /// was configured with it).
    pub async fn start_on(port: u16, data: &Path, extra: &[&str]) -> Proc {
        let child = Command::new(BIN)
            .arg("--data")
            .arg(data)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(extra)
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
        let pid = self.child.id().to_string();
        assert!(Command::new("kill")
            .args(["-TERM", &pid])
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

pub async fn login(base: &str, name: &str) -> User {
    let http = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut r = http
        .post(format!("{base}/auth/login"))
        .json(&json!({"username": name, "password": "correct horse"}))
        .send()
        .await
        .unwrap();
    if r.status() == 401 {
        r = http
            .post(format!("{base}/auth/register"))
            .json(&json!({"username": name, "password": "correct horse"}))
            .send()
            .await
            .unwrap();
    }
    assert!(r.status().is_success(), "{}", r.status());
    let cookie = r.headers()["set-cookie"].to_str().unwrap();
    let cookie = cookie
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("keystrate_session=")
        .to_string();
    User {
        name: name.into(),
        http,
        cookie,
        base: base.into(),
    }
}

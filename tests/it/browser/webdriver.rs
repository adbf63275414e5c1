//! A minimal W3C WebDriver client over reqwest, driving the machine's own
//! Chromium through /usr/bin/chromedriver. Only what the browser tests use:
//! navigation, script execution (promises are awaited by the driver),
//! clicks and typing, dialogs, cookies, screenshots and the browser console
//! log.

use crate::common::Call;
use serde_json::{json, Value};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Whether `test` can run; without a browser it is recorded as skipped
/// (a failure under `CI=true`, where a missing browser is a broken setup).
pub fn browser_present(test: &str) -> bool {
    let present = Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists();
    if !present {
        crate::common::skip(
            test,
            &format!(
                "{CHROMIUM} or {CHROMEDRIVER} missing: apt-get install -y chromium chromium-driver"
            ),
        );
    }
    present
}

/// A running chromedriver; killed when dropped.
pub struct Driver {
    _child: tokio::process::Child,
    base: String,
    http: reqwest::Client,
}

impl Driver {
    pub async fn start() -> Driver {
        // Ask the OS for a free port, then hand it to chromedriver.
        let port = crate::common::free_port();
        let child = tokio::process::Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver starts");
        let driver = Driver {
            _child: child,
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while driver
            .http
            .get(format!("{}/status", driver.base))
            .send()
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "chromedriver did not come up");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        driver
    }

    /// A new browser with its own fresh profile (so its own cookies).
    pub async fn session(&self) -> Session {
        let profile = tempfile::tempdir().unwrap();
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-dev-shm-usage",
            "--window-size=1000,900",
            &format!("--user-data-dir={}", profile.path().display()),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
            "goog:loggingPrefs": {"browser": "ALL"},
        }}});
        let r: Value = self
            .http
            .post(format!("{}/session", self.base))
            .json(&caps)
            .value()
            .await;
        let id = r["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("new session failed: {r}"))
            .to_string();
        Session {
            http: self.http.clone(),
            url: format!("{}/session/{id}", self.base),
            _profile: profile,
        }
    }
}

/// One browser window.
pub struct Session {
    http: reqwest::Client,
    url: String,
    _profile: tempfile::TempDir,
}

impl Session {
    async fn cmd(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self.http.request(method, format!("{}{path}", self.url));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r: Value = req.send().await.unwrap().json().await.unwrap();
        if let Some(err) = r["value"].get("error") {
            panic!("WebDriver {path}: {err}: {}", r["value"]["message"]);
        }
        r["value"].clone()
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.cmd(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn goto(&self, url: &str) {
        self.post("/url", json!({"url": url})).await;
    }

    pub async fn current_url(&self) -> String {
        let v = self.cmd(reqwest::Method::GET, "/url", None).await;
        v.as_str().unwrap().to_string()
    }

    /// Runs `script` as a function body in the page; a returned Promise is
    /// awaited by the driver.
    pub async fn js(&self, script: &str, args: Value) -> Value {
        self.post("/execute/sync", json!({"script": script, "args": args}))
            .await
    }

    /// Polls `expr` (a JS expression) until it is truthy; panics after 10 s.
    pub async fn wait_for(&self, expr: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let v = self.js(&format!("return {expr};"), json!([])).await;
            if !(v.is_null() || v == json!(false) || v == json!("") || v == json!(0)) {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for `{expr}` (last {v})"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Logs in by planting a session cookie (the login form has its own test).
    pub async fn set_session_cookie(&self, base: &str, token: &str) {
        // A page of ours, not /health: plain-text pages make Chromium fetch
        // /favicon.ico, a 404 that would pollute the console check.
        self.goto(&format!("{base}/auth/login")).await;
        let cookie =
            json!({"name": "keystrate_session", "value": token, "path": "/", "httpOnly": true});
        self.post("/cookie", json!({"cookie": cookie})).await;
    }

    pub async fn find(&self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let r: Value = self
                .http
                .post(format!("{}/element", self.url))
                .json(&json!({"using": "css selector", "value": css}))
                .value()
                .await;
            if let Some(id) = r["value"][ELEMENT].as_str() {
                return id.to_string();
            }
            assert!(Instant::now() < deadline, "no element `{css}`");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn click(&self, css: &str) {
        let id = self.find(css).await;
        self.post(&format!("/element/{id}/click"), json!({})).await;
    }

    /// Replaces the text of an input.
    pub async fn fill(&self, css: &str, text: &str) {
        let id = self.find(css).await;
        self.post(&format!("/element/{id}/clear"), json!({})).await;
        self.post(&format!("/element/{id}/value"), json!({"text": text}))
            .await;
    }

    pub async fn text(&self, css: &str) -> String {
        let v = self
            .js(
                "return document.querySelector(arguments[0]).textContent;",
                json!([css]),
            )
            .await;
        v.as_str().unwrap_or_default().to_string()
    }

    /// The text of the open `alert()`/`confirm()`/`prompt()` dialog,
    /// waiting up to 10 s for one to open.
    pub async fn alert_text(&self) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let r: Value = self
                .http
                .get(format!("{}/alert/text", self.url))
                .value()
                .await;
            if let Some(text) = r["value"].as_str() {
                return text.to_string();
            }
            assert!(Instant::now() < deadline, "no dialog opened: {r}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Accepts the open dialog (OK on a `confirm()`).
    pub async fn accept_alert(&self) {
        self.post("/alert/accept", json!({})).await;
    }

    pub async fn resize(&self, width: u32, height: u32) {
        self.post("/window/rect", json!({"width": width, "height": height}))
            .await;
    }

    /// Saves a PNG of the viewport into docs/screenshots/ when
    /// KEYSTRATE_SCREENSHOTS=1, so ordinary runs leave the tree alone.
    pub async fn screenshot(&self, name: &str) {
        if std::env::var("KEYSTRATE_SCREENSHOTS").as_deref() != Ok("1") {
            return;
        }
        use base64::Engine as _;
        // WebDriver shoots the viewport only: grow the window to the whole
        // page for the picture, then put it back.
        let rect = self.cmd(reqwest::Method::GET, "/window/rect", None).await;
        let (width, height) = (
            rect["width"].as_u64().unwrap(),
            rect["height"].as_u64().unwrap(),
        );
        let extra = self
            .js(
                "return document.documentElement.scrollHeight - window.innerHeight;",
                json!([]),
            )
            .await
            .as_i64()
            .unwrap_or(0);
        if extra > 0 {
            self.resize(width as u32, (height as i64 + extra) as u32)
                .await;
        }
        let v = self.cmd(reqwest::Method::GET, "/screenshot", None).await;
        if extra > 0 {
            self.resize(width as u32, height as u32).await;
        }
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap())
            .unwrap();
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }

    /// Console messages since the last call: `(level, message)`.
    pub async fn console(&self) -> Vec<(String, String)> {
        let v = self.post("/se/log", json!({"type": "browser"})).await;
        v.as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["level"].as_str().unwrap_or("").to_string(),
                    e["message"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    }

    /// Fails on any warning or error in the console, except HTTP statuses
    /// the page expects and shows to the user (`allowed` substrings, e.g. a
    /// 401 from /auth/me when logged out: Chromium logs every non-2xx fetch).
    pub async fn assert_clean_console(&self, allowed: &[&str]) {
        let bad: Vec<_> = self
            .console()
            .await
            .into_iter()
            .filter(|(level, _)| level == "SEVERE" || level == "WARNING")
            .filter(|(_, m)| !allowed.iter().any(|a| m.contains(a)))
            .collect();
        assert!(bad.is_empty(), "console errors: {bad:#?}");
    }

    pub async fn close(self) {
        self.cmd(reqwest::Method::DELETE, "", None).await;
    }
}

//! Operating the server (docs/deploy.md): readiness, Prometheus metrics on
//! their own listener, JSON logs that carry no secrets. Each test runs the
//! real binary, since logging and the metrics recorder are process-wide.

mod common;
use common::process::{free_port, login, BIN};
use common::Ws;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The binary with its standard output and error collected line by line.
struct Server {
    child: Child,
    base: String,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
}

fn collect(stream: impl std::io::Read + Send + 'static) -> Arc<Mutex<Vec<String>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    lines
}

impl Server {
    async fn start(data: &std::path::Path, extra: &[&str], env: &[(&str, &str)]) -> Server {
        let port = free_port();
        let mut child = Command::new(BIN)
            .arg("--data")
            .arg(data)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(extra)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = collect(child.stdout.take().unwrap());
        let stderr = collect(child.stderr.take().unwrap());
        let server = Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
            stdout,
            stderr,
        };
        let health = server.url("/health");
        wait_until("the server answers /health", || async {
            reqwest::get(&health).await.is_ok_and(|r| r.status() == 200)
        })
        .await;
        server
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The `/metrics` URL the binary printed.
    async fn metrics_url(&self) -> String {
        let stdout = self.stdout.clone();
        let printed = move || {
            stdout.lock().unwrap().iter().find_map(|line| {
                line.strip_prefix("keystrate metrics on ")
                    .map(str::to_string)
            })
        };
        wait_until("the metrics address is printed", || {
            let found = printed().is_some();
            async move { found }
        })
        .await;
        printed().unwrap()
    }

    /// SIGTERM, wait for the exit, and the lines it wrote on stderr.
    fn stop(mut self) -> Vec<String> {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(self.child.wait().unwrap().success());
        // The reader thread ends at end of file, just after the exit.
        std::thread::sleep(Duration::from_millis(200));
        let lines = self.stderr.lock().unwrap().clone();
        lines
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn wait_until<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    while !condition().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn scrape(url: &str) -> String {
    let r = reqwest::get(url).await.unwrap();
    assert_eq!(r.status(), 200);
    r.text().await.unwrap()
}

/// The value of one sample line (`name{labels} value`), if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.trim().parse().unwrap())
}

#[tokio::test]
async fn metrics_are_served_on_their_own_listener_with_bounded_labels() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        &[
            "--metrics-listen",
            "127.0.0.1:0",
            "--max-sockets-per-user",
            "2",
        ],
        &[],
    )
    .await;
    let metrics = server.metrics_url().await;
    assert!(!metrics.contains(&server.base));
    // Never on the public listener, and not read as a document there.
    let public = reqwest::get(server.url("/metrics")).await.unwrap();
    assert_eq!(public.status(), 404);

    let alice = login(&server.base, "alice-the-admin").await;
    let bob = login(&server.base, "bob-the-guest").await;
    alice.create_doc("secret-doc-name").await;
    let mut a = alice.ws("secret-doc-name").await;
    let mut b = bob.ws("secret-doc-name").await;
    let invite = a.ok("createInvite", None, json!({})).await;
    let key = invite["key"].as_str().unwrap().to_string();
    b.ok("acceptInvite", None, json!({"key": key})).await;
    let wrong = "0".repeat(64);
    b.err("acceptInvite", None, json!({"key": wrong})).await;
    let removable = a.ok("createInvite", None, json!({})).await;
    a.ok("removeInvite", None, json!({"key": removable["key"]}))
        .await;
    a.ok("createInvite", None, json!({"maxAge": 1})).await;
    // A third socket of alice's is over --max-sockets-per-user.
    let _second = alice.ws("secret-doc-name").await;
    let third = Ws::connect(&server.base, "secret-doc-name", Some(&alice.cookie), None).await;
    assert!(third.is_err(), "the third socket must be refused");

    let text = scrape(&metrics).await;
    let invites = |event: &str, outcome: &str| {
        sample(
            &text,
            &format!("keystrate_invites_total{{event=\"{event}\",outcome=\"{outcome}\"}}"),
        )
    };
    assert_eq!(invites("created", "ok"), Some(3.0), "{text}");
    assert_eq!(invites("accepted", "ok"), Some(1.0), "{text}");
    assert_eq!(invites("accepted", "invalid_key"), Some(1.0), "{text}");
    assert_eq!(invites("removed", "ok"), Some(1.0), "{text}");
    assert_eq!(sample(&text, "keystrate_websockets_open"), Some(3.0), "{text}");
    assert_eq!(
        sample(
            &text,
            "keystrate_refusals_total{limit=\"max_sockets_per_user\"}"
        ),
        Some(1.0),
        "{text}"
    );
    for series in [
        "keystrate_ws_request_seconds_count{action=\"createInvite\"}",
        "keystrate_http_request_seconds_count{method=\"POST\",route=\"/api/documents\",status=\"201\"}",
        "keystrate_http_request_seconds_count{method=\"GET\",route=\"/{doc}/ws\",status=\"101\"}",
        "keystrate_storage_flush_seconds_count",
        "keystrate_password_hashing_queue",
    ] {
        assert!(sample(&text, series).is_some(), "{series} missing:\n{text}");
    }
    // Histograms with buckets, not summaries.
    assert!(text.contains("keystrate_ws_request_seconds_bucket{action=\"createInvite\",le=\"0.01\"}"));
    // Labels never name documents, users or keys.
    for secret in ["secret-doc-name", "alice-the-admin", "bob-the-guest", &key] {
        assert!(!text.contains(secret), "{secret} in the metrics");
    }

    // The short invite expires and is counted; closed sockets leave the gauge.
    drop((a, b, _second));
    wait_until("the invite expired and the sockets closed", || {
        let metrics = metrics.clone();
        async move {
            let text = scrape(&metrics).await;
            sample(
                &text,
                "keystrate_invites_total{event=\"expired\",outcome=\"ok\"}",
            ) == Some(1.0)
                && sample(&text, "keystrate_websockets_open") == Some(0.0)
        }
    })
    .await;
    server.stop();
}

#[tokio::test]
async fn without_the_flag_no_metrics_listener_is_announced() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[], &[]).await;
    let public = reqwest::get(server.url("/metrics")).await.unwrap();
    assert_eq!(public.status(), 404);
    let stdout = server.stdout.lock().unwrap().clone();
    assert!(stdout.iter().any(|l| l.starts_with("keystrate listening on")));
    assert!(!stdout.iter().any(|l| l.contains("metrics")), "{stdout:?}");
    server.stop();
}

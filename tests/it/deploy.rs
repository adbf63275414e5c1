//! docs/deploy.md as written: Debian's nginx runs with exactly the
//! configuration in that page (ports, certificate paths and the upstream
//! address replaced), terminating TLS with a self-signed certificate made
//! here, in front of the real binary with `--trusted-proxy` and an https
//! `--public-url`. HTTPS requests go through `curl`; the WebSocket runs over
//! an `openssl s_client` TLS tunnel.

use crate::common::process::{free_port, Proc};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

/// The ```nginx block of docs/deploy.md.
fn documented_config() -> String {
    let page =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/deploy.md")).unwrap();
    let start = page.find("```nginx\n").expect("an nginx block") + "```nginx\n".len();
    let end = start + page[start..].find("\n```").unwrap();
    page[start..end].to_string()
}

struct Nginx {
    child: Child,
    port: u16,
}

impl Drop for Nginx {
    /// SIGTERM to the master, which stops its workers too (SIGKILL would
    /// leave them running).
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// `None` (skipped, visibly) when nginx is missing outside CI.
fn start_nginx(dir: &Path, upstream: &str) -> Option<Nginx> {
    if Command::new("nginx").arg("-v").output().is_err() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI installs nginx (.ci/run)"
        );
        eprintln!("SKIP deploy test: nginx is not installed (apt-get install -y nginx)");
        return None;
    }
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let made = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"])
        .args(["-subj", "/CN=localhost", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(made.success(), "openssl makes the certificate");
    let port = free_port();
    let site = documented_config()
        .replace("listen 443 ssl;", &format!("listen 127.0.0.1:{port} ssl;"))
        .replace("/etc/ssl/keystrate/fullchain.pem", path(&cert))
        .replace("/etc/ssl/keystrate/privkey.pem", path(&key))
        .replace("server 127.0.0.1:7007;", &format!("server {upstream};"));
    let d = path(dir);
    // The main configuration Debian ships around sites-enabled, reduced to
    // what a test directory needs.
    let conf = format!(
        "daemon off;\nworker_processes 1;\nuser root;\npid {d}/nginx.pid;\n\
         error_log {d}/error.log;\nevents {{}}\nhttp {{\n\
         access_log off;\nclient_body_temp_path {d}/body;\nproxy_temp_path {d}/proxy;\n\
         fastcgi_temp_path {d}/fastcgi;\nuwsgi_temp_path {d}/uwsgi;\nscgi_temp_path {d}/scgi;\n\
         {site}\n}}\n"
    );
    let conf_path = dir.join("nginx.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let child = Command::new("nginx")
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(&conf_path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nginx did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Some(Nginx { child, port })
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// An HTTPS request through nginx, from the loopback address `from`:
/// status, headers and body.
fn https(
    nginx: &Nginx,
    from: &str,
    method: &str,
    target: &str,
    cookie: Option<&str>,
    body: Option<Value>,
) -> (u16, String, String) {
    let mut cmd = Command::new("curl");
    cmd.args(["-sk", "-i", "--interface", from, "-X", method])
        .arg(format!("https://localhost:{}{target}", nginx.port));
    if let Some(c) = cookie {
        cmd.args(["-H", &format!("cookie: keystrate_session={c}")]);
    }
    if let Some(b) = body {
        cmd.args(["-H", "content-type: application/json", "-d", &b.to_string()]);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "curl failed: {out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head.to_string(), body.to_string())
}

/// Registers through nginx; the session token, after checking the cookie
/// is `Secure`.
fn register(nginx: &Nginx, name: &str) -> String {
    let (status, head, _) = https(
        nginx,
        "127.0.0.1",
        "POST",
        "/auth/register",
        None,
        Some(json!({"username": name, "password": "correct horse"})),
    );
    assert_eq!(status, 201, "{head}");
    let cookie = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(": ")?;
            let value = value.strip_prefix("keystrate_session=")?;
            name.eq_ignore_ascii_case("set-cookie").then_some(value)
        })
        .expect("a session cookie")
        .to_string();
    assert!(cookie.to_ascii_lowercase().contains("; secure"), "{cookie}");
    cookie.split(';').next().unwrap().to_string()
}

type Tunnel = tokio::io::Join<tokio::process::ChildStdout, tokio::process::ChildStdin>;

/// A WebSocket to `doc` through nginx, over an `openssl s_client` tunnel.
async fn websocket(
    nginx: &Nginx,
    doc: &str,
    cookie: &str,
) -> (
    tokio_tungstenite::WebSocketStream<Tunnel>,
    tokio::process::Child,
) {
    let mut tunnel = tokio::process::Command::new("openssl")
        .args(["s_client", "-quiet", "-servername", "localhost", "-connect"])
        .arg(format!("127.0.0.1:{}", nginx.port))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stream = tokio::io::join(tunnel.stdout.take().unwrap(), tunnel.stdin.take().unwrap());
    let origin = format!("https://localhost:{}", nginx.port);
    let mut request = format!("wss://localhost:{}/{doc}/ws", nginx.port)
        .into_client_request()
        .unwrap();
    let headers = request.headers_mut();
    headers.insert("origin", origin.parse().unwrap());
    headers.insert(
        "cookie",
        format!("keystrate_session={cookie}").parse().unwrap(),
    );
    let (socket, response) = tokio_tungstenite::client_async(request, stream)
        .await
        .expect("the WebSocket upgrade passes through nginx");
    assert_eq!(response.status(), 101);
    (socket, tunnel)
}

/// Sends one request and returns its reply's result (events skipped).
async fn call<S>(
    socket: &mut tokio_tungstenite::WebSocketStream<S>,
    wa: &str,
    options: Value,
) -> Value
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use futures_util::{SinkExt, StreamExt};
    let frame = json!({"wa": wa, "token": wa, "options": options});
    socket.send(Message::text(frame.to_string())).await.unwrap();
    loop {
        let message = tokio::time::timeout(Duration::from_secs(20), socket.next())
            .await
            .expect("a reply")
            .unwrap()
            .unwrap();
        let Message::Text(text) = message else {
            continue;
        };
        let value: Value = serde_json::from_str(&text).unwrap();
        if value["wa"] == "reply" && value["token"] == wa {
            assert!(value.get("error").is_none(), "{value}");
            return value["reply"].clone();
        }
    }
}

#[tokio::test]
async fn an_invite_flow_through_nginx_with_tls() {
    let dir = tempfile::tempdir().unwrap();
    let nginx_dir = dir.path().join("nginx");
    std::fs::create_dir(&nginx_dir).unwrap();
    let keystrate_port = free_port();
    let Some(nginx) = start_nginx(&nginx_dir, &format!("127.0.0.1:{keystrate_port}")) else {
        return;
    };
    let public_url = format!("https://localhost:{}", nginx.port);
    let data: PathBuf = dir.path().join("data");
    let server = Proc::start_on(
        keystrate_port,
        &data,
        &[
            "--trusted-proxy",
            "127.0.0.1",
            "--public-url",
            &public_url,
            "--directory-writes-per-minute",
            "1",
        ],
    )
    .await;

    let (status, _, body) = https(&nginx, "127.0.0.1", "GET", "/ready", None, None);
    assert_eq!((status, body.as_str()), (200, "OK"));
    let alice = register(&nginx, "alice");
    let bob = register(&nginx, "bob");
    let (status, _, _) = https(
        &nginx,
        "127.0.0.1",
        "POST",
        "/api/documents",
        Some(&alice),
        Some(json!({"id": "doc"})),
    );
    assert_eq!(status, 201);
    let (mut a, _a_tunnel) = websocket(&nginx, "doc", &alice).await;
    let invite = call(&mut a, "createInvite", json!({"permissions": "rw"})).await;
    let key = invite["key"].as_str().unwrap();
    let (mut b, _b_tunnel) = websocket(&nginx, "doc", &bob).await;
    let level = call(&mut b, "acceptInvite", json!({ "key": key })).await;
    assert_eq!(level, "rw", "{level}");
    let (status, _, body) = https(&nginx, "127.0.0.1", "GET", "/auth/me", Some(&bob), None);
    assert_eq!(status, 200, "{body}");

    // Per-address limits see the address nginx forwards: one directory
    // write a minute for 127.0.0.2 is spent, 127.0.0.3 still has its own.
    let write = |from: &str| {
        https(
            &nginx,
            from,
            "POST",
            "/identity",
            None,
            Some(json!({"cacao": "junk"})),
        )
        .0
    };
    assert_ne!(write("127.0.0.2"), 429);
    assert_eq!(write("127.0.0.2"), 429);
    assert_ne!(write("127.0.0.3"), 429);
    // Metrics are not reachable through the proxy.
    let (status, _, _) = https(&nginx, "127.0.0.1", "GET", "/metrics", None, None);
    assert_eq!(status, 404);
    drop((a, b));
    server.stop();
}

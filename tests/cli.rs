//! The `keystrate keys` CLI against the real binary: while a server runs on
//! the same data directory (through its admin socket) and while it is
//! stopped (on the store directly), followed by the Prosody-style flow of
//! using the key on `/invites_api`.

use serde_json::json;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_keystrate");

/// The real binary serving a data directory on a free loopback port.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    async fn start(data: &Path) -> Server {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(BIN)
            .arg("--data")
            .arg(data)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("binary starts");
        // Owned at once, so that Drop kills it if it never answers.
        let server = Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        let client = reqwest::Client::new();
        for _ in 0..200 {
            if let Ok(r) = client.get(server.url("/health")).send().await {
                if r.status() == 200 {
                    return server;
                }
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("server did not answer /health");
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// SIGTERM and wait: the graceful path.
    fn stop(mut self) {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
        let exit = self.child.wait().unwrap();
        assert!(exit.success(), "server exits 0 on SIGTERM: {exit:?}");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `keystrate <args>`.
fn cli(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("RUST_LOG", "off")
        .output()
        .expect("cli runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

/// A failed command: non-zero exit, a message on stderr, nothing on stdout.
fn assert_fails(o: &Output, message: &str) {
    assert!(!o.status.success(), "should fail: {o:?}");
    assert!(o.stdout.is_empty(), "nothing on stdout: {o:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(message),
        "stderr {err:?} should contain {message:?}"
    );
}

fn assert_key_form(key: &str) {
    let (id, secret) = key.split_once('/').expect("<id>/<secret>");
    assert!(id.starts_with("app_") && id.len() == 28, "{id}");
    assert!(
        id[4..]
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
        "{id}"
    );
    assert_eq!(secret.len(), 32, "{secret}");
    assert!(
        secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "{secret}"
    );
}

/// Registers `name` and returns a client holding its session cookie.
async fn register(server: &Server, name: &str) -> reqwest::Client {
    let http = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = http
        .post(server.url("/auth/register"))
        .json(&json!({"username": name, "password": "correct horse"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    http
}

async fn create_doc(server: &Server, http: &reqwest::Client, id: &str) {
    let r = http
        .post(server.url("/api/documents"))
        .json(&json!({"id": id}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
}

#[tokio::test]
async fn prosody_flow_with_the_server_running() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let server = Server::start(dir.path()).await;
    let alice = register(&server, "alice").await;
    let bob = register(&server, "bob").await;
    create_doc(&server, &alice, "doc1").await;

    let socket = dir.path().join("admin.sock");
    assert_eq!(
        std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // Create: stdout is exactly the key and a newline.
    let out = cli(&[
        "keys",
        "create",
        "doc1",
        "Prosody bridge",
        "--owner",
        "alice",
        "--data",
        data,
    ]);
    assert!(out.status.success(), "{out:?}");
    let printed = stdout(&out);
    let key = printed.strip_suffix('\n').expect("one line");
    assert!(!key.contains('\n'));
    assert_key_form(key);
    let id = key.split('/').next().unwrap();

    // GET /invites_api?key= → 201 with an absolute Location that bob can open.
    let anon = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = anon
        .get(server.url(&format!("/invites_api?key={key}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let invite: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        location,
        server.url(&format!(
            "/doc1/?acceptInvite={}",
            invite["key"].as_str().unwrap()
        ))
    );
    assert_eq!(invite["createdBy"]["username"], "alice");
    let r = bob.get(&location).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(
        bob.get(server.url("/doc1/")).send().await.unwrap().status(),
        200
    );

    // redirect → 303; Bearer; a wrong key → 401 with WWW-Authenticate.
    let r = anon
        .get(server.url(&format!("/invites_api?key={key}&redirect=true")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert!(r.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with(&server.url("/doc1/?acceptInvite=")));
    let r = anon
        .post(server.url("/invites_api"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = anon
        .get(server.url(&format!("/invites_api?key={id}/not-the-secret")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Bearer");

    // List (with --data before the subcommand), errors, delete.
    let out = cli(&["--data", data, "keys", "list", "doc1"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(stdout(&out), format!("{id}\tProsody bridge\n"));
    assert_fails(
        &cli(&[
            "keys", "create", "nodoc", "x", "--owner", "alice", "--data", data,
        ]),
        "No such document nodoc",
    );
    assert_fails(
        &cli(&[
            "keys", "create", "doc1", "x", "--owner", "bob", "--data", data,
        ]),
        "Need admin permissions",
    );
    assert_fails(
        &cli(&["keys", "list", "nodoc", "--data", data]),
        "No such document nodoc",
    );
    assert_fails(
        &cli(&[
            "keys",
            "delete",
            "doc1",
            "app_000000000000000000000000",
            "--data",
            data,
        ]),
        "No such key",
    );
    let out = cli(&["keys", "delete", "doc1", id, "--data", data]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(stdout(&cli(&["keys", "list", "doc1", "--data", data])), "");
    let r = anon
        .get(server.url(&format!("/invites_api?key={key}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    server.stop();
    assert!(!socket.exists(), "admin.sock removed at shutdown");
}

#[tokio::test]
async fn keys_made_while_the_server_is_stopped_work_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let server = Server::start(dir.path()).await;
    let alice = register(&server, "alice").await;
    create_doc(&server, &alice, "doc1").await;
    server.stop();

    let out = cli(&[
        "--data", data, "keys", "create", "doc1", "offline", "--owner", "alice",
    ]);
    assert!(out.status.success(), "{out:?}");
    let key = stdout(&out).trim_end().to_string();
    assert_key_form(&key);
    let id = key.split('/').next().unwrap().to_string();
    assert_eq!(
        stdout(&cli(&["keys", "list", "doc1", "--data", data])),
        format!("{id}\toffline\n")
    );
    assert_fails(
        &cli(&[
            "keys", "create", "doc1", "x", "--owner", "nobody", "--data", data,
        ]),
        "Need admin permissions",
    );
    assert_fails(
        &cli(&[
            "keys",
            "delete",
            "doc1",
            "app_ffffffffffffffffffffffff",
            "--data",
            data,
        ]),
        "No such key",
    );
    assert_fails(
        &cli(&["keys", "list", "doc1", "--data", &format!("{data}/missing")]),
        "no data directory",
    );

    let server = Server::start(dir.path()).await;
    let anon = reqwest::Client::new();
    let r = anon
        .post(server.url("/invites_api"))
        .bearer_auth(&key)
        .json(&json!({"permissions": "rw"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let invite: serde_json::Value = r.json().await.unwrap();
    assert_eq!(invite["permissions"], "rw");
    server.stop();

    // Deleting offline works too.
    assert!(cli(&["keys", "delete", "doc1", &id, "--data", data])
        .status
        .success());
    assert_eq!(stdout(&cli(&["keys", "list", "doc1", "--data", data])), "");
}

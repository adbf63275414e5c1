//! The real binary: restart persistence, `kill -9` durability of
//! acknowledged writes, graceful shutdown, the connection cap, the
//! `user add` command and start-up errors.

mod common;
use common::*;
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::io::Write;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

const BIN: &str = env!("CARGO_BIN_EXE_keystrate");

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The binary serving `data` on a fresh port, once `/health` answers.
struct Proc {
    child: Child,
    base: String,
}

impl Proc {
    async fn start(data: &Path, extra: &[&str]) -> Proc {
        let port = free_port();
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

    fn kill9(&mut self) {
        self.child.kill().unwrap(); // SIGKILL
        self.child.wait().unwrap();
    }

    fn sigterm(&mut self) -> std::process::ExitStatus {
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

async fn login(base: &str, name: &str) -> User {
    let http = reqwest::Client::builder()
        .cookie_store(true)
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

#[tokio::test]
async fn state_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = Proc::start(dir.path(), &[]).await;
    let alice = login(&p.base, "alice").await;
    alice.create_doc("doc").await;
    let mut a = alice.ws("doc").await;
    let inv = a
        .ok(
            "createInvite",
            None,
            json!({"permissions": "rw", "maxUses": 3}),
        )
        .await;
    let bob = login(&p.base, "bob").await;
    bob.ws("doc")
        .await
        .ok("acceptInvite", None, json!({"key": inv["key"]}))
        .await;
    drop(a);
    assert!(p.sigterm().success());
    let p2 = Proc::start(dir.path(), &[]).await;
    // Sessions, users, documents, permissions and invites are all back.
    let alice = User {
        base: p2.base.clone(),
        ..alice
    };
    let mut a = alice.ws("doc").await;
    let invites = a.ok("getInvites", None, json!({})).await;
    assert_eq!(invites[0]["key"], inv["key"]);
    assert_eq!(invites[0]["uses"], 1);
    let perms = a.ok("getPermissions", None, json!({})).await;
    assert!(perms
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["username"] == "bob" && e["permissions"] == "rw"));
}

#[tokio::test]
async fn graceful_shutdown_closes_sockets_with_1001_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = Proc::start(dir.path(), &[]).await;
    let alice = login(&p.base, "alice").await;
    alice.create_doc("doc").await;
    let mut a = alice.ws("doc").await;
    let status = tokio::task::spawn_blocking(move || p.sigterm());
    let close = loop {
        match tokio::time::timeout(Duration::from_secs(10), a.socket.next())
            .await
            .unwrap()
        {
            Some(Ok(Message::Close(frame))) => break frame,
            Some(Ok(_)) => continue,
            other => panic!("expected close, got {other:?}"),
        }
    };
    assert_eq!(close.unwrap().code, CloseCode::Away);
    assert!(status.await.unwrap().success(), "exit code 0");
}

/// Burst of acknowledged writes from many sockets, `kill -9` in the middle,
/// several rounds: everything acknowledged is there after restart, and no
/// invite's use count disagrees with the permissions it granted.
#[tokio::test]
async fn kill_9_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let mut acked_invites: Vec<String> = Vec::new();
    let mut acked_grants: Vec<(String, String)> = Vec::new(); // (user, invite key)
    for round in 0..3 {
        let mut p = Proc::start(dir.path(), &[]).await;
        let admin = login(&p.base, "admin").await;
        if round == 0 {
            admin.create_doc("doc").await;
        }
        let mut tasks = Vec::new();
        for w in 0..8 {
            let admin = User {
                http: admin.http.clone(),
                cookie: admin.cookie.clone(),
                name: "admin".into(),
                base: p.base.clone(),
            };
            let guest = login(&p.base, &format!("g{round}x{w}")).await;
            tasks.push(tokio::spawn(async move {
                let mut a = admin.ws("doc").await;
                let mut g = guest.ws("doc").await;
                let mut invites = Vec::new();
                let mut grants = Vec::new();
                for _ in 0..1000 {
                    let Some(r) = a
                        .try_request("createInvite", None, json!({"maxUses": 2}))
                        .await
                    else {
                        break;
                    };
                    let key = r["reply"]["key"]
                        .as_str()
                        .expect("create succeeds")
                        .to_string();
                    invites.push(key.clone());
                    let Some(r) = g
                        .try_request("acceptInvite", None, json!({"key": key}))
                        .await
                    else {
                        break;
                    };
                    assert_eq!(r["reply"], "r", "accept succeeds: {r}");
                    grants.push((guest.name.clone(), key));
                }
                (invites, grants)
            }));
        }
        // Let the burst run, then kill without warning.
        tokio::time::sleep(Duration::from_millis(400 + 200 * round as u64)).await;
        p.kill9();
        for t in tasks {
            // Sockets die with the process; each task returns what was acked.
            let (invites, grants) = match t.await {
                Ok(v) => v,
                Err(e) => std::panic::resume_unwind(e.into_panic()),
            };
            acked_invites.extend(invites);
            acked_grants.extend(grants);
        }
    }
    assert!(
        acked_invites.len() > 50,
        "burst too small: {}",
        acked_invites.len()
    );
    // Check the data directory directly with the server stopped.
    let rt_store = keystrate::store::Store::open(dir.path()).unwrap();
    for key in &acked_invites {
        assert!(
            rt_store.invites.get(key).unwrap().is_some(),
            "acked invite {key} lost"
        );
    }
    for (user, key) in &acked_grants {
        let record: Value =
            serde_json::from_slice(&rt_store.invites.get(key).unwrap().unwrap()).unwrap();
        assert!(
            record["accepted_by"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["user"]["username"] == user.as_str()),
            "acked accept of {key} by {user} lost"
        );
    }
    // No half-applied accept: every recorded acceptor has a permission entry.
    for item in rt_store.invites.iter() {
        let (_, v) = item.unwrap();
        let record: Value = serde_json::from_slice(&v).unwrap();
        for a in record["accepted_by"].as_array().unwrap() {
            let user = format!("doc\0{}:local", a["user"]["username"].as_str().unwrap());
            let level = rt_store.perms.get(user.as_bytes()).unwrap();
            assert_eq!(
                level.as_deref(),
                Some(&b"r"[..]),
                "use counted without its permission"
            );
        }
    }
    // And every guest entry comes from an acceptance.
    let granted: std::collections::HashSet<&str> =
        acked_grants.iter().map(|(u, _)| u.as_str()).collect();
    for item in rt_store.perms.scan_prefix(b"doc\0") {
        let (k, _) = item.unwrap();
        let id = String::from_utf8_lossy(&k[4..]).to_string();
        let name = id.trim_end_matches(":local");
        if name != "admin" && !granted.contains(name) {
            let accepted_somewhere = rt_store.invites.iter().any(|i| {
                let v: Value = serde_json::from_slice(&i.unwrap().1).unwrap();
                v["accepted_by"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|a| a["user"]["username"] == name)
            });
            assert!(
                accepted_somewhere,
                "{name} has a permission without an accepted invite"
            );
        }
    }
}

#[tokio::test]
async fn connections_over_the_cap_get_503_and_the_server_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let p = Proc::start(dir.path(), &["--max-connections", "20"]).await;
    let alice = login(&p.base, "alice").await;
    alice.create_doc("doc").await;
    let mut sockets = Vec::new();
    for _ in 0..20 {
        match Ws::connect(&p.base, "doc", Some(&alice.cookie), None).await {
            Ok(ws) => sockets.push(ws),
            Err(status) => {
                assert_eq!(status, 503);
                break;
            }
        }
    }
    let fresh = reqwest::Client::new();
    let r = fresh
        .get(format!("{}/health", p.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(
        Ws::connect(&p.base, "doc", Some(&alice.cookie), None)
            .await
            .err(),
        Some(503)
    );
    drop(sockets);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = reqwest::Client::new()
            .get(format!("{}/health", p.base))
            .send()
            .await;
        if r.map(|r| r.status() == 200).unwrap_or(false) {
            break;
        }
        assert!(Instant::now() < deadline, "server did not recover");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn user_add_reads_the_password_from_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .args(["user", "add", "carol", "--data"])
        .arg(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"correct horse\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A short password is refused with a message and a non-zero exit.
    let mut child = Command::new(BIN)
        .args(["--data"])
        .arg(dir.path())
        .args(["user", "add", "dave"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"short\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("password must be 8 to 1024 bytes"));
    // Carol can log in on a server with registration closed.
    let p = Proc::start(dir.path(), &["--no-open-registration"]).await;
    let r = reqwest::Client::new()
        .post(format!("{}/auth/login", p.base))
        .json(&json!({"username": "carol", "password": "correct horse"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = reqwest::Client::new()
        .post(format!("{}/auth/register", p.base))
        .json(&json!({"username": "erin", "password": "correct horse"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

#[tokio::test]
async fn unusable_data_directory_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let out = Command::new(BIN)
        .arg("--data")
        .arg(&file)
        .args(["--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot open data directory"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

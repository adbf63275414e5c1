//! The `keystrate keys` CLI against the real binary: while a server runs on
//! the same data directory (through its admin socket) and while it is
//! stopped (on the store directly), followed by the Prosody-style flow of
//! using the key on `/invites_api`.

mod common;
use common::process::{login, Proc, BIN};
use serde_json::json;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output};

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

#[tokio::test]
async fn prosody_flow_with_the_server_running() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let server = Proc::start(dir.path(), &[]).await;
    login(&server.base, "alice").await.create_doc("doc1").await;
    let bob = login(&server.base, "bob").await.http;

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
    let server = Proc::start(dir.path(), &[]).await;
    login(&server.base, "alice").await.create_doc("doc1").await;
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

    let server = Proc::start(dir.path(), &[]).await;
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

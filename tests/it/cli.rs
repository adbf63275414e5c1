//! The `keystrate keys` and `keystrate user` CLI against the real binary:
//! while a server runs on the same data directory (through its admin socket)
//! and while it is stopped (on the store directly), followed by the
//! Prosody-style flow of using the key on `/invites_api`; and how the binary
//! starts (environment switches, a busy port, a locked directory, logs).

use crate::common::process::{
    cli, cli_with_stdin, failed_with, register, start_fails, succeeded, Proc,
};
use crate::common::{session_cookie, Call};
use serde_json::json;
use std::os::unix::fs::PermissionsExt;
use std::process::Output;
use std::time::Duration;

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

/// A failed command: non-zero exit, a message on stderr, nothing on stdout.
fn assert_fails(o: &Output, message: &str) {
    failed_with(o, message);
    assert!(o.stdout.is_empty(), "nothing on stdout: {o:?}");
}

/// `keystrate keys create <doc> x --owner <owner>` on `data`.
fn create_key(data: &str, doc: &str, owner: &str) -> Output {
    cli(&["keys", "create", doc, "x", "--owner", owner, "--data", data])
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
    register(&server.base, "alice")
        .await
        .create_doc("doc1")
        .await;
    let bob = register(&server.base, "bob").await.http;
    register(&server.base, "carol").await;

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
    for (doc, owner, message) in [
        ("nodoc", "alice", "No such document nodoc"),
        (
            "doc1",
            "bob",
            "bob is not an admin of doc1 (has only \"r\")",
        ),
        ("doc1", "nobody", "no such user nobody"),
        (
            "doc1",
            "carol",
            "carol is not an admin of doc1 (has no permission)",
        ),
    ] {
        assert_fails(&create_key(data, doc, owner), message);
    }
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
    register(&server.base, "alice")
        .await
        .create_doc("doc1")
        .await;
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
    assert_fails(&create_key(data, "doc1", "nobody"), "no such user nobody");
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

/// `/auth/login` with a password: the status, and the session cookie.
async fn try_login(base: &str, name: &str, password: &str) -> (u16, Option<String>) {
    let r = reqwest::Client::new()
        .post(format!("{base}/auth/login"))
        .json(&json!({"username": name, "password": password}))
        .sent()
        .await;
    (r.status().as_u16(), session_cookie(&r))
}

/// `user add / list / passwd / delete` through the admin socket of a
/// running server: every change is seen by the server at once.
#[tokio::test]
async fn user_commands_with_the_server_running() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let server = Proc::start(dir.path(), &[]).await;
    let alice = register(&server.base, "alice").await;
    alice.create_doc("shared").await;
    alice.create_doc("solo").await;
    let bob = register(&server.base, "bob").await;
    register(&server.base, "carol").await;

    // add: before, the command failed on sled's lock while the server ran.
    let out = cli_with_stdin(
        &["user", "add", "dave", "--data", data],
        "dave's password\n",
    );
    assert_eq!(succeeded(&out), "created user dave\n");
    assert_eq!(
        try_login(&server.base, "dave", "dave's password").await.0,
        200
    );
    assert_fails(
        &cli_with_stdin(
            &["user", "add", "dave", "--data", data],
            "another password\n",
        ),
        "username dave is taken",
    );
    assert_fails(
        &cli_with_stdin(&["user", "add", "erin", "--data", data], "short\n"),
        "password must be 8 to 1024 bytes long",
    );

    // list: one `<name>\t<created at>` line per user.
    let listed = succeeded(&cli(&["user", "list", "--data", data]));
    let names: Vec<&str> = listed
        .lines()
        .map(|l| {
            let (name, created) = l.split_once('\t').expect("name<TAB>created");
            assert!(created.ends_with('Z') && created.len() == 24, "{created}");
            name
        })
        .collect();
    assert_eq!(names, ["alice", "bob", "carol", "dave"]);

    // bob becomes admin of `shared`, owns a key and an invite there, and an
    // account key; he has an open socket.
    let mut a = alice.ws("shared").await;
    a.ok(
        "setPermissions",
        None,
        json!({"username": "bob", "permissions": "arw"}),
    )
    .await;
    let key = succeeded(&cli(&[
        "keys", "create", "shared", "bot", "--owner", "bob", "--data", data,
    ]));
    let key = key.trim_end().to_string();
    let mut b = bob.ws("shared").await;
    let invite = b.ok("createInvite", None, json!({"maxUses": 2})).await;
    let r = bob
        .http
        .post(server.url("/v1/account/keys"))
        .json(&json!({"name": "laptop"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let account_key: serde_json::Value = r.json().await.unwrap();
    let basic = format!(
        "{}:{}",
        account_key["key"]["_id"].as_str().unwrap(),
        account_key["key"]["secret"].as_str().unwrap()
    );

    // passwd: the new password works, the old one and bob's session do not,
    // and his socket is closed.
    let out = cli_with_stdin(
        &["user", "passwd", "bob", "--data", data],
        "bob's new password\n",
    );
    assert_eq!(
        succeeded(&out),
        "changed the password of bob; its sessions ended\n"
    );
    assert!(
        b.closes_within(std::time::Duration::from_secs(10)).await,
        "bob's socket closes"
    );
    assert_eq!(try_login(&server.base, "bob", "correct horse").await.0, 401);
    let (status, _) = try_login(&server.base, "bob", "bob's new password").await;
    assert_eq!(status, 200);
    let me = bob.http.get(server.url("/auth/me")).send().await.unwrap();
    assert_eq!(me.status(), 401, "the old session ended");
    assert_fails(
        &cli_with_stdin(
            &["user", "passwd", "nobody", "--data", data],
            "a long password\n",
        ),
        "no such user nobody",
    );

    // delete: refused while the user is the last admin of a document, and
    // the message names exactly those documents.
    let refused = cli(&["user", "delete", "alice", "--data", data]);
    assert_fails(&refused, "alice is the last admin of solo;");
    assert!(!String::from_utf8_lossy(&refused.stderr).contains("shared"));
    assert_eq!(
        try_login(&server.base, "alice", "correct horse").await.0,
        200
    );

    // Deleting bob takes his entry, invite, app key and account key along.
    assert_eq!(
        succeeded(&cli(&["user", "delete", "bob", "--data", data])),
        "deleted user bob\n"
    );
    assert_eq!(
        try_login(&server.base, "bob", "bob's new password").await.0,
        401
    );
    let anon = reqwest::Client::new();
    let r = anon
        .get(server.url(&format!("/invites_api?key={key}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "bob's app key is gone");
    let r = anon
        .get(server.url("/v1/account/keys"))
        .basic_auth(basic.split(':').next().unwrap(), basic.split(':').nth(1))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "bob's account key is gone");
    let entries = a.ok("getPermissions", None, json!({})).await;
    assert_eq!(entries.as_array().unwrap().len(), 1, "{entries}");
    assert_eq!(entries[0]["username"], "alice");
    let invites = a.ok("getInvites", None, json!({"all": true})).await;
    assert!(
        !invites
            .to_string()
            .contains(invite["key"].as_str().unwrap()),
        "bob's invite is gone: {invites}"
    );
    assert_eq!(
        succeeded(&cli(&["user", "list", "--data", data]))
            .lines()
            .map(|l| l.split('\t').next().unwrap().to_string())
            .collect::<Vec<_>>(),
        ["alice", "carol", "dave"]
    );
    assert_fails(
        &cli(&["user", "delete", "bob", "--data", data]),
        "no such user bob",
    );
    server.stop();
}

/// The same commands on the store directly while no server runs; what
/// they did is there after a restart.
#[tokio::test]
async fn user_commands_with_the_server_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    // `user add` may start a new data directory; the others need one.
    assert_fails(&cli(&["user", "list", "--data", data]), "no data directory");
    succeeded(&cli_with_stdin(
        &["user", "add", "alice", "--data", data],
        "alice's password\n",
    ));
    succeeded(&cli_with_stdin(
        &["user", "add", "eve", "--data", data],
        "eve's password\n",
    ));
    let server = Proc::start(std::path::Path::new(data), &[]).await;
    let (status, cookie) = try_login(&server.base, "alice", "alice's password").await;
    assert_eq!(status, 200);
    let r = reqwest::Client::new()
        .post(server.url("/api/documents"))
        .header(
            "cookie",
            format!("keystrate_session={}", cookie.clone().unwrap()),
        )
        .json(&json!({"id": "notes"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    server.stop();

    let listed = succeeded(&cli(&["user", "list", "--data", data]));
    assert_eq!(
        listed
            .lines()
            .map(|l| l.split('\t').next().unwrap())
            .collect::<Vec<_>>(),
        ["alice", "eve"]
    );
    succeeded(&cli_with_stdin(
        &["--data", data, "user", "passwd", "alice"],
        "alice's second password\n",
    ));
    assert_fails(
        &cli(&["user", "delete", "alice", "--data", data]),
        "alice is the last admin of notes;",
    );
    succeeded(&cli(&["user", "delete", "eve", "--data", data]));

    let server = Proc::start(std::path::Path::new(data), &[]).await;
    assert_eq!(
        try_login(&server.base, "alice", "alice's password").await.0,
        401
    );
    assert_eq!(
        try_login(&server.base, "alice", "alice's second password")
            .await
            .0,
        200
    );
    assert_eq!(
        try_login(&server.base, "eve", "eve's password").await.0,
        401
    );
    let me = reqwest::Client::new()
        .get(server.url("/auth/me"))
        .header("cookie", format!("keystrate_session={}", cookie.unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 401, "passwd ended alice's session");
    server.stop();
}

/// Boolean switches read `1/0`, `yes/no`, `on/off`, `true/false` from the
/// environment (clap's default refused `1`, so the server did not start).
#[tokio::test]
async fn boolean_environment_switches_take_one_and_yes() {
    for (value, registration_open) in [("1", false), ("yes", false), ("0", true), ("no", true)] {
        let dir = tempfile::tempdir().unwrap();
        let envs = [
            ("KEYSTRATE_NO_OPEN_REGISTRATION", value),
            ("RUST_LOG", "off"),
        ];
        let server = Proc::start_with_env(dir.path(), &[], &envs).await;
        let body = json!({"username": "zed", "password": "a long password"});
        let status = reqwest::Client::new()
            .post(server.url("/auth/register"))
            .json(&body)
            .status_code()
            .await;
        let expected = if registration_open { 201 } else { 403 };
        assert_eq!(status, expected, "KEYSTRATE_NO_OPEN_REGISTRATION={value}");
    }
}

/// A start that fails because the port is taken leaves no data directory.
#[test]
fn a_busy_port_creates_no_data_directory() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("never-made");
    let args = ["--data", data.to_str().unwrap(), "--listen", addr.as_str()];
    let err = start_fails(&args, &[("RUST_LOG", "off")]);
    assert!(err.contains(&format!("cannot listen on {addr}")), "{err}");
    assert!(!data.exists(), "the data directory was created");
}

/// `--allowed-origin` and `--public-url` are checked at start: a value
/// that is not an http(s) origin or URL stops the binary with a message
/// naming it, before any data directory is made.
#[test]
fn bad_origins_and_public_urls_are_refused_at_start() {
    for (variable, value, message) in [
        (
            "KEYSTRATE_ALLOWED_ORIGIN",
            "app.example",
            "\"app.example\" is not a URL",
        ),
        (
            "KEYSTRATE_ALLOWED_ORIGIN",
            "https://app.example/page",
            "is not an origin",
        ),
        (
            "KEYSTRATE_PUBLIC_URL",
            "keys.example",
            "\"keys.example\" is not a URL",
        ),
        (
            "KEYSTRATE_PUBLIC_URL",
            "ftp://keys.example",
            "not an http or https URL",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("never-made");
        let err = start_fails(
            &["--data", data.to_str().unwrap(), "--listen", "127.0.0.1:0"],
            &[(variable, value), ("RUST_LOG", "off")],
        );
        assert!(err.contains(message), "{variable}={value}: {err}");
        assert!(!data.exists(), "the data directory was created");
    }
}

/// A second server on a directory in use says so instead of sled's raw
/// `Os { code: 11, … }`; the server logs carry no colour codes when
/// stderr is not a terminal.
#[tokio::test]
async fn a_locked_data_directory_and_plain_logs() {
    let dir = tempfile::tempdir().unwrap();
    let first = Proc::start_logged(dir.path(), &[], &[]).await;
    let args = [
        "--data",
        dir.path().to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ];
    let err = start_fails(&args, &[("RUST_LOG", "off")]);
    assert!(
        err.contains("is in use by another keystrate process"),
        "{err}"
    );
    assert!(!err.contains("Os {"), "{err}");

    let logs = first.stop_logged().join("\n");
    assert!(logs.contains("keystrate listening"), "{logs}");
    assert!(!logs.contains('\u{1b}'), "colour codes in {logs:?}");
}

/// One connection to a running server's admin socket, spoken as the CLI
/// does: a JSON request a line, a JSON reply a line.
struct AdminSocket {
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::net::unix::OwnedReadHalf>>,
    write: tokio::net::unix::OwnedWriteHalf,
}

impl AdminSocket {
    async fn connect(data: &std::path::Path) -> AdminSocket {
        use tokio::io::AsyncBufReadExt;
        let stream = tokio::net::UnixStream::connect(data.join("admin.sock"))
            .await
            .unwrap();
        let (read, write) = stream.into_split();
        AdminSocket {
            lines: tokio::io::BufReader::new(read).lines(),
            write,
        }
    }

    /// Sends one line and reads the reply line.
    async fn ask_line(&mut self, line: &str) -> serde_json::Value {
        use tokio::io::AsyncWriteExt;
        self.write
            .write_all(format!("{line}\n").as_bytes())
            .await
            .unwrap();
        let reply = tokio::time::timeout(Duration::from_secs(30), self.lines.next_line())
            .await
            .expect("a reply line")
            .unwrap()
            .expect("the connection stays open");
        serde_json::from_str(&reply).unwrap_or_else(|e| panic!("not JSON ({e}): {reply}"))
    }

    async fn ask(&mut self, request: serde_json::Value) -> serde_json::Value {
        self.ask_line(&request.to_string()).await
    }
}

/// The admin socket's protocol, spoken directly: `{"op": …}` request
/// lines answered by `{"ok": …}` or `{"error", "code"}` lines, several on
/// one connection, a bad line answered without closing it.
#[tokio::test]
async fn admin_socket_speaks_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    let server = Proc::start(dir.path(), &[]).await;
    register(&server.base, "alice")
        .await
        .create_doc("doc1")
        .await;
    let mut admin = AdminSocket::connect(dir.path()).await;

    let users = admin.ask(json!({"op": "list_users"})).await;
    let names: Vec<&str> = users["ok"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alice"], "{users}");

    let owner = json!({"username": "alice", "provider": "local"});
    let created = admin
        .ask(json!({"op": "create_key", "doc": "doc1", "name": "bridge", "owner": owner}))
        .await;
    let key = created["ok"]["key"].as_str().expect("a key");
    assert_key_form(key);
    let id = key.split('/').next().unwrap();
    assert_eq!(created["ok"]["details"]["id"], id);
    assert_eq!(created["ok"]["details"]["name"], "bridge");
    let listed = admin.ask(json!({"op": "list_keys", "doc": "doc1"})).await;
    assert_eq!(listed["ok"].as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed["ok"][0]["id"], id);

    // Errors: a code and a message, no `ok`; the connection goes on.
    for (line, code) in [
        (
            json!({"op": "list_keys", "doc": "nope"}).to_string(),
            "no_such_document",
        ),
        ("not json".to_string(), "bad_request"),
        (json!({"op": "format_disk"}).to_string(), "bad_request"),
        (
            json!({"op": "add_user", "name": "bob", "password": "short"}).to_string(),
            "bad_request",
        ),
    ] {
        let reply = admin.ask_line(&line).await;
        assert_eq!(reply["code"], code, "{line}: {reply}");
        assert!(
            reply["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{reply}"
        );
        assert!(reply.get("ok").is_none(), "{reply}");
    }

    let deleted = admin
        .ask(json!({"op": "delete_key", "doc": "doc1", "id": id}))
        .await;
    assert_eq!(deleted, json!({"ok": {}}));
    let listed = admin.ask(json!({"op": "list_keys", "doc": "doc1"})).await;
    assert_eq!(listed, json!({"ok": []}));
    let r = reqwest::get(server.url(&format!("/invites_api?key={key}")))
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "the deleted key no longer works");
    server.stop();
}

/// A request line is refused as soon as it outgrows the limit (64 KiB),
/// while its end has not even been sent: the server does not buffer it
/// whole. That connection closes; the socket goes on serving others.
#[tokio::test]
async fn an_over_long_admin_line_is_refused_before_it_ends() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    const MAX_LINE: usize = 64 * 1024;
    let dir = tempfile::tempdir().unwrap();
    let server = Proc::start(dir.path(), &[]).await;
    let stream = tokio::net::UnixStream::connect(dir.path().join("admin.sock"))
        .await
        .unwrap();
    let (read, mut write) = stream.into_split();
    // Four times the limit and no newline; the write half stays open
    // (held by the task's result) so the line never ends.
    let sender = tokio::spawn(async move {
        let _ = write.write_all(&vec![b'x'; MAX_LINE * 4]).await;
        write
    });
    let mut read = tokio::io::BufReader::new(read);
    let mut reply = String::new();
    tokio::time::timeout(Duration::from_secs(10), read.read_line(&mut reply))
        .await
        .expect("refused before the line ends")
        .unwrap();
    let reply: serde_json::Value = serde_json::from_str(&reply).unwrap();
    assert_eq!(reply["code"], "bad_request", "{reply}");
    assert!(
        reply["error"].as_str().unwrap().contains("longer than"),
        "{reply}"
    );
    // Then the connection closes (end of file, or a reset for the bytes
    // the server left unread).
    let mut rest = String::new();
    let closed = tokio::time::timeout(Duration::from_secs(10), read.read_line(&mut rest))
        .await
        .expect("the connection closes");
    assert!(matches!(closed, Ok(0) | Err(_)), "{closed:?} {rest:?}");
    drop(sender);

    let mut admin = AdminSocket::connect(dir.path()).await;
    assert_eq!(
        admin.ask(json!({"op": "list_users"})).await,
        json!({"ok": []})
    );
    server.stop();
}

/// The operator's bypass, called on the engine directly: the operator
/// manages accounts (even with registration closed) and any document's
/// keys; a user — even the document's admin — or an anonymous caller
/// making the same calls is refused, and the operator holds no level on a
/// document.
#[tokio::test]
async fn only_the_operator_manages_accounts_and_any_documents_keys() {
    use keystrate::engine::key_rules::KeyScope;
    use keystrate::engine::{Caller, Engine, EngineConfig, NoEvents};
    let dir = tempfile::tempdir().unwrap();
    let store = keystrate::store::Store::open(dir.path()).unwrap();
    let config = EngineConfig {
        open_registration: false,
        ..EngineConfig::default()
    };
    let engine = Engine::new(store, config, std::sync::Arc::new(NoEvents));
    let operator = Caller::Operator;
    let password = "correct horse battery";
    let code = |e: Option<keystrate::engine::Error>| e.map(|e| e.code());

    let alice = engine
        .create_user(&operator, "alice", password)
        .await
        .unwrap();
    let bob = engine
        .create_user(&operator, "bob", password)
        .await
        .unwrap();
    assert_eq!(
        code(
            engine
                .create_user(&Caller::Anonymous, "eve", password)
                .await
                .err()
        ),
        Some("forbidden"),
        "registration is closed to everyone else"
    );
    let as_alice = Caller::User(alice.clone());
    engine
        .create_document(&as_alice, Some("doc1"))
        .await
        .unwrap();

    for caller in [&as_alice, &Caller::Anonymous] {
        assert_eq!(code(engine.list_users(caller).err()), Some("forbidden"));
        assert_eq!(
            code(
                engine
                    .set_password(caller, &bob, "a new password")
                    .await
                    .err()
            ),
            Some("forbidden")
        );
        assert_eq!(
            code(engine.delete_user(caller, &bob).await.err()),
            Some("forbidden")
        );
        assert_eq!(
            code(
                engine
                    .create_app_key_for(caller, "doc1", "k", &alice)
                    .await
                    .err()
            ),
            Some("forbidden")
        );
    }
    // No level on documents: the operator is nobody there.
    assert_eq!(
        code(engine.create_document(&operator, Some("doc2")).await.err()),
        Some("not_logged_in")
    );
    assert!(!engine.caller_level(&operator, "doc1").unwrap().can_read());

    // Keys of a document it is not admin of, in an admin owner's name.
    assert_eq!(
        code(
            engine
                .create_app_key_for(&operator, "doc1", "k", &bob)
                .await
                .err()
        ),
        Some("forbidden"),
        "the owner must be an admin"
    );
    let key = engine
        .create_app_key_for(&operator, "doc1", "bridge", &alice)
        .await
        .unwrap();
    assert_eq!(key.owner, alice);
    let as_bob = Caller::User(bob.clone());
    assert_eq!(
        code(engine.keys_for(&as_bob, KeyScope::App("doc1")).err()),
        Some("not_admin")
    );
    assert_eq!(
        code(engine.delete_app_key(&as_bob, "doc1", &key.id).await.err()),
        Some("not_admin")
    );
    let app = KeyScope::App("doc1");
    assert_eq!(engine.keys_for(&operator, app).unwrap().len(), 1);
    engine
        .delete_app_key(&operator, "doc1", &key.id)
        .await
        .unwrap();
    assert!(engine.keys_for(&operator, app).unwrap().is_empty());

    let names: Vec<String> = engine
        .list_users(&operator)
        .unwrap()
        .into_iter()
        .map(|u| u.username)
        .collect();
    assert_eq!(names, ["alice", "bob"]);
    engine
        .set_password(&operator, &bob, "a new password")
        .await
        .unwrap();
    engine.delete_user(&operator, &bob).await.unwrap();
    assert_eq!(engine.list_users(&operator).unwrap().len(), 1);
}

/// `--owner name:provider` names a user of another provider (docs/programs.md):
/// such accounts come only from an import, so the store is made by one. A
/// key made for `alice:github` is hers, not local alice's; a provider with
/// no such user is refused by name.
#[tokio::test]
async fn keys_create_takes_an_owner_of_another_provider() {
    let root = tempfile::tempdir().unwrap();
    let (source, target) = (root.path().join("source"), root.path().join("target"));
    let server = Proc::start(&source, &[]).await;
    register(&server.base, "alice")
        .await
        .create_doc("shared")
        .await;
    server.stop();
    let exported = succeeded(&cli(&["export", "--data", source.to_str().unwrap()]));
    // The same records, plus alice of github as a second admin.
    let github = json!({"username": "alice", "provider": "github"});
    let mut lines = Vec::new();
    for line in exported.lines() {
        lines.push(line.to_string());
        let record: serde_json::Value = serde_json::from_str(line).unwrap();
        if record["type"] == "user" {
            let mut other = record.clone();
            other["provider"] = json!("github");
            lines.push(other.to_string());
        }
        if record["type"] == "permission" {
            let mut other = record.clone();
            other["user"] = github.clone();
            lines.push(other.to_string());
        }
    }
    let target_data = target.to_str().unwrap();
    let input = lines.join("\n") + "\n";
    succeeded(&cli_with_stdin(&["import", "--data", target_data], input));

    let key = succeeded(&create_key(target_data, "shared", "alice:github"));
    let id = key.trim().split('/').next().unwrap().to_string();
    let other_provider = create_key(target_data, "shared", "alice:gitlab");
    assert_fails(&other_provider, "no such user alice:gitlab");
    let records = succeeded(&cli(&["export", "--data", target_data]));
    let made = records
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|r| r["type"] == "key" && r["id"] == id.as_str())
        .expect("the new key is exported");
    assert_eq!(made["owner"], github);
}

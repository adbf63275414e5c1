//! The real binary: restart persistence, graceful shutdown, the connection
//! cap, the `user add` command and start-up errors. (`kill -9` durability
//! is in `durability.rs`.)

use crate::common::process::{cli_with_stdin, free_port, register, start_fails, Proc, BIN};
use crate::common::*;
use futures_util::StreamExt;
use serde_json::json;
use std::process::Command;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn state_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = Proc::start(dir.path(), &[]).await;
    let alice = register(&p.base, "alice").await;
    alice.create_doc("doc").await;
    let mut a = alice.ws("doc").await;
    let inv = a
        .ok(
            "createInvite",
            None,
            json!({"permissions": "rw", "maxUses": 3}),
        )
        .await;
    let bob = register(&p.base, "bob").await;
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
    shuts_down_gracefully_on("TERM").await;
}

#[tokio::test]
async fn sigint_shuts_down_as_gracefully_as_sigterm() {
    shuts_down_gracefully_on("INT").await;
}

async fn shuts_down_gracefully_on(signal: &'static str) {
    let dir = tempfile::tempdir().unwrap();
    let mut p = Proc::start(dir.path(), &[]).await;
    let alice = register(&p.base, "alice").await;
    alice.create_doc("doc").await;
    let mut a = alice.ws("doc").await;
    let status = tokio::task::spawn_blocking(move || p.signal(signal));
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

#[tokio::test]
async fn connections_over_the_cap_get_503_and_the_server_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let p = Proc::start(dir.path(), &["--max-connections", "20"]).await;
    let alice = register(&p.base, "alice").await;
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
    assert!(
        r.headers().get("retry-after").is_some(),
        "503 over the cap carries Retry-After"
    );
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

/// The binary's jemalloc runs with the options `src/lib.rs` exports. A
/// misnamed options symbol links fine and is silently ignored, so this asks
/// jemalloc itself (its exit report lists the options in force).
#[test]
fn the_binary_runs_jemalloc_with_one_arena_and_background_purging() {
    let out = Command::new(BIN)
        .arg("--version")
        .env("_RJEM_MALLOC_CONF", "stats_print:true")
        .output()
        .unwrap();
    assert!(out.status.success());
    let report = String::from_utf8_lossy(&out.stderr);
    for option in [
        "opt.narenas: 1\n",
        "opt.background_thread: true ",
        "opt.dirty_decay_ms: 5000 ",
        "opt.muzzy_decay_ms: 5000 ",
    ] {
        assert!(report.contains(option), "{option} missing from {report}");
    }
}

#[tokio::test]
async fn user_add_reads_the_password_from_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let out = cli_with_stdin(&["user", "add", "carol", "--data", data], "correct horse\n");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A short password is refused with a message and a non-zero exit.
    let out = cli_with_stdin(&["--data", data, "user", "add", "dave"], "short\n");
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
async fn a_new_data_directory_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("fresh").join("data");
    let _p = Proc::start(&data, &[]).await;
    let mode = std::fs::metadata(&data).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "{mode:o}");
}

#[tokio::test]
async fn an_existing_data_directory_open_to_others_is_made_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let _p = Proc::start(&data, &[]).await;
    let mode = std::fs::metadata(&data).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "{mode:o}");
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

/// Older layouts are migrated at start (tests/it/export.rs); a layout newer
/// than this build is refused, untouched, with the commands that move it.
#[tokio::test]
async fn a_data_directory_with_a_newer_storage_layout_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let open = || {
        sled::Config::new()
            .path(dir.path())
            .segment_size(2 * 1024 * 1024)
            .open()
            .unwrap()
    };
    {
        let db = open();
        db.insert("keystrate-layout", "4").unwrap();
        db.open_tree("invites").unwrap().insert("k", "{}").unwrap();
        db.flush().unwrap();
    }
    let out = Command::new(BIN)
        .arg("--data")
        .arg(dir.path())
        .args(["--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("uses storage layout 4, newer than"),
        "{stderr}"
    );
    let export = format!("keystrate export --data {}", dir.path().display());
    assert!(stderr.contains(&export), "{stderr}");
    assert!(stderr.contains("keystrate import --data"), "{stderr}");
    let db = open();
    let invites = db.open_tree("invites").unwrap();
    assert!(invites.get("k").unwrap().is_some(), "left untouched");
}

#[tokio::test]
async fn out_of_range_limits_are_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    for (flag, value) in [("--cache-mb", "0"), ("--ws-rate-limit", "0")] {
        let out = Command::new(BIN)
            .arg("--data")
            .arg(dir.path())
            .args(["--listen", "127.0.0.1:0", flag, value])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{flag} {value} accepted");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(flag), "{stderr}");
    }
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "nothing written"
    );
    // The smallest values are usable.
    let p = Proc::start(dir.path(), &["--cache-mb", "1", "--ws-rate-limit", "1"]).await;
    let health = reqwest::get(format!("{}/health", p.base)).await.unwrap();
    assert_eq!(health.status(), 200);
}

/// Every row of the README's configuration table: its environment
/// variable reaches its flag. A variable with values the flag refuses is
/// given one, and the binary must stop naming the flag (so it read the
/// variable for that flag); the others (free text and paths) are shown to
/// take effect. A row added to the README without a probe here fails.
#[tokio::test]
async fn every_flag_reads_its_environment_variable() {
    // (variable, a value its flag refuses, what the error must quote)
    let refused: &[(&str, &str, &str)] = &[
        ("KEYSTRATE_LISTEN", "nowhere", "--listen"),
        (
            "KEYSTRATE_NO_OPEN_REGISTRATION",
            "maybe",
            "--no-open-registration",
        ),
        (
            "KEYSTRATE_NO_CREATE_ON_VISIT",
            "maybe",
            "--no-create-on-visit",
        ),
        ("KEYSTRATE_MAX_CONNECTIONS", "many", "--max-connections"),
        (
            "KEYSTRATE_MAX_SOCKETS_PER_USER",
            "0",
            "--max-sockets-per-user",
        ),
        // Comma-separated: the second entry is judged on its own.
        (
            "KEYSTRATE_TRUSTED_PROXY",
            "10.0.0.0/8,proxy.example",
            "\"proxy.example\"",
        ),
        (
            "KEYSTRATE_HEADER_READ_TIMEOUT",
            "soon",
            "--header-read-timeout",
        ),
        ("KEYSTRATE_WS_PING_INTERVAL", "often", "--ws-ping-interval"),
        ("KEYSTRATE_WS_RATE_LIMIT", "0", "--ws-rate-limit"),
        (
            "KEYSTRATE_MAX_INVITES_PER_DOCUMENT",
            "0",
            "--max-invites-per-document",
        ),
        (
            "KEYSTRATE_DIRECTORY_WRITES_PER_MINUTE",
            "0",
            "--directory-writes-per-minute",
        ),
        ("KEYSTRATE_CACHE_MB", "0", "--cache-mb"),
        ("KEYSTRATE_SESSION_TTL", "0", "--session-ttl"),
        ("KEYSTRATE_METRICS_LISTEN", "nowhere", "--metrics-listen"),
        ("KEYSTRATE_LOG_FORMAT", "xml", "--log-format"),
    ];
    let shown_to_work = [
        "KEYSTRATE_DATA",
        "KEYSTRATE_PUBLIC_URL",
        "KEYSTRATE_ALLOWED_ORIGIN",
    ];
    let mut probed: Vec<&str> = refused.iter().map(|(var, ..)| *var).collect();
    probed.extend(shown_to_work);
    let mut documented = readme_variables();
    documented.sort();
    probed.sort();
    assert_eq!(documented, probed, "every README row has a probe");

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    for (var, value, quoted) in refused {
        let mut args = vec!["--data", data];
        if *var != "KEYSTRATE_LISTEN" {
            args.extend(["--listen", "127.0.0.1:0"]);
        }
        let err = start_fails(&args, &[(*var, *value)]);
        assert!(err.contains(*quoted), "{var}={value}: {err}");
    }
    data_and_listen_from_the_environment().await;
    public_url_from_the_environment().await;
    allowed_origins_from_the_environment().await;
}

/// The variables of the README's configuration table
/// (`| --flag | KEYSTRATE_… | default | meaning |`).
fn readme_variables() -> Vec<String> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"));
    let readme = readme.unwrap();
    let variables: Vec<String> = readme
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            cells.get(1)?.strip_prefix("`--")?;
            let variable = cells.get(2)?.strip_prefix('`')?.split('`').next()?;
            variable
                .starts_with("KEYSTRATE_")
                .then(|| variable.to_string())
        })
        .collect();
    assert!(variables.len() > 10, "the table was found: {variables:?}");
    variables
}

/// `KEYSTRATE_DATA` and `KEYSTRATE_LISTEN` with no flags at all.
async fn data_and_listen_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("from-env");
    let listen = format!("127.0.0.1:{}", free_port());
    let child = Command::new(BIN)
        .env("KEYSTRATE_DATA", &data)
        .env("KEYSTRATE_LISTEN", &listen)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // A `Proc`, so that it is killed however this ends.
    let server = Proc {
        child,
        base: format!("http://{listen}"),
        stdout: Default::default(),
        stderr: Default::default(),
    };
    let health = server.url("/health");
    wait_until("the server answers on KEYSTRATE_LISTEN", || async {
        reqwest::get(&health).await.is_ok_and(|r| r.status() == 200)
    })
    .await;
    let made = data.read_dir().map(|mut d| d.next().is_some());
    assert!(made.unwrap_or(false), "the store is in KEYSTRATE_DATA");
    server.stop();
}

/// `KEYSTRATE_PUBLIC_URL` sets the one origin sockets may come from.
async fn public_url_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let public = [("KEYSTRATE_PUBLIC_URL", "https://ks.example")];
    let p = Proc::start_with_env(dir.path(), &[], &public).await;
    let alice = register(&p.base, "alice").await;
    alice.create_doc("doc").await;
    for (origin, allowed) in [("https://ks.example", true), (p.base.as_str(), false)] {
        let r = Ws::connect(&p.base, "doc", Some(&alice.cookie), Some(origin)).await;
        assert_eq!(r.is_ok(), allowed, "{origin}: {:?}", r.err());
    }
}

/// `KEYSTRATE_ALLOWED_ORIGIN` takes a comma-separated list (README), each
/// entry an allowed origin.
async fn allowed_origins_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let origins = [(
        "KEYSTRATE_ALLOWED_ORIGIN",
        "https://a.example,https://b.example",
    )];
    let p = Proc::start_with_env(dir.path(), &[], &origins).await;
    let alice = register(&p.base, "alice").await;
    alice.create_doc("doc").await;
    for (origin, allowed) in [
        ("https://a.example", true),
        ("https://b.example", true),
        ("https://a.example,https://b.example", false),
        ("https://c.example", false),
    ] {
        let r = Ws::connect(&p.base, "doc", Some(&alice.cookie), Some(origin)).await;
        assert_eq!(r.is_ok(), allowed, "{origin}: {:?}", r.err());
    }
}

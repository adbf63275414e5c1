//! `keystrate export` / `keystrate import` against the real binary, and the
//! migration of stores written by older storage layouts (docs/export.md,
//! docs/architecture.md "Storage layouts").

use crate::common;
use crate::common::process::{
    cli, cli_with_stdin, failed_with, login, register, start_fails, succeeded, Proc,
};
use crate::common::{credentials, Call, PASSWORD};
use crate::directory_support::{claims, jwt_header, Directory, Identity, Registered, Wallet};
use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The `type` of every record line, in order (the header excluded).
fn types(lines: &str) -> Vec<String> {
    lines
        .lines()
        .skip(1)
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

/// Logs in with the password, never registering: the account must exist.
async fn password_login(base: &str, name: &str) -> u16 {
    reqwest::Client::new()
        .post(format!("{base}/auth/login"))
        .json(&credentials(name))
        .status_code()
        .await
}

/// Opening an invite link as a logged-in user accepts it (303 to the document).
async fn accept(base: &str, name: &str, doc: &str, invite: &str) -> common::User {
    let user = register(base, name).await;
    let r = user
        .http
        .get(user.url(&format!("/{doc}/?acceptInvite={invite}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "{name} accepts {invite}");
    let r = user
        .http
        .get(user.url(&format!("/{doc}/")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{name} may open {doc}");
    user
}

#[tokio::test]
async fn export_import_export_gives_the_same_lines_and_the_copy_serves_the_data() {
    let root = tempfile::tempdir().unwrap();
    let (old, new) = (root.path().join("old"), root.path().join("new"));
    let server = Proc::start(&old, &[]).await;

    // Users, a document, permissions, invites with an acceptance.
    let alice = register(&server.base, "alice").await;
    alice.create_doc("doc1").await;
    let mut ws = alice.ws("doc1").await;
    let used = ws
        .ok(
            "createInvite",
            None,
            json!({"permissions": "rw", "maxUses": 3}),
        )
        .await["key"]
        .as_str()
        .unwrap()
        .to_string();
    let spare = ws
        .ok("createInvite", None, json!({"permissions": "r"}))
        .await["key"]
        .as_str()
        .unwrap()
        .to_string();
    accept(&server.base, "bob", "doc1", &used).await;

    // An app key and an account key.
    let app_key = succeeded(&cli(&[
        "keys",
        "create",
        "doc1",
        "bridge",
        "--owner",
        "alice",
        "--data",
        path(&old),
    ]));
    let app_key = app_key.trim().to_string();
    let (act, act_secret) = alice.account_key("laptop").await;

    // Directory: one identity with an invite key, one revoked.
    let dir = Directory {
        base: server.base.clone(),
        http: reqwest::Client::new(),
    };
    let kept = Registered::new(&dir).await;
    let (wallet, identity) = (Wallet::generate(), Identity::generate());
    let revoked_cacao = wallet.cacao(&identity);
    dir.post_identity(&revoked_cacao).await.value();
    let c = claims(&identity, &wallet, &dir.aud(), "unregister_identity");
    dir.delete_identity(&identity.sign_jwt(&jwt_header(), &c))
        .await
        .value();

    // Export while the server runs (through its admin socket)...
    let running = succeeded(&cli(&["export", "--data", path(&old)]));
    let header: Value = serde_json::from_str(running.lines().next().unwrap()).unwrap();
    assert_eq!(header, json!({"format": "keystrate-export", "version": 1}));
    let mut seen = types(&running);
    seen.dedup();
    assert_eq!(
        seen,
        [
            "user",
            "document",
            "permission",
            "invite",
            "key",
            "identity",
            "invite_key",
            "revocation"
        ]
    );
    assert!(running.contains(&act_secret) && running.contains("passwordHash"));
    server.stop();

    // ... gives the same lines as on the stopped store, into a 0600 file.
    let file = root.path().join("backup.jsonl");
    succeeded(&cli(&[
        "export",
        "--data",
        path(&old),
        "--out",
        path(&file),
    ]));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), running);
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    // Import into a new directory, export again: byte for byte the same.
    let said = succeeded(&cli(&["import", "--data", path(&new), "--in", path(&file)]));
    assert!(said.contains(&format!("imported {} records", running.lines().count() - 1)));
    assert_eq!(succeeded(&cli(&["export", "--data", path(&new)])), running);

    // The copy serves the data.
    let copy = Proc::start(&new, &[]).await;
    assert_eq!(password_login(&copy.base, "alice").await, 200);
    assert_eq!(password_login(&copy.base, "bob").await, 200);
    accept(&copy.base, "carol", "doc1", &spare).await;
    let anon = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = anon
        .get(copy.url(&format!("/invites_api?key={app_key}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "the app key authenticates");
    let r = anon
        .get(copy.url("/v1/account/keys"))
        .basic_auth(&act, Some(&act_secret))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the account key authenticates");
    let dir = Directory {
        base: copy.base.clone(),
        http: reqwest::Client::new(),
    };
    assert!(dir.has_identity(&kept.identity).await);
    assert_eq!(dir.invite_of(&kept.wallet).await, Some(kept.invite.clone()));
    assert!(!dir.has_identity(&identity).await);
    // The revocation came along: the CACAO issued before it stays refused.
    assert_eq!(dir.post_identity(&revoked_cacao).await.status, 409);
    copy.stop();
}

#[tokio::test]
async fn import_refuses_a_store_that_is_not_empty_and_changes_nothing() {
    let root = tempfile::tempdir().unwrap();
    let (source, target) = (root.path().join("source"), root.path().join("target"));
    succeeded(&cli_with_stdin(
        &["user", "add", "alice", "--data", path(&source)],
        PASSWORD.as_bytes(),
    ));
    let lines = succeeded(&cli(&["export", "--data", path(&source)]));
    succeeded(&cli_with_stdin(
        &["user", "add", "zed", "--data", path(&target)],
        PASSWORD.as_bytes(),
    ));
    let before = succeeded(&cli(&["export", "--data", path(&target)]));

    failed_with(
        &cli_with_stdin(&["import", "--data", path(&target)], lines.as_bytes()),
        "the store is not empty",
    );
    assert_eq!(
        succeeded(&cli(&["export", "--data", path(&target)])),
        before
    );

    // Nor while a server runs on it.
    let server = Proc::start(&target, &[]).await;
    failed_with(
        &cli_with_stdin(&["import", "--data", path(&target)], lines.as_bytes()),
        "a server is running",
    );
    server.stop();
}

#[tokio::test]
async fn a_bad_line_is_named_by_its_number_and_nothing_is_written() {
    let root = tempfile::tempdir().unwrap();
    let source = root.path().join("source");
    succeeded(&cli_with_stdin(
        &["user", "add", "alice", "--data", path(&source)],
        PASSWORD.as_bytes(),
    ));
    let good = succeeded(&cli(&["export", "--data", path(&source)]));
    let user_line = good.lines().nth(1).unwrap();
    let invite = json!({
        "type": "invite", "document": "doc1", "key": "not-hex", "permissions": "r",
        "createdAt": 1, "expiresAt": 2,
        "createdBy": {"username": "alice", "provider": "local"},
        "maxUses": null, "acceptedBy": []
    });
    let cases = [
        (
            format!("{good}{{\"type\":\"user\",\"username\":"),
            "line 3:",
        ),
        (format!("{good}{{\"type\":\"nothing\"}}\n"), "line 3:"),
        (format!("{good}{invite}\n"), "line 3: invite key must be 64"),
        (
            format!("{good}{user_line}\n"),
            "line 3: a record with the same key",
        ),
        (
            good.replacen("\"version\":1", "\"version\":9", 1),
            "line 1: export version 9",
        ),
        (String::new(), "no keystrate export header"),
    ];
    for (i, (input, message)) in cases.iter().enumerate() {
        let target = root.path().join(format!("target{i}"));
        failed_with(
            &cli_with_stdin(&["import", "--data", path(&target)], input.as_bytes()),
            message,
        );
        assert!(!target.exists(), "nothing written for case {i}");
    }
}

#[tokio::test]
async fn a_store_whose_import_did_not_finish_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    succeeded(&cli_with_stdin(
        &["user", "add", "alice", "--data", path(&data)],
        PASSWORD.as_bytes(),
    ));
    {
        // What `import` leaves behind when it dies before its last flush.
        let db = sled::Config::new()
            .path(&data)
            .segment_size(2 * 1024 * 1024)
            .open()
            .unwrap();
        db.insert("keystrate-import-in-progress", "").unwrap();
        db.flush().unwrap();
    }
    let err = start_fails(&["--data", path(&data), "--listen", "127.0.0.1:0"], &[]);
    let expected = "did not finish; delete the directory and run the import again";
    assert!(err.contains(expected), "{err}");
    failed_with(&cli(&["export", "--data", path(&data)]), "did not finish");
}

/// The argon2 hash of [`PASSWORD`] as this build stores it.
fn password_hash(root: &Path) -> String {
    let source = root.join("hash-source");
    succeeded(&cli_with_stdin(
        &["user", "add", "alice", "--data", path(&source)],
        PASSWORD.as_bytes(),
    ));
    let lines = succeeded(&cli(&["export", "--data", path(&source)]));
    let user: Value = serde_json::from_str(lines.lines().nth(1).unwrap()).unwrap();
    user["passwordHash"].as_str().unwrap().to_string()
}

/// Writes alice, her document `doc1` and one unused invite the way layout
/// 1 (512 KiB segments, no layout mark, invites keyed by their hex key with
/// a document index) or layout 2 (invites under `doc \0 hex key`) did.
fn write_old_store(dir: &Path, layout: &str, hash: &str, invite: &str) {
    let db = if layout == "1" {
        sled::open(dir).unwrap()
    } else {
        let db = sled::Config::new()
            .path(dir)
            .segment_size(2 * 1024 * 1024)
            .open()
            .unwrap();
        db.insert("keystrate-layout", layout).unwrap();
        db
    };
    let tree = |name: &str| db.open_tree(name).unwrap();
    let alice = json!({"username": "alice", "provider": "local"});
    let json = |v: Value| serde_json::to_vec(&v).unwrap();
    tree("users")
        .insert(
            "alice:local",
            json(json!({"username": "alice", "provider": "local",
                        "password_hash": hash, "created_at": 1_700_000_000_000i64})),
        )
        .unwrap();
    tree("docs")
        .insert(
            "doc1",
            json(json!({"created_at": 1_700_000_000_000i64, "created_by": alice})),
        )
        .unwrap();
    tree("perms").insert(b"doc1\0alice:local", "arw").unwrap();
    tree("user_docs")
        .insert(b"alice:local\0doc1", "arw")
        .unwrap();
    let expires_at: i64 = 4_000_000_000_000; // year 2096
    let mut record = json!({
        "permissions": "rw", "created_at": 1_700_000_000_000i64, "expires_at": expires_at,
        "created_by": alice, "max_uses": 1, "accepted_by": []
    });
    let deadline = (expires_at as u64).to_be_bytes();
    let key = |parts: &[&[u8]]| parts.join(&0u8);
    if layout == "1" {
        record["key"] = json!(invite);
        record["doc"] = json!("doc1");
        tree("invites").insert(invite, json(record)).unwrap();
        tree("doc_invites")
            .insert(key(&[b"doc1", b"alice:local", invite.as_bytes()]), b"")
            .unwrap();
        tree("expiry")
            .insert(key(&[&deadline, invite.as_bytes()]), b"")
            .unwrap();
    } else {
        tree("invites")
            .insert(key(&[b"doc1", invite.as_bytes()]), json(record))
            .unwrap();
        tree("expiry")
            .insert(key(&[&deadline, b"doc1", invite.as_bytes()]), b"")
            .unwrap();
    }
    db.flush().unwrap();
}

#[tokio::test]
async fn stores_of_layouts_1_and_2_are_migrated_at_start_with_a_copy_aside() {
    let root = tempfile::tempdir().unwrap();
    let hash = password_hash(root.path());
    for layout in ["1", "2"] {
        let data = root.path().join(format!("data{layout}"));
        let invite = format!("{:064x}", layout.parse::<u8>().unwrap());
        write_old_store(&data, layout, &hash, &invite);

        let server = Proc::start(&data, &[]).await;
        assert_eq!(
            password_login(&server.base, "alice").await,
            200,
            "layout {layout}"
        );
        let alice = login(&server.base, "alice").await;
        let mut ws = alice.ws("doc1").await;
        let listed = ws.ok("getInvites", None, json!({})).await;
        assert!(
            listed.to_string().contains(&invite),
            "layout {layout}: {listed}"
        );
        accept(&server.base, "bob", "doc1", &invite).await;
        server.stop();

        let backups: Vec<_> = std::fs::read_dir(root.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with(&format!("data{layout}.layout-{layout}-backup-")))
            .collect();
        assert_eq!(backups.len(), 1, "{backups:?}");
        // The copy aside is the old store, untouched: it still has the invite
        // under its old key.
        let old = root.path().join(&backups[0]);
        let db = if layout == "1" {
            sled::open(&old).unwrap()
        } else {
            sled::Config::new()
                .path(&old)
                .segment_size(2 * 1024 * 1024)
                .open()
                .unwrap()
        };
        let old_key = if layout == "1" {
            invite.clone().into_bytes()
        } else {
            [b"doc1\0".as_slice(), invite.as_bytes()].concat()
        };
        assert!(db
            .open_tree("invites")
            .unwrap()
            .get(old_key)
            .unwrap()
            .is_some());
        drop(db);

        // The migrated store restarts as it is (no second migration).
        let server = Proc::start(&data, &[]).await;
        assert_eq!(password_login(&server.base, "bob").await, 200);
        server.stop();
        let backups = std::fs::read_dir(root.path())
            .unwrap()
            .filter(|e| {
                let name = e.as_ref().unwrap().file_name().into_string().unwrap();
                name.starts_with(&format!("data{layout}.layout-"))
            })
            .count();
        assert_eq!(backups, 1);
    }
}

//! A keystrate server with users and documents, made through its public
//! HTTP API, plus the invites the scenarios need.

use crate::load::{self, MakeFrame, Shape, Socket};
use crate::procs::{temp_dir, Proc};
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// The document invites are made for.
pub const DOC: &str = "bench";
/// The document load sockets connect to. Load users have no permission on
/// it, so they are invisible there and receive no presence events: every
/// frame they get is a reply (requests target `DOC` through `d`).
pub const QUIET: &str = "quiet";
const PASSWORD: &str = "correct horse battery";

pub struct World {
    pub server: Proc,
    _dir: tempfile::TempDir,
    /// Session of `owner`, admin of `DOC`.
    pub owner: String,
    /// Sessions of `u0`, `u1`, …
    pub users: Vec<String>,
}

/// Starts keystrate on an empty data directory and registers `owner`,
/// `host` (who owns `QUIET`) and `users` more users in parallel.
pub async fn world(users: usize) -> World {
    world_serving(users, "--serve").await
}

/// Like [`world`], with the server in `mode` (`--serve-metrics`: metrics on).
pub async fn world_serving(users: usize, mode: &str) -> World {
    let dir = temp_dir("serve");
    let mut server = Proc::spawn(&[mode, dir.path().to_str().expect("utf-8 path")]);
    server.ready(Instant::now(), true).await;
    let base = server.base.clone();
    let owner = register(&base, "owner").await;
    let host = register(&base, "host").await;
    create_doc(&base, &owner, DOC).await;
    create_doc(&base, &host, QUIET).await;
    let mut set = JoinSet::new();
    for i in 0..users {
        let base = base.clone();
        set.spawn(async move { (i, register(&base, &format!("u{i}")).await) });
    }
    let mut sessions = vec![String::new(); users];
    while let Some(done) = set.join_next().await {
        let (i, cookie) = done.expect("register task");
        sessions[i] = cookie;
    }
    World {
        server,
        _dir: dir,
        owner,
        users: sessions,
    }
}

/// Registers `name`; returns the session token. Registrations past the
/// password hashing pool get 503 `busy`: those come back a moment later.
pub async fn register(base: &str, name: &str) -> String {
    let r = loop {
        let r = reqwest::Client::new()
            .post(format!("{base}/auth/register"))
            .json(&json!({"username": name, "password": PASSWORD}))
            .send()
            .await
            .expect("register");
        if r.status() != 503 {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(r.status(), 201, "register {name}");
    r.headers()
        .get_all("set-cookie")
        .iter()
        .find_map(|v| {
            let v = v.to_str().ok()?;
            let rest = v.strip_prefix("keystrate_session=")?;
            Some(rest.split(';').next()?.to_string())
        })
        .expect("session cookie")
}

pub async fn create_doc(base: &str, cookie: &str, id: &str) {
    let r = reqwest::Client::new()
        .post(format!("{base}/api/documents"))
        .header("cookie", format!("keystrate_session={cookie}"))
        .json(&json!({"id": id}))
        .send()
        .await
        .expect("create document");
    assert_eq!(r.status(), 201, "create document {id}");
}

impl World {
    pub fn base(&self) -> &str {
        &self.server.base
    }

    /// `n` sockets on `QUIET`, the sessions taken round-robin from `who`.
    pub async fn sockets(&self, who: &[String], n: usize) -> Vec<Socket> {
        let mut set = JoinSet::new();
        for i in 0..n {
            let (base, cookie) = (self.base().to_string(), who[i % who.len()].clone());
            set.spawn(async move { (i, load::connect_doc(&base, QUIET, &cookie).await.0) });
        }
        let mut out: Vec<Option<Socket>> = (0..n).map(|_| None).collect();
        while let Some(done) = set.join_next().await {
            let (i, socket) = done.expect("connect task");
            out[i] = Some(socket);
        }
        out.into_iter().map(|s| s.expect("socket")).collect()
    }

    /// Creates `n` invites on `DOC` through the owner's `sockets`; returns
    /// their keys and the sockets.
    pub async fn create_invites(
        &self,
        sockets: Vec<Socket>,
        n: u64,
        max_age: u64,
    ) -> (Vec<String>, Vec<Socket>) {
        let made = Arc::new(AtomicU64::new(0));
        let make: MakeFrame = Arc::new(move |_, _, token| {
            (made.fetch_add(1, Ordering::Relaxed) < n).then(|| create_frame(token, max_age))
        });
        let (keys, on_reply) = load::collector();
        let shape = Shape {
            in_flight: 1,
            warmup: Duration::ZERO,
            duration: Duration::from_secs(3600),
        };
        let (_, sockets) = load::run(sockets, shape, make, Some(on_reply)).await;
        let keys = std::mem::take(&mut *keys.lock().expect("keys"));
        assert_eq!(keys.len() as u64, n, "every invite created");
        (keys, sockets)
    }
}

/// A `createInvite` request for `DOC`.
pub fn create_frame(token: &str, max_age: u64) -> String {
    json!({"wa": "createInvite", "token": token, "d": DOC,
           "options": {"permissions": "r", "maxAge": max_age}})
    .to_string()
}

/// A request on `DOC` carrying an invite key.
pub fn key_frame(wa: &str, token: &str, key: &str) -> String {
    json!({"wa": wa, "token": token, "d": DOC, "options": {"key": key}}).to_string()
}

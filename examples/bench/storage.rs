//! Storage: sled's own durable write rate (the baseline for createInvite
//! and acceptInvite), what the durable part of an invite costs (the
//! references of the `/invites_api` section), and a server started on a
//! store of a million invites.

use crate::load::{closed_loop, Outcome};
use crate::procs::{temp_dir, Proc};
use crate::setup::DOC;
use crate::table::{mb, ms, thousands, Row};
use crate::Opts;
use keystrate::engine::invites::InviteRecord;
use keystrate::engine::options::CreateOptions;
use keystrate::engine::User;
use keystrate::engine::{Caller, Engine, EngineConfig, Level, NoEvents};
use keystrate::store::{Flusher, Store};
use serde_json::json;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A record shaped like a stored invite, about 400 bytes of JSON.
fn record() -> (String, Vec<u8>) {
    let key = hex::encode(keystrate::engine::random_bytes::<32>());
    let value = json!({
        "key": key, "doc": DOC, "permissions": "r",
        "created_at": 1_795_000_000_000i64, "expires_at": 1_795_000_600_000i64,
        "created_by": {"username": "owner", "provider": "local"},
        "max_uses": null, "accepted_by": [],
        "pad": "x".repeat(150),
    });
    (key, serde_json::to_vec(&value).expect("json"))
}

/// `concurrency` tasks each inserting a record then waiting for it to be
/// flushed: with `group` through keystrate's group-commit flusher, without
/// it by calling the blocking `flush()` on the blocking pool themselves
/// (sled 0.34's `flush_async` hangs under concurrency).
pub async fn sled_baseline(
    concurrency: usize,
    warmup: Duration,
    duration: Duration,
    group: bool,
) -> Outcome {
    let dir = temp_dir("sled");
    let db = sled::open(dir.path()).expect("sled opens");
    let flusher = group.then(|| Flusher::start(db.clone()));
    closed_loop(concurrency, warmup, duration, move || {
        let (db, flusher) = (db.clone(), flusher.clone());
        async move {
            let (key, value) = record();
            db.insert(key, value).expect("insert");
            match &flusher {
                Some(f) => f.wait().await.expect("flush"),
                None => tokio::task::spawn_blocking(move || db.flush())
                    .await
                    .expect("join")
                    .map(drop)
                    .expect("flush"),
            }
            Ok(())
        }
    })
    .await
}

/// How [`write_baseline`] makes an invite-sized record durable.
#[derive(Clone, Copy)]
pub enum Write {
    /// One key, a plain insert.
    OneKey,
    /// An invite's two keys (record and expiry entry), two plain inserts:
    /// not atomic, so a crash between them could leave an invite that never
    /// expires.
    TwoKeys,
    /// The two keys in keystrate's combined transaction, as the engine
    /// writes an invite.
    Combined,
}

impl Write {
    pub const ALL: [Write; 3] = [Write::OneKey, Write::TwoKeys, Write::Combined];

    pub fn describe(self) -> &'static str {
        match self {
            Write::OneKey => "one key, plain insert",
            Write::TwoKeys => "an invite's two keys, two plain inserts",
            Write::Combined => "an invite's two keys in the combined transaction",
        }
    }
}

/// `concurrency` tasks each writing a record as `write` says, then waiting
/// for keystrate's group-commit flusher, with sled configured as the server
/// opens it: what the durable part of a created invite costs without the
/// engine around it. The plain inserts go to bare sled (the baseline); the
/// combined transaction goes through the store, as the engine writes.
pub async fn write_baseline(
    write: Write,
    concurrency: usize,
    warmup: Duration,
    duration: Duration,
) -> Outcome {
    let dir = temp_dir("writes");
    match write {
        Write::OneKey | Write::TwoKeys => {
            let db = keystrate::store::tuned_sled(dir.path(), crate::procs::cache_mb())
                .open()
                .expect("sled opens");
            // sled guards every read, write and flush with one process-wide
            // lock from the first transaction on, as in the server; take it
            // for every kind of write alike.
            db.transaction(|_| Ok::<_, sled::transaction::ConflictableTransactionError<()>>(()))
                .expect("empty transaction");
            let (invites, expiry) = (
                db.open_tree("invites").expect("tree"),
                db.open_tree("expiry").expect("tree"),
            );
            let flusher = Flusher::start(db);
            closed_loop(concurrency, warmup, duration, move || {
                let (invites, expiry, flusher) = (invites.clone(), expiry.clone(), flusher.clone());
                async move {
                    let (key, value) = record();
                    let key = key.into_bytes();
                    // Ordered by deadline like the expiry index: new entries
                    // land on the same few leaves.
                    let deadline = keystrate::engine::now_ms() + 3_600_000;
                    let at = [&deadline.to_be_bytes()[..], &key].concat();
                    let failed = |e: sled::Error| e.to_string();
                    invites.insert(key, value).map_err(failed)?;
                    if let Write::TwoKeys = write {
                        expiry.insert(at, &[]).map_err(failed)?;
                    }
                    flusher.wait().await.map_err(|e| e.to_string())
                }
            })
            .await
        }
        Write::Combined => {
            let store =
                Store::open_with_cache(dir.path(), crate::procs::cache_mb()).expect("store opens");
            closed_loop(concurrency, warmup, duration, move || {
                let store = store.clone();
                async move {
                    let now = keystrate::engine::now_ms();
                    // About the size of [`record`]'s JSON.
                    let invite = InviteRecord {
                        key: hex::encode(keystrate::engine::random_bytes::<32>()),
                        doc: DOC.to_string(),
                        permissions: "r".into(),
                        created_at: now,
                        expires_at: now + 3_600_000,
                        created_by: User::local(&format!("owner{}", "x".repeat(190))),
                        max_uses: None,
                        accepted_by: Vec::new(),
                    };
                    let shared = store.share_document(DOC).await;
                    shared.add_invite(invite).await.map_err(|e| e.to_string())?;
                    drop(shared);
                    store.durable().await.map_err(|e| e.to_string())
                }
            })
            .await
        }
    }
}

/// When the two expiring slices fall due, in seconds after they are made:
/// after the first start's watch, both inside the restart's (see
/// [`invites`]).
const EXPIRING_AFTER_S: [i64; 2] = [24, 36];
/// Between the two bursts, in seconds after populating ended.
const BETWEEN_BURSTS_S: u64 = 32;

/// `--populate <dir> <count> <expiring>` (child process): fills a data
/// directory through the engine, as `createInvite` would, `count` invites
/// valid for a week, then `expiring` that expire 24–28 s later and another
/// `expiring` that expire 36–40 s later.
pub async fn populate(dir: &Path, count: u64, expiring: u64) {
    let (engine, caller) = owner_engine(dir).await;
    let t = Instant::now();
    create_many(&engine, &caller, count, |_| 7 * 24 * 3600).await;
    let bulk = t.elapsed();
    for after in EXPIRING_AFTER_S {
        create_many(&engine, &caller, expiring, move |i| after + (i % 5) as i64).await;
    }
    engine.store().flush_now().expect("flush");
    println!(
        "populated {} invites in {:.1} s ({:.0}/s), then twice {} expiring",
        count,
        bulk.as_secs_f64(),
        count as f64 / bulk.as_secs_f64(),
        expiring
    );
}

/// An engine on `dir` (no server around it) with the owner of `DOC`.
async fn owner_engine(dir: &Path) -> (Engine, Caller) {
    let store = Store::open_with_cache(dir, crate::procs::cache_mb()).expect("store opens");
    // Millions of invites on one document: the per-document cap is a policy
    // (tested in tests/it/invites.rs); the bench measures capacity.
    let config = EngineConfig {
        max_invites_per_document: usize::MAX,
        ..EngineConfig::default()
    };
    let engine = Engine::new(store, config, std::sync::Arc::new(NoEvents));
    let user = engine
        .create_user(&Caller::Operator, "owner", "correct horse battery")
        .await
        .expect("owner");
    let caller = Caller::User(user);
    engine
        .create_document(&caller, Some(DOC))
        .await
        .expect("document");
    (engine, caller)
}

/// `Engine::create_invite` called in this process by `concurrency` tasks,
/// with no transport around it: the rate the invite routes could reach if
/// HTTP, WebSockets and the client cost nothing.
pub async fn engine_baseline(concurrency: usize, warmup: Duration, duration: Duration) -> Outcome {
    let dir = temp_dir("engine");
    let (engine, caller) = owner_engine(dir.path()).await;
    let options = CreateOptions {
        permissions: Level::Read,
        max_age: 3600,
        max_uses: None,
    };
    closed_loop(concurrency, warmup, duration, move || {
        let (engine, caller, options) = (engine.clone(), caller.clone(), options.clone());
        async move {
            engine
                .create_invite(&caller, DOC, &options)
                .await
                .expect("create invite");
            Ok(())
        }
    })
    .await
}

/// Creates `n` invites with 512 concurrent creators (they share flushes).
async fn create_many(
    engine: &Engine,
    caller: &Caller,
    n: u64,
    max_age: impl Fn(u64) -> i64 + Send + Sync + 'static,
) {
    let next = Arc::new(AtomicU64::new(0));
    let max_age = Arc::new(max_age);
    let workers: Vec<_> = (0..512)
        .map(|_| {
            let (engine, caller) = (engine.clone(), caller.clone());
            let (next, max_age) = (next.clone(), max_age.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    let options = CreateOptions {
                        permissions: Level::Read,
                        max_age: max_age(i),
                        max_uses: None,
                    };
                    engine
                        .create_invite(&caller, DOC, &options)
                        .await
                        .expect("create invite");
                }
            })
        })
        .collect();
    for w in workers {
        w.await.expect("creator");
    }
}

/// What a server start on one data directory looked like.
struct Start {
    ready: Duration,
    rss_kb: u64,
    /// RSS samples (KiB) taken every 250 ms after `rss_kb`.
    samples: Vec<(Instant, u64)>,
}

impl Start {
    /// The highest sample in `range`.
    fn peak(&self, range: impl std::ops::RangeBounds<Instant>) -> u64 {
        let in_range = self.samples.iter().filter(|(at, _)| range.contains(at));
        in_range.map(|&(_, kb)| kb).max().unwrap_or(0)
    }

    /// The last sample before `at`.
    fn before(&self, at: Instant) -> u64 {
        let earlier = self.samples.iter().take_while(|(t, _)| *t < at);
        earlier.last().map_or(self.rss_kb, |&(_, kb)| kb)
    }
}

/// Starts keystrate on `dir`, times `/health`, reads RSS a second later,
/// then samples RSS for `watch`.
async fn start_on(dir: &Path, watch: Duration) -> Start {
    let t = Instant::now();
    let mut server = Proc::spawn(&["--serve", dir.to_str().expect("utf-8 path")]);
    let ready = server.ready(t, true).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_kb = server.rss_kb();
    let mut samples = Vec::new();
    let until = Instant::now() + watch;
    while Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(250)).await;
        samples.push((Instant::now(), server.rss_kb()));
    }
    server.stop();
    Start {
        ready,
        rss_kb,
        samples,
    }
}

/// Start time and memory with `o.invites` stored invites against an empty
/// store, and memory while a slice of them expires.
///
/// The first start replays sled's whole log, and afterwards sled's segment
/// cleaner (`PageCache::rewrite_page` on its flusher thread) rewrites the
/// fragmented log for minutes, growing RSS with no request made; a restart
/// is quiet. So the first start is watched alone, and the stored size and
/// the expiry burst are read on the restart, where nothing else moves RSS.
pub async fn invites(o: &Opts, rows: &mut Vec<Row>) {
    let empty_dir = temp_dir("empty");
    let empty = start_on(empty_dir.path(), Duration::ZERO).await;

    let full_dir = temp_dir("full");
    let expiring = (o.invites / 50).max(1000);
    let out = std::process::Command::new(std::env::current_exe().expect("own path"))
        .args(["--populate", full_dir.path().to_str().expect("utf-8 path")])
        .args([o.invites.to_string(), expiring.to_string()])
        .output()
        .expect("populate");
    assert!(out.status.success(), "populate failed: {out:?}");
    let populated = Instant::now();
    let note = String::from_utf8_lossy(&out.stdout).trim().to_string();
    println!("{note}");
    let first = start_on(full_dir.path(), Duration::from_secs(14)).await;
    // The expiring slices fall due 24–28 s and 36–40 s after they were
    // made: a few seconds into this watch, and again 12 s later.
    let again = start_on(full_dir.path(), Duration::from_secs(28)).await;
    let between = populated + Duration::from_secs(BETWEEN_BURSTS_S);

    let n = thousands(o.invites);
    for (when, start) in [
        ("first start after writing", &first),
        ("restart with", &again),
    ] {
        rows.push(Row {
            scenario: format!("server {when} {n} stored invites"),
            measured: format!("{} to /health", ms(start.ready)),
            baseline: format!("empty store {}", ms(empty.ready)),
            ratio: format!(
                "{:.1}×",
                start.ready.as_secs_f64() / empty.ready.as_secs_f64()
            ),
            target: "≤ 1 s".into(),
            pass: Some(start.ready <= Duration::from_secs(1)),
        });
    }
    let budget = 64 * 1024;
    let over_empty = |kb: u64| kb as i64 - empty.rss_kb as i64;
    let growth = over_empty(again.rss_kb);
    rows.push(Row {
        scenario: format!("server RSS with {n} stored invites (restart, 1 s after ready)"),
        measured: format!("{} (+{})", mb(again.rss_kb as i64), mb(growth)),
        baseline: format!("empty store {}", mb(empty.rss_kb as i64)),
        ratio: format!("{:.2}×", again.rss_kb as f64 / empty.rss_kb as f64),
        target: "growth ≤ 64 MB".into(),
        pass: Some(growth <= budget),
    });
    let peaks = [
        (
            "server RSS in the 14 s after the first start (no requests: sled's segment cleaner)"
                .to_string(),
            first.peak(..),
            &first,
        ),
        (
            format!(
                "server RSS while {} invites expire (restart, 250 ms samples)",
                thousands(expiring)
            ),
            again.peak(..between),
            &again,
        ),
    ];
    for (scenario, high, start) in peaks {
        rows.push(Row {
            scenario,
            measured: format!(
                "{} → peak {} (+{} over empty)",
                mb(start.rss_kb as i64),
                mb(high as i64),
                mb(over_empty(high))
            ),
            baseline: format!("empty store {}", mb(empty.rss_kb as i64)),
            ratio: format!("{:.2}×", high as f64 / empty.rss_kb as f64),
            target: "stays within the 64 MB budget".into(),
            pass: Some(over_empty(high) <= budget),
        });
    }
    // Whether expiring costs memory per invite or only once: the first
    // burst also fills the page cache and the allocator's arenas.
    let (settled, high) = (again.before(between), again.peak(between..));
    let added = high as i64 - settled as i64;
    rows.push(Row::info(
        format!(
            "server RSS while another {} expire 12 s later (the same restart)",
            thousands(expiring)
        ),
        format!(
            "{} → peak {} ({}{})",
            mb(settled as i64),
            mb(high as i64),
            if added >= 0 { "+" } else { "" },
            mb(added)
        ),
    ));
    rows.push(Row::info("populating the store (library, 512 tasks)", note));
}

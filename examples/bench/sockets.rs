//! Many sockets: memory per idle socket, and event fan-out latency to the
//! readers of one document.

use crate::load::{self, Socket};
use crate::procs::{temp_dir, Proc};
use crate::setup::{self, World, DOC, QUIET};
use crate::table::{mb, ms, pct, Row};
use crate::Opts;
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;

/// Opens `n` sockets with up to 100 handshakes at a time.
async fn open_many(n: usize, open: impl Fn(usize) -> JoinSetTask) -> Vec<Socket> {
    let mut set = JoinSet::new();
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        if set.len() >= 100 {
            out.push(set.join_next().await.expect("task").expect("connect"));
        }
        set.spawn(open(i));
    }
    while let Some(done) = set.join_next().await {
        out.push(done.expect("connect"));
    }
    out
}

type JoinSetTask = std::pin::Pin<Box<dyn std::future::Future<Output = Socket> + Send>>;

/// RSS growth of a process while `n` sockets are open, per socket (KiB).
async fn per_socket_kb(server: &Proc, n: usize, open: impl Fn(usize) -> JoinSetTask) -> f64 {
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = server.rss_kb();
    let sockets = open_many(n, open).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = server.rss_kb();
    drop(sockets);
    (after as f64 - before as f64) / n as f64
}

/// `o.idle` idle sockets on a fresh keystrate, against the same number on
/// a fresh echo server. The sockets are logged in and connected to a
/// document they cannot read, so they cause no presence traffic.
pub async fn idle(o: &Opts, rows: &mut Vec<Row>) {
    let n = o.idle;
    let echo_kb = echo_per_socket_kb("--echo", n).await;
    let small_kb = echo_per_socket_kb("--echo-small", n).await;

    let dir = temp_dir("idle");
    let mut server = Proc::spawn(&["--serve", dir.path().to_str().expect("utf-8 path")]);
    server.ready(Instant::now(), true).await;
    let base = server.base.clone();
    let host = setup::register(&base, "host").await;
    setup::create_doc(&base, &host, QUIET).await;
    let idler = setup::register(&base, "idler").await;
    let ks_kb = per_socket_kb(&server, n, |_| {
        let (base, cookie) = (base.clone(), idler.clone());
        Box::pin(async move { load::connect_doc(&base, QUIET, &cookie).await.0 })
    })
    .await;
    rows.push(Row {
        scenario: format!("{n} idle sockets: server RSS per socket"),
        measured: format!("{ks_kb:.1} KB (+{})", mb((ks_kb * n as f64) as i64)),
        baseline: format!("echo {echo_kb:.1} KB"),
        ratio: format!("{:.1}×", ks_kb / echo_kb),
        target: "≤ 32 KB".into(),
        pass: Some(ks_kb <= 32.0),
    });
    rows.push(Row::info(
        format!("{n} idle sockets: echo with a 4 KiB read buffer (reference)"),
        format!("{small_kb:.1} KB per socket"),
    ));
}

/// Per-socket RSS of a fresh echo server in `mode`.
async fn echo_per_socket_kb(mode: &str, n: usize) -> f64 {
    let mut echo = Proc::spawn(&[mode]);
    echo.ready(Instant::now(), false).await;
    let base = echo.base.clone();
    per_socket_kb(&echo, n, |_| {
        let base = base.clone();
        Box::pin(async move { load::connect(&base, "/", None).await })
    })
    .await
}

/// One event seen by one reader: kind, tag (client id or permissions) and
/// when it arrived.
type Seen = (String, String, Instant);

/// Reads a socket until it closes, reporting every event.
async fn reader(mut socket: Socket, seen: mpsc::UnboundedSender<Seen>) {
    while let Some(Ok(msg)) = socket.next().await {
        let Message::Text(text) = msg else { continue };
        let now = Instant::now();
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else {
            continue;
        };
        let kind = v["wa"].as_str().unwrap_or("").to_string();
        let tag = match kind.as_str() {
            "permissionsChanged" => v["permissions"].as_str(),
            _ => v["clientId"].as_str(),
        };
        let _ = seen.send((kind, tag.unwrap_or("").to_string(), now));
    }
    let _ = seen.send(("closed".into(), String::new(), Instant::now()));
}

/// Connects `n` readers of `DOC` as `u0`, each reading from the moment it
/// is connected: every join tells all earlier readers, and a reader that
/// let 256 events queue up would be disconnected as too slow.
async fn start_readers(world: &World, n: usize, seen: mpsc::UnboundedSender<Seen>) {
    // Few handshakes at a time: each join queues a frame for every reader,
    // and a burst of joins can overflow a reader's 256-frame server queue.
    let handshakes = Arc::new(Semaphore::new(8));
    let (connected, mut count) = mpsc::unbounded_channel();
    for _ in 0..n {
        let permit = handshakes.clone().acquire_owned().await.expect("semaphore");
        let (base, cookie) = (world.base().to_string(), world.users[0].clone());
        let (seen, connected) = (seen.clone(), connected.clone());
        tokio::spawn(async move {
            let socket = load::connect_doc(&base, DOC, &cookie).await.0;
            drop(permit);
            let _ = connected.send(());
            reader(socket, seen).await;
        });
    }
    for _ in 0..n {
        count.recv().await.expect("reader connected");
    }
}

/// Waits until every live reader saw `(kind, tag)`; returns their delays
/// from `t0` and how many never arrived within 2 s. Readers the server
/// disconnected are subtracted from `alive`.
async fn deliveries(
    seen: &mut mpsc::UnboundedReceiver<Seen>,
    alive: &mut usize,
    (kind, tag): (&str, &str),
    t0: Instant,
) -> (Vec<u32>, usize) {
    let mut delays = Vec::with_capacity(*alive);
    let deadline = t0 + Duration::from_secs(2);
    while delays.len() < *alive {
        match tokio::time::timeout_at(deadline.into(), seen.recv()).await {
            Ok(Some((k, t, at))) if k == kind && t == tag => {
                delays.push(at.duration_since(t0).as_micros() as u32)
            }
            Ok(Some((k, _, _))) if k == "closed" => *alive -= 1,
            Ok(Some(_)) => {}
            _ => break,
        }
    }
    let missing = alive.saturating_sub(delays.len());
    (delays, missing)
}

/// `o.readers` sockets of user `u0` on `DOC`; the owner alternately changes
/// u0's permission (`permissionsChanged` to all of them) and opens and
/// closes a socket on `DOC` (`clientJoin` / `clientPart` to all of them).
pub async fn fanout(world: &World, o: &Opts, rows: &mut Vec<Row>) {
    let n = o.readers;
    let mut admin = world
        .sockets(std::slice::from_ref(&world.owner), 1)
        .await
        .remove(0);
    let set = |perm: &str, token: &str| {
        json!({"wa": "setPermissions", "token": token, "d": DOC,
               "options": {"username": "u0", "permissions": perm}})
    };
    let r = load::call(&mut admin, set("r", "grant")).await;
    assert!(r.get("error").is_none(), "grant r: {r}");

    let (tx, mut seen) = mpsc::unbounded_channel();
    start_readers(world, n, tx).await;
    // Let the join storm of the setup drain, then forget it.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut alive = n;
    while let Ok((kind, _, _)) = seen.try_recv() {
        if kind == "closed" {
            alive -= 1;
        }
    }

    let mut delays = Vec::new();
    let mut missing = 0;
    for round in 0..o.fanout_rounds {
        let perm = if round % 2 == 0 { "rw" } else { "r" };
        let t0 = Instant::now();
        let r = load::call(&mut admin, set(perm, &format!("p{round}"))).await;
        assert!(r.get("error").is_none(), "setPermissions: {r}");
        let (d, m) = deliveries(&mut seen, &mut alive, ("permissionsChanged", perm), t0).await;
        delays.extend(d);
        missing += m;

        let t0 = Instant::now();
        let (mut trigger, hello) = load::connect_doc(world.base(), DOC, &world.owner).await;
        let id = hello["clientId"].as_str().expect("clientId").to_string();
        let (d, m) = deliveries(&mut seen, &mut alive, ("clientJoin", &id), t0).await;
        delays.extend(d);
        missing += m;
        let t0 = Instant::now();
        let _ = trigger.send(Message::Close(None)).await;
        let (d, m) = deliveries(&mut seen, &mut alive, ("clientPart", &id), t0).await;
        delays.extend(d);
        missing += m;
    }
    let p50 = load::percentile(&mut delays, 0.5);
    let p99 = load::percentile(&mut delays, 0.99);
    let max = load::percentile(&mut delays, 1.0);
    let total = delays.len() + missing;
    rows.push(Row {
        scenario: format!(
            "event fan-out to {n} sockets on one document ({} events)",
            o.fanout_rounds * 3
        ),
        measured: format!("p50 {} p99 {} max {}", ms(p50), ms(p99), ms(max)),
        baseline: "—".into(),
        ratio: format!(
            "{} delivered; {} of {n} readers disconnected by the server",
            pct(delays.len() as f64 / total as f64),
            n - alive
        ),
        target: "p99 ≤ 50 ms".into(),
        pass: Some(p99 <= Duration::from_millis(50) && missing == 0 && alive == n),
    });
    // Readers end when the server closes their sockets with the world.
}

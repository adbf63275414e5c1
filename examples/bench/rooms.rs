//! Big rooms (issue 19): thousands of readers on one document. A join
//! storm (time until every reader has its hello and knows everyone), a
//! room held at full size (server RSS per socket) and the memory left 30 s
//! after everyone left, each beside the echo server doing the transport's
//! share of the same work.

use crate::load::{self, Socket};
use crate::procs::{temp_dir, Proc};
use crate::setup;
use crate::table::{mb, Row};
use crate::Opts;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, mpsc, Semaphore};
use tokio_tungstenite::tungstenite::Message;

/// The document the readers join.
const ROOM: &str = "room";
/// Handshakes in flight at once, for keystrate and the echo server alike.
const HANDSHAKES: usize = 16;
/// How long the full room is held before its memory is read.
const HELD: Duration = Duration::from_secs(10);
/// How long memory may take to come back after the room empties.
const SETTLE: Duration = Duration::from_secs(30);

/// How the readers ask to hear presence.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    PerClient,
    Batched,
}

impl Mode {
    fn path(self) -> String {
        match self {
            Mode::PerClient => format!("/{ROOM}/ws"),
            Mode::Batched => format!("/{ROOM}/ws?presence=batched"),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Mode::PerClient => "per-client presence",
            Mode::Batched => "batched presence",
        }
    }
}

/// The fields of a presence frame a reader counts, borrowed from the text.
#[derive(Deserialize)]
struct Frame<'a> {
    #[serde(borrow)]
    wa: &'a str,
    #[serde(rename = "clientId", borrow)]
    client_id: Option<&'a str>,
    #[serde(borrow)]
    clients: Option<Vec<&'a str>>,
    #[serde(borrow)]
    joined: Option<HashMap<&'a str, serde::de::IgnoredAny>>,
    #[serde(borrow)]
    parted: Option<Vec<&'a str>>,
}

/// What readers report to the bench.
enum Report {
    Greeted,
    /// Knows all `n - 1` others.
    Complete,
    /// Closed by the server.
    Dropped,
}

/// A keystrate server with a document anyone logged in as `reader` may read.
struct Room {
    server: Proc,
    _dir: tempfile::TempDir,
    cookie: String,
}

impl Room {
    async fn start() -> Room {
        let dir = temp_dir("rooms");
        let mut server = Proc::spawn(&["--serve", dir.path().to_str().expect("utf-8 path")]);
        server.ready(Instant::now(), true).await;
        let owner = setup::register(&server.base, "owner").await;
        setup::create_doc(&server.base, &owner, ROOM).await;
        let cookie = setup::register(&server.base, "reader").await;
        let mut admin = load::connect_doc(&server.base, ROOM, &owner).await.0;
        let grant = json!({"wa": "setPermissions", "token": "g", "d": ROOM,
                           "options": {"username": "reader", "permissions": "r"}});
        let r = load::call(&mut admin, grant).await;
        assert!(r.get("error").is_none(), "grant r: {r}");
        Room {
            server,
            _dir: dir,
            cookie,
        }
    }

    /// Opens `n` readers (`HANDSHAKES` at a time) that read everything;
    /// returns when all are greeted, with the time that took. Reports go
    /// to `reports`; the readers leave when `leave` fires.
    async fn fill(
        &self,
        n: usize,
        mode: Mode,
        reports: mpsc::UnboundedSender<Report>,
        leave: &broadcast::Sender<()>,
    ) {
        let handshakes = Arc::new(Semaphore::new(HANDSHAKES));
        for _ in 0..n {
            let permit = handshakes.clone().acquire_owned().await.expect("semaphore");
            let (base, cookie) = (self.server.base.clone(), self.cookie.clone());
            let (reports, leave) = (reports.clone(), leave.subscribe());
            tokio::spawn(async move {
                let socket = load::connect(&base, &mode.path(), Some(&cookie)).await;
                drop(permit);
                read_room(socket, n, reports, leave).await;
            });
        }
    }
}

/// Reads a room socket, counting the others it knows of, until the server
/// closes it or `leave` fires.
async fn read_room(
    mut socket: Socket,
    n: usize,
    reports: mpsc::UnboundedSender<Report>,
    mut leave: broadcast::Receiver<()>,
) {
    let mut me = String::new();
    let mut known: i64 = 0;
    let mut complete = false;
    loop {
        let msg = tokio::select! {
            msg = socket.next() => msg,
            _ = leave.recv() => {
                let _ = socket.send(Message::Close(None)).await;
                return;
            }
        };
        let text = match msg {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(_))) | Some(Err(_)) | None => {
                let _ = reports.send(Report::Dropped);
                return;
            }
            Some(Ok(_)) => continue,
        };
        let Ok(frame) = serde_json::from_str::<Frame>(&text) else {
            continue;
        };
        match frame.wa {
            "hello" => {
                me = frame.client_id.unwrap_or_default().to_string();
                known = others(frame.clients.unwrap_or_default().into_iter(), &me);
                let _ = reports.send(Report::Greeted);
            }
            "clientJoin" => known += 1,
            "clientPart" => known -= 1,
            "clients" => {
                let joined = frame.joined.unwrap_or_default();
                known += others(joined.into_keys(), &me);
                known -= frame.parted.unwrap_or_default().len() as i64;
            }
            _ => {}
        }
        if !complete && known == n as i64 - 1 {
            complete = true;
            let _ = reports.send(Report::Complete);
        }
    }
}

/// How many of `ids` are not `me` (a batched socket hears its own join).
fn others<'a>(ids: impl Iterator<Item = &'a str>, me: &str) -> i64 {
    ids.filter(|id| *id != me).count() as i64
}

/// What a fill observed.
struct Filled {
    greeted: Duration,
    complete: Option<Duration>,
    completed: usize,
    dropped: usize,
}

/// Waits for `n` readers' reports (at most `limit` after `t0`).
async fn watch(
    reports: &mut mpsc::UnboundedReceiver<Report>,
    n: usize,
    t0: Instant,
    limit: Duration,
) -> Filled {
    let mut out = Filled {
        greeted: Duration::ZERO,
        complete: None,
        completed: 0,
        dropped: 0,
    };
    let mut greeted = 0;
    while out.completed + out.dropped < n {
        match tokio::time::timeout_at((t0 + limit).into(), reports.recv()).await {
            Ok(Some(Report::Greeted)) => {
                greeted += 1;
                if greeted == n {
                    out.greeted = t0.elapsed();
                }
            }
            Ok(Some(Report::Complete)) => out.completed += 1,
            Ok(Some(Report::Dropped)) => out.dropped += 1,
            _ => break,
        }
    }
    if out.completed == n {
        out.complete = Some(t0.elapsed());
    }
    out
}

/// `n` sockets to the echo server, `HANDSHAKES` at a time, each sending one
/// frame and reading it back (the transport's share of a join): the time
/// until all are answered, and the sockets.
async fn echo_joins(echo: &Proc, n: usize) -> (Duration, Vec<Socket>) {
    let handshakes = Arc::new(Semaphore::new(HANDSHAKES));
    let t0 = Instant::now();
    let mut tasks = Vec::with_capacity(n);
    for _ in 0..n {
        let permit = handshakes.clone().acquire_owned().await.expect("semaphore");
        let base = echo.base.clone();
        tasks.push(tokio::spawn(async move {
            let mut socket = load::connect(&base, "/", None).await;
            drop(permit);
            socket.send(Message::text("hello")).await.expect("send");
            load::next_text(&mut socket).await.expect("echo");
            socket
        }));
    }
    let mut sockets = Vec::with_capacity(n);
    for t in tasks {
        sockets.push(t.await.expect("echo task"));
    }
    (t0.elapsed(), sockets)
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

pub async fn rooms(o: &Opts, rows: &mut Vec<Row>) {
    join_storm(o.room_joins, rows).await;
    held(o.room_held, rows).await;
}

/// `n` readers join one document, per-client and batched, each on a fresh
/// server, beside `n` echo round trips.
async fn join_storm(n: usize, rows: &mut Vec<Row>) {
    let mut echo = Proc::spawn(&["--echo"]);
    echo.ready(Instant::now(), false).await;
    let (echo_time, sockets) = echo_joins(&echo, n).await;
    drop(sockets);
    for mode in [Mode::PerClient, Mode::Batched] {
        let room = Room::start().await;
        let (tx, mut reports) = mpsc::unbounded_channel();
        let (leave, _) = broadcast::channel(1);
        let t0 = Instant::now();
        room.fill(n, mode, tx, &leave).await;
        let filled = watch(&mut reports, n, t0, Duration::from_secs(120)).await;
        let _ = leave.send(());
        let measured = match filled.complete {
            Some(t) => format!("complete {}; all greeted {}", secs(t), secs(filled.greeted)),
            None => format!(
                "{} of {n} complete in 120 s; {} dropped",
                filled.completed, filled.dropped
            ),
        };
        rows.push(Row {
            scenario: format!("{n} readers join one document ({})", mode.name()),
            measured,
            baseline: format!("echo {}", secs(echo_time)),
            ratio: filled.complete.map_or("—".into(), |t| {
                format!("{:.1}×", t.as_secs_f64() / echo_time.as_secs_f64())
            }),
            target: "≤ 2 s".into(),
            pass: Some(filled.complete.is_some_and(|t| t <= Duration::from_secs(2))),
        });
    }
}

/// `n` batched readers held in one document: server RSS per socket beside
/// the echo server holding as many, then the RSS left `SETTLE` after they
/// all leave beside the echo server's.
async fn held(n: usize, rows: &mut Vec<Row>) {
    let mut echo = Proc::spawn(&["--echo"]);
    echo.ready(Instant::now(), false).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let echo_before = echo.rss_kb();
    let (_, sockets) = echo_joins(&echo, n).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let echo_kb = (echo.rss_kb() as f64 - echo_before as f64) / n as f64;
    drop(sockets);
    // The echo server settles while keystrate runs; read it at the end.
    let echo_left = Instant::now();

    let room = Room::start().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = room.server.rss_kb();
    let (tx, mut reports) = mpsc::unbounded_channel();
    let (leave, _) = broadcast::channel(1);
    let t0 = Instant::now();
    room.fill(n, Mode::Batched, tx, &leave).await;
    let filled = watch(&mut reports, n, t0, Duration::from_secs(300)).await;
    // What the room holds, not what the join storm churned: jemalloc
    // returns freed pages after its 5 s decay.
    tokio::time::sleep(HELD).await;
    let with = room.server.rss_kb();
    let per_socket = (with as f64 - before as f64) / n as f64;
    let _ = leave.send(());
    let left = Instant::now();
    tokio::time::sleep(SETTLE.saturating_sub(left.elapsed())).await;
    let after = room.server.rss_kb();
    tokio::time::sleep(SETTLE.saturating_sub(echo_left.elapsed())).await;
    let echo_after = echo.rss_kb();

    let held = match filled.complete {
        Some(t) => format!("all {n} complete after {}", secs(t)),
        None => format!(
            "{} of {n} complete; {} dropped",
            filled.completed, filled.dropped
        ),
    };
    rows.push(Row {
        scenario: format!("{n} readers held in one document (batched): server RSS per socket"),
        measured: format!(
            "{per_socket:.1} KB (+{}); {held}",
            mb((per_socket * n as f64) as i64)
        ),
        baseline: format!("echo {echo_kb:.1} KB"),
        ratio: format!("{:.1}×", per_socket / echo_kb),
        target: "≤ 16 KB".into(),
        pass: Some(per_socket <= 16.0 && filled.complete.is_some()),
    });
    let kept = after as i64 - before as i64;
    rows.push(Row {
        scenario: format!("{n} readers left: server RSS {} s later", SETTLE.as_secs()),
        measured: format!("+{} over the level before they joined", mb(kept)),
        baseline: format!("echo +{}", mb(echo_after as i64 - echo_before as i64)),
        ratio: "—".into(),
        target: "≤ +64 MB".into(),
        pass: Some(kept <= 64 * 1024),
    });
}

//! Big rooms (issue 19): batched presence for sockets that ask for it
//! (`/<doc>/ws?presence=batched`), the per-client format unchanged for the
//! others, the list a late joiner gets, keystrate.js's per-client events on
//! top of batched frames, and slow readers still dropped.

use crate::common::*;
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// The batching window of `keystrate::ws::presence`.
const WINDOW: Duration = keystrate::ws::presence::WINDOW;
const PAGE: usize = keystrate::ws::presence::PAGE;

/// Opens `/<doc>/ws?presence=<mode>`; the HTTP status when refused.
async fn connect_with_presence(
    server: &TestServer,
    cookie: Option<&str>,
    doc: &str,
    mode: &str,
) -> Result<(Socket, Value), u16> {
    let url = format!(
        "{}/{doc}/ws?presence={mode}",
        server.base.replacen("http", "ws", 1)
    );
    let mut request = url.into_client_request().unwrap();
    if let Some(c) = cookie {
        request
            .headers_mut()
            .insert("cookie", format!("keystrate_session={c}").parse().unwrap());
    }
    let (mut socket, _) = match tokio_tungstenite::connect_async(request).await {
        Ok(ok) => ok,
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => return Err(r.status().as_u16()),
        Err(e) => panic!("ws connect failed: {e}"),
    };
    let hello = next_json(&mut socket).await.expect("hello frame");
    assert_eq!(hello["wa"], "hello");
    Ok((socket, hello))
}

async fn batched(server: &TestServer, user: &User, doc: &str) -> (Socket, Value) {
    connect_with_presence(server, Some(&user.cookie), doc, "batched")
        .await
        .expect("batched socket connects")
}

fn alice_json() -> Value {
    json!({"username": "alice", "provider": "local"})
}

fn id_of(ws: &Ws) -> String {
    ws.hello["clientId"].as_str().unwrap().to_string()
}

/// What a batched socket learned from its `clients` frames.
#[derive(Default)]
struct View {
    present: BTreeMap<String, Value>,
    parted: BTreeSet<String>,
    frames: Vec<Value>,
    /// Frames of other kinds, in order.
    others: Vec<Value>,
}

impl View {
    /// Reads frames until `done` holds for the view (10 s at most).
    async fn read_until(&mut self, socket: &mut Socket, done: impl Fn(&View) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !done(self) {
            assert!(Instant::now() < deadline, "view never completed");
            let frame = next_json(socket).await.expect("frame before close");
            if frame["wa"] != "clients" {
                self.others.push(frame);
                continue;
            }
            for id in frame["parted"].as_array().unwrap() {
                let id = id.as_str().unwrap().to_string();
                self.present.remove(&id);
                self.parted.insert(id);
            }
            for (id, user) in frame["joined"].as_object().unwrap() {
                self.present.insert(id.clone(), user.clone());
            }
            self.frames.push(frame);
        }
    }

    fn ids(&self) -> BTreeSet<String> {
        self.present.keys().cloned().collect()
    }
}

#[tokio::test]
async fn batched_presence_gathers_a_window_of_joins_and_parts_in_one_frame() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    alice.create_doc("doc").await;
    let (mut reader, hello) = batched(&server, &alice, "doc").await;
    let me = hello["clientId"].as_str().unwrap().to_string();
    // hello names only the socket itself, and says the format it speaks.
    assert_eq!(hello["presence"], "batched");
    assert_eq!(hello["clients"], json!([me]));
    assert_eq!(hello["users"], json!({&me: alice_json()}));

    let started = Instant::now();
    let joiners = futures_util::future::join_all((0..8).map(|_| alice.ws("doc"))).await;
    let joined: BTreeSet<String> = joiners.iter().map(id_of).collect();
    let mut view = View::default();
    view.read_until(&mut reader, |v| joined.is_subset(&v.ids()))
        .await;
    let elapsed = started.elapsed();
    for frame in &view.frames {
        let keys: BTreeSet<&str> = frame
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        assert_eq!(
            keys,
            BTreeSet::from(["wa", "d", "joined", "parted"]),
            "{frame}"
        );
        assert_eq!(frame["d"], "doc");
    }
    assert!(
        view.others.is_empty(),
        "only clients frames: {:?}",
        view.others
    );
    assert!(
        view.present.values().all(|u| *u == alice_json()),
        "every join names its user"
    );
    // One frame per window at most, however many joins it saw (counting
    // the window of the reader's own join, which may have begun earlier).
    let windows = (elapsed.as_millis() / WINDOW.as_millis()) as usize + 2;
    assert!(
        view.frames.len() <= windows,
        "{} frames for 8 joins in {elapsed:?}",
        view.frames.len()
    );

    // Parts come the same way, naming only the id.
    let mut joiners = joiners.into_iter();
    let (gone, stays) = (joiners.next().unwrap(), joiners.next().unwrap());
    let gone_id = id_of(&gone);
    drop(gone);
    view.read_until(&mut reader, |v| v.parted.contains(&gone_id))
        .await;
    let last = view.frames.last().unwrap();
    assert_eq!(last["parted"], json!([gone_id]));
    assert_eq!(last["joined"], json!({}));
    assert!(view.present.contains_key(&id_of(&stays)));
}

#[tokio::test]
async fn sockets_that_do_not_ask_keep_the_per_client_format() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    alice.create_doc("doc").await;
    let (_batched, batched_hello) = batched(&server, &alice, "doc").await;
    let mut plain = alice.ws("doc").await;
    // The full list in hello, the batched socket included, no presence key.
    let mut listed: Vec<Value> = plain.hello["clients"].as_array().unwrap().clone();
    listed.sort_by_key(|v| v.to_string());
    let mut expected = vec![
        batched_hello["clientId"].clone(),
        plain.hello["clientId"].clone(),
    ];
    expected.sort_by_key(|v| v.to_string());
    assert_eq!(listed, expected);
    assert!(plain.hello.get("presence").is_none(), "{}", plain.hello);

    let other = alice.ws("doc").await;
    let other_id = other.hello["clientId"].clone();
    let join = plain.event("clientJoin").await;
    assert_eq!(
        join,
        json!({"wa": "clientJoin", "d": "doc", "clientId": other_id, "user": alice_json()})
    );
    drop(other);
    let part = plain.event("clientPart").await;
    assert_eq!(
        part,
        json!({"wa": "clientPart", "d": "doc", "clientId": other_id, "user": alice_json()})
    );
    let heard = plain.drain(WINDOW * 3).await;
    assert!(
        heard.iter().all(|f| f["wa"] != "clients"),
        "no batched frames to a socket that did not ask: {heard:?}"
    );
}

#[tokio::test]
async fn a_late_joiner_learns_everyone_present() {
    let readers = 2 * PAGE + 10;
    let server = TestServer::start_with(|s| s.max_sockets_per_user = 1000).await;
    let alice = server.user("alice").await;
    alice.create_doc("doc").await;
    // Half of them batched, half not: both are listed.
    let mut present = BTreeSet::new();
    let mut plain = Vec::new();
    let mut quiet = Vec::new();
    for i in 0..readers {
        if i % 2 == 0 {
            let ws = alice.ws("doc").await;
            present.insert(id_of(&ws));
            plain.push(ws);
        } else {
            let (socket, hello) = batched(&server, &alice, "doc").await;
            present.insert(hello["clientId"].as_str().unwrap().to_string());
            quiet.push(socket);
        }
    }
    let (mut late, hello) = batched(&server, &alice, "doc").await;
    let me = hello["clientId"].as_str().unwrap().to_string();
    let mut view = View::default();
    view.read_until(&mut late, |v| present.is_subset(&v.ids()))
        .await;
    assert!(
        view.frames.len() >= readers / PAGE,
        "the list comes in pages"
    );
    for frame in &view.frames {
        let named =
            frame["joined"].as_object().unwrap().len() + frame["parted"].as_array().unwrap().len();
        assert!(named <= PAGE, "{named} clients in one frame");
    }
    let mut expected = present.clone();
    expected.insert(me.clone());
    // Its own join comes back in the next window; nobody else is named.
    view.read_until(&mut late, |v| v.present.contains_key(&me))
        .await;
    assert_eq!(view.ids(), expected);

    // A late joiner that did not ask gets them all in hello, as before.
    let plain_late = alice.ws("doc").await;
    let listed: BTreeSet<String> = plain_late.hello["clients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    expected.insert(id_of(&plain_late));
    assert_eq!(listed, expected);
    assert_eq!(
        plain_late.hello["users"].as_object().unwrap().len(),
        expected.len()
    );
}

#[tokio::test]
async fn batched_readers_follow_permission_changes() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    alice.create_doc("doc").await;
    let mut admin = alice.ws("doc").await;
    let (mut watcher, _) = batched(&server, &alice, "doc").await;
    let mut watched = View::default();
    // Bob cannot read: his hello lists nobody and nobody hears of him.
    let (mut b, b_hello) = batched(&server, &bob, "doc").await;
    let b_id = b_hello["clientId"].as_str().unwrap().to_string();
    assert_eq!(b_hello["clients"], json!([]));
    assert_eq!(b_hello["users"], json!({}));

    let grant = json!({"username": "bob", "permissions": "r"});
    admin.ok("setPermissions", None, grant).await;
    // Bob learns who is here; the readers learn of bob.
    let mut bobs = View::default();
    let alices: BTreeSet<String> = [id_of(&admin)].into();
    bobs.read_until(&mut b, |v| alices.is_subset(&v.ids()))
        .await;
    assert_eq!(bobs.others[0]["wa"], "permissionsChanged");
    watched
        .read_until(&mut watcher, |v| v.present.contains_key(&b_id))
        .await;
    assert_eq!(
        watched.present[&b_id],
        json!({"username": "bob", "provider": "local"})
    );

    let revoke = json!({"username": "bob", "permissions": ""});
    admin.ok("setPermissions", None, revoke).await;
    watched
        .read_until(&mut watcher, |v| v.parted.contains(&b_id))
        .await;
    assert!(!watched.present.contains_key(&b_id));
}

#[tokio::test]
async fn an_unknown_presence_format_is_refused_before_joining() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    alice.create_doc("doc").await;
    let mut plain = alice.ws("doc").await;
    for bad in ["yes", "Batched", ""] {
        assert_eq!(
            connect_with_presence(&server, Some(&alice.cookie), "doc", bad)
                .await
                .err(),
            Some(400),
            "{bad:?}"
        );
    }
    let heard = plain.drain(WINDOW * 3).await;
    assert!(heard.is_empty(), "a refused socket joined: {heard:?}");
    assert_eq!(server.hub().socket_count(), 1);
}

/// A reader that never reads, in a room of batched readers that do: its
/// queue (256 frames) overflows and it is closed with 1008, while the
/// others stay and hear it part.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_reader_in_a_big_room_is_dropped() {
    const READERS: usize = 200;
    // Pings off: a socket that never reads never answers them either.
    let server = TestServer::start_with(|s| {
        s.ws_ping_interval = 3600;
        s.max_sockets_per_user = 1000;
    })
    .await;
    let alice = server.user("alice").await;
    alice.create_doc("doc").await;
    let mut readers = tokio::task::JoinSet::new();
    let (closed_tx, mut closed) = tokio::sync::mpsc::unbounded_channel();
    for _ in 0..READERS {
        let (mut socket, _) = batched(&server, &alice, "doc").await;
        let closed_tx = closed_tx.clone();
        readers.spawn(async move {
            while let Some(Ok(frame)) = socket.next().await {
                if frame.is_close() {
                    break;
                }
            }
            let _ = closed_tx.send(());
        });
    }
    let mut watcher = alice.ws("doc").await;
    let (mut idle, idle_id) = never_reading_socket(&server, &alice.cookie, "doc").await;
    // Every socket opened and dropped is a clientJoin and a clientPart to
    // the idle socket; the batched readers hear a frame per window.
    churn_until_evicted(&alice, "doc", &mut watcher, (&mut idle, &idle_id)).await;
    assert!(closed.try_recv().is_err(), "a reading socket was closed");
    drop(readers);
}

/// keystrate.js under Node (its own WebSocket) as a page: it asks for
/// batched presence, and page code still gets one clientJoin / clientPart
/// per client, for those present before it (the list in pages) and after.
#[tokio::test]
async fn keystrate_js_emits_one_event_per_client_over_batched_frames() {
    let early_count = PAGE + 6;
    let server = TestServer::start_with(|s| s.max_sockets_per_user = 1000).await;
    let alice = server.user("alice").await;
    alice.create_doc("lecture").await;
    let mut admin = alice.ws("lecture").await;
    let anyone_reads = json!({"username": "anonymous", "permissions": "r"});
    admin.ok("setPermissions", None, anyone_reads).await;
    let mut early = Vec::new();
    for _ in 0..early_count {
        early.push(alice.ws("lecture").await);
    }
    let mut before: BTreeSet<String> = early.iter().map(id_of).collect();
    before.insert(id_of(&admin));

    let mut page = NodePage::open(&server, "lecture").await;
    let state = page.state(before.len() + 1).await;
    assert_eq!(
        state["opened"],
        json!([format!(
            "{}/lecture/ws?presence=batched",
            server.base.replacen("http", "ws", 1)
        )])
    );
    assert_eq!(state["frameKinds"].get("clientJoin"), None, "{state}");
    assert!(
        state["frameKinds"]["clients"].as_u64().unwrap() >= 2,
        "{state}"
    );
    let joins = events_of(&state, "clientJoin");
    assert_eq!(joins.len(), before.len(), "one event per client: {joins:?}");
    assert_eq!(joins.iter().cloned().collect::<BTreeSet<_>>(), before);
    assert_eq!(state["users"][id_of(&admin)], alice_json());

    // Ten join and five leave while the page is open.
    let mut later = Vec::new();
    for _ in 0..10 {
        later.push(alice.ws("lecture").await);
    }
    let leaving: Vec<Ws> = early.drain(..5).collect();
    let left: BTreeSet<String> = leaving.iter().map(id_of).collect();
    drop(leaving);
    let mut now = before.clone();
    now.retain(|id| !left.contains(id));
    now.extend(later.iter().map(id_of));
    now.insert(page.id.clone());
    let state = page.state(now.len()).await;
    let listed: BTreeSet<String> = state["clients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(listed, now);
    let joins = events_of(&state, "clientJoin");
    assert_eq!(joins.len(), before.len() + 10, "{joins:?}");
    let parts = events_of(&state, "clientPart");
    assert_eq!(parts.iter().cloned().collect::<BTreeSet<_>>(), left);
    assert_eq!(parts.len(), 5);
    for event in state["events"].as_array().unwrap() {
        assert_eq!(event["frame"], "clients", "{event}");
        assert_eq!(event["user"], alice_json(), "{event}");
    }
    page.close().await;
}

/// The ids of `state`'s events of `kind`, in order.
fn events_of(state: &Value, kind: &str) -> Vec<String> {
    state["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == kind)
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect()
}

/// tests/it/rooms/page.js: keystrate.js running in Node against the server.
struct NodePage {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    id: String,
}

impl NodePage {
    async fn open(server: &TestServer, doc: &str) -> NodePage {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/rooms/page.js");
        let mut child = tokio::process::Command::new("node")
            .arg("--experimental-websocket")
            .arg(script)
            .env("KEYSTRATE_PAGE", server.url(&format!("/{doc}/")))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("node (Debian package `nodejs`) runs keystrate.js");
        let stdin = child.stdin.take().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let ready = Self::read(&mut lines).await;
        let id = ready["ready"].as_str().expect("ready line").to_string();
        NodePage {
            child,
            stdin,
            lines,
            id,
        }
    }

    async fn read(lines: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>) -> Value {
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("page.js answers")
            .unwrap()
            .expect("page.js is running");
        serde_json::from_str(&line).expect("a JSON line")
    }

    /// What the page saw once it lists `count` clients (or after 10 s).
    async fn state(&mut self, count: usize) -> Value {
        let ask = format!("{}\n", json!({"count": count}));
        self.stdin.write_all(ask.as_bytes()).await.unwrap();
        Self::read(&mut self.lines).await
    }

    async fn close(mut self) {
        drop(self.stdin);
        let status = tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .expect("page.js exits")
            .unwrap();
        assert!(status.success(), "page.js failed: {status}");
    }
}

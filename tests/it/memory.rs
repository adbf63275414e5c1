//! Memory comes back after a burst (issue 14, item 14): the real binary,
//! its RSS read from `/proc/<pid>/status`.

use crate::common::process::{register, Proc};
use crate::common::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message;

const SOCKETS: usize = 3000;
/// Sockets per user, under any per-user socket cap.
const PER_USER: usize = 50;
const BUDGET_KB: u64 = 64 * 1024;

/// 3,000 sockets join one document, each hearing every later join, and
/// leave. jemalloc used to purge freed pages only while allocating, so an
/// idle server kept the burst (468 MB) with no socket open.
#[tokio::test]
async fn rss_returns_after_three_thousand_sockets_leave() {
    let dir = tempfile::tempdir().unwrap();
    let p = Proc::start(dir.path(), &[]).await;
    let owner = register(&p.base, "owner").await;
    owner.create_doc("burst").await;
    let mut admin = owner.ws("burst").await;
    let anyone_reads = json!({"username": "anonymous", "provider": "", "permissions": "r"});
    admin.ok("setPermissions", None, anyone_reads).await;
    drop(admin);
    let mut cookies = Vec::new();
    for i in 0..SOCKETS / PER_USER {
        cookies.push(register(&p.base, &format!("reader{i}")).await.cookie);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = p.rss_kb();

    // Every socket reads all it is sent (presence of the later joins), so
    // none is dropped as a slow reader.
    let handshakes = Arc::new(Semaphore::new(16));
    let mut readers = Vec::new();
    let (joined, mut on_join) = tokio::sync::mpsc::unbounded_channel();
    let (leave, _) = tokio::sync::broadcast::channel::<()>(1);
    for i in 0..SOCKETS {
        let permit = handshakes.clone().acquire_owned().await.unwrap();
        let (base, cookie) = (p.base.clone(), cookies[i / PER_USER].clone());
        let (joined, mut leave) = (joined.clone(), leave.subscribe());
        readers.push(tokio::spawn(async move {
            let mut ws = Ws::connect(&base, "burst", Some(&cookie), None)
                .await
                .expect("socket joins");
            drop(permit);
            joined.send(()).unwrap();
            loop {
                tokio::select! {
                    frame = ws.socket.next() => match frame {
                        // Presence in a room this big can outrun a reader on a
                        // loaded machine; the server then drops it (1008) as it
                        // should, and the burst is no smaller for it.
                        Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                        Some(Ok(_)) => {}
                    },
                    _ = leave.recv() => break,
                }
            }
            let _ = ws.socket.send(Message::Close(None)).await;
        }));
    }
    for _ in 0..SOCKETS {
        on_join.recv().await.unwrap();
    }
    let peak = p.rss_kb();
    leave.send(()).unwrap();
    for r in readers {
        r.await.unwrap();
    }
    eprintln!(
        "RSS before {} MiB, with {SOCKETS} sockets {} MiB",
        before / 1024,
        peak / 1024
    );

    let left = Instant::now();
    let mut now = p.rss_kb();
    while now > before + BUDGET_KB {
        assert!(
            left.elapsed() < Duration::from_secs(30),
            "RSS {} MiB 30 s after the burst, {} MiB before it",
            now / 1024,
            before / 1024
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
        now = p.rss_kb();
    }
    eprintln!("back to {} MiB after {:?}", now / 1024, left.elapsed());
}

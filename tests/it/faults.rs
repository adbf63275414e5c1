//! Faults: clients vanishing mid-request, shutdown during in-flight
//! requests, and a data directory that is full or read-only at start.

use crate::common::mount::tmpfs;
use crate::common::process::{register, start_fails, Proc};
use crate::common::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::time::Duration;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn clients_that_vanish_mid_request_do_not_hurt_the_server() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    alice.create_doc("doc").await;
    for i in 0..50 {
        let mut ws = alice.ws("doc").await;
        let frame = json!({"wa": "createInvite", "token": format!("t{i}"), "options": {}});
        ws.socket
            .send(Message::text(frame.to_string()))
            .await
            .unwrap();
        drop(ws); // gone before the reply
    }
    // Requests already read keep running after their socket is gone: wait
    // until the store is quiet.
    let store = server.engine().store();
    let mut last = usize::MAX;
    while store.census().invites != last {
        last = store.census().invites;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Whatever was applied is whole; the server keeps serving.
    let mut a = alice.ws("doc").await;
    let listed = a.ok("getInvites", None, json!({})).await;
    let stored = server.engine().store().census().invites;
    assert_eq!(listed.as_array().unwrap().len(), stored);
    // Not vacuous: requests read before the socket vanished were applied.
    assert!((1..=50).contains(&stored), "{stored} stored of 50 sent");
    assert_eq!(server.engine().store().census().invite_expiries, stored);
    a.ok("createInvite", None, json!({})).await;
}

#[tokio::test]
async fn sigterm_during_in_flight_requests_replies_or_closes_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = Proc::start(dir.path(), &[]).await;
    let alice = register(&p.base, "alice").await;
    alice.create_doc("doc").await;
    let answered = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let mut ws = alice.ws("doc").await;
        let answered = answered.clone();
        tasks.push(tokio::spawn(async move {
            // Pipeline requests without waiting, then read until the close.
            for i in 0..400 {
                let frame = json!({"wa": "createInvite", "token": format!("t{i}"), "options": {}});
                if ws
                    .socket
                    .send(Message::text(frame.to_string()))
                    .await
                    .is_err()
                {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            let mut acked = Vec::new();
            let close = loop {
                match tokio::time::timeout(Duration::from_secs(15), ws.socket.next()).await {
                    Ok(Some(Ok(Message::Text(t)))) => {
                        let v: Value = serde_json::from_str(&t).unwrap();
                        if let Some(key) = v["reply"]["key"].as_str() {
                            acked.push(key.to_string());
                            answered.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        }
                    }
                    Ok(Some(Ok(Message::Close(frame)))) => break frame.map(|f| f.code),
                    Ok(Some(Ok(_))) => continue,
                    other => panic!("socket ended without a close frame: {other:?}"),
                }
            };
            (acked, close)
        }));
    }
    // The signal lands while requests are in flight: once some are answered.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while answered.load(std::sync::atomic::Ordering::SeqCst) == 0 {
        assert!(std::time::Instant::now() < deadline, "no request answered");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let status = tokio::task::spawn_blocking(move || {
        let status = p.sigterm();
        drop(p);
        status
    })
    .await
    .unwrap();
    assert!(status.success(), "exit 0 after SIGTERM");
    let mut acked = Vec::new();
    for t in tasks {
        let (keys, close) = t.await.unwrap();
        assert_eq!(close, Some(CloseCode::Away), "clean close with 1001");
        acked.extend(keys);
    }
    assert!(
        !acked.is_empty(),
        "some requests were answered before the signal"
    );
    let store = keystrate::store::Store::open(dir.path()).unwrap();
    for key in &acked {
        assert!(
            store.invite("doc", key).unwrap().is_some(),
            "acknowledged invite {key} lost"
        );
    }
}

/// The binary exits non-zero at once with `message` on stderr.
fn start_fails_clearly(data: &std::path::Path, message: &str) {
    let data = data.to_str().unwrap();
    let err = start_fails(&["--data", data, "--listen", "127.0.0.1:0"], &[]);
    assert!(
        err.contains("cannot open data directory") && err.contains(message),
        "{err}"
    );
}

#[tokio::test]
async fn full_or_read_only_disk_at_start_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let full = dir.path().join("full");
    std::fs::create_dir(&full).unwrap();
    let Some(_full) = tmpfs(
        "full_or_read_only_disk_at_start_is_a_clear_error",
        &full,
        "size=1m",
    ) else {
        return;
    };
    start_fails_clearly(&full.join("data"), "KiB free on its file system");
    let ro = dir.path().join("ro");
    std::fs::create_dir(&ro).unwrap();
    let Some(_ro) = tmpfs(
        "full_or_read_only_disk_at_start_is_a_clear_error",
        &ro,
        "ro,size=1m",
    ) else {
        return;
    };
    start_fails_clearly(&ro.join("data"), "Read-only file system");
}

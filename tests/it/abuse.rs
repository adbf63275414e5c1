//! Abuse: slow-loris and half-open clients must not hold the server's
//! connections, and a flood of connections past the cap gets 503s and the
//! server recovers.

use crate::common::*;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads until EOF or error; true when the server closed within `limit`.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

async fn raw_get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = Vec::new();
    // Generous: a loaded machine may be slow to answer, never silent.
    let _ = tokio::time::timeout(Duration::from_secs(60), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn slow_loris_clients_are_cut_off() {
    const TIMEOUT: u64 = 3;
    let server = TestServer::start_with(|s| {
        s.header_read_timeout = TIMEOUT;
        s.max_connections = 8;
    })
    .await;
    let started = Instant::now();
    let mut slow = Vec::new();
    for _ in 0..8 {
        let mut s = TcpStream::connect(server.addr).await.unwrap();
        s.write_all(b"GET /health HTTP/1.1\r\nhost: x\r\nx-slow: ")
            .await
            .unwrap();
        slow.push(s);
    }
    // While they hold every slot, others are refused (checked only while
    // the timeout surely has not freed the slots yet: a loaded machine may
    // get here late)...
    let answer = raw_get(server.addr, "/health").await;
    if started.elapsed() < Duration::from_secs(TIMEOUT) {
        assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    }
    // ...but they keep dribbling and are still cut off after the timeout.
    for s in &mut slow {
        s.write_all(b"a").await.unwrap();
    }
    for s in &mut slow {
        assert!(
            closed_within(s, Duration::from_secs(TIMEOUT + 30)).await,
            "slow client kept open"
        );
    }
    let ok = raw_get(server.addr, "/health").await;
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
}

/// A keep-alive connection that went quiet after its request is closed
/// by the header timeout too, so idle connections cannot hold the slots.
#[tokio::test]
async fn idle_keep_alive_connections_are_closed() {
    const TIMEOUT: u64 = 1;
    let server = TestServer::start_with(|s| s.header_read_timeout = TIMEOUT).await;
    let mut idle = TcpStream::connect(server.addr).await.unwrap();
    idle.write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 256];
    let n = idle.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    assert!(
        closed_within(&mut idle, Duration::from_secs(TIMEOUT + 30)).await,
        "idle keep-alive connection kept open"
    );
}

#[tokio::test]
async fn half_open_websockets_are_dropped() {
    let server = TestServer::start_with(|s| s.ws_ping_interval = 1).await;
    let alice = server.user("alice").await;
    alice.create_doc("doc").await;
    let mut watcher = alice.ws("doc").await;
    // A client that stops reading (so never answers pings) — like a peer
    // whose network vanished without a FIN.
    let silent = alice.ws("doc").await;
    let silent_id = silent.hello["clientId"].clone();
    assert_eq!(server.hub().socket_count(), 2);
    let part = tokio::time::timeout(Duration::from_secs(60), watcher.event("clientPart"))
        .await
        .expect("silent socket dropped");
    assert_eq!(part["clientId"], silent_id);
    // The watcher itself reads (so it answers pings) and stays.
    watcher.drain(Duration::from_millis(2500)).await;
    assert_eq!(
        watcher
            .ok("getPermissions", None, serde_json::json!({}))
            .await[0]["permissions"],
        "arw"
    );
    assert_eq!(server.hub().socket_count(), 1);
    drop(silent);
}

#[tokio::test]
async fn ten_thousand_attempts_past_the_cap_get_503_then_recover() {
    let server = TestServer::start_with(|s| s.max_connections = 16).await;
    let mut held = Vec::new();
    for _ in 0..16 {
        let mut s = TcpStream::connect(server.addr).await.unwrap();
        // A complete keep-alive request: the connection stays open after it.
        s.write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 256];
        let n = s.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        held.push(s);
    }
    let addr = server.addr;
    let mut refused = 0usize;
    let mut batches = Vec::new();
    for _ in 0..50 {
        batches.push(tokio::spawn(async move {
            let mut n = 0;
            for _ in 0..200 {
                if raw_get(addr, "/health").await.starts_with("HTTP/1.1 503") {
                    n += 1;
                }
            }
            n
        }));
    }
    for b in batches {
        refused += b.await.unwrap();
    }
    assert_eq!(refused, 10_000, "every attempt past the cap answered 503");
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if raw_get(addr, "/health").await.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(Instant::now() < deadline, "did not recover");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

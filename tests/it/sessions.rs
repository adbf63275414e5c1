//! Sessions end for their sockets too (issue 14, items 7 and 13): logging
//! out closes every socket opened with that session (1008), a session's
//! expiry closes its sockets and its record is purged without being
//! presented again.

use crate::common;
use crate::common::*;
use serde_json::json;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// Waits (up to `limit`) for the socket's close frame; its code.
async fn close_code(ws: &mut Ws, limit: Duration) -> CloseCode {
    close_frame(&mut ws.socket, limit).await.0
}

#[tokio::test]
async fn logout_closes_every_socket_of_that_session_with_1008() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    alice.create_doc("doc-a").await;
    alice.create_doc("doc-b").await;
    // The same user logged in a second time, elsewhere.
    let elsewhere = common::process::login(&server.base, "alice").await;
    let mut on_a = alice.ws("doc-a").await;
    let mut on_b = alice.ws("doc-b").await;
    let mut other_session = elsewhere.ws("doc-a").await;

    let r = alice
        .http
        .post(alice.url("/auth/logout"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    for ws in [&mut on_a, &mut on_b] {
        assert_eq!(
            close_code(ws, Duration::from_secs(10)).await,
            CloseCode::Policy
        );
    }
    // The other session's socket still acts.
    let perms = other_session.ok("getPermissions", None, json!({})).await;
    assert_eq!(perms[0]["permissions"], "arw");
    // Reconnecting with the old cookie gets no user.
    let r = Ws::connect(&server.base, "doc-a", Some(&alice.cookie), None).await;
    assert_eq!(r.err(), Some(403));
}

#[tokio::test]
async fn an_expired_session_closes_its_sockets_and_is_purged() {
    const TTL: u64 = 10;
    let server = TestServer::start_with(|s| s.session_ttl = TTL).await;
    let started = Instant::now();
    let alice = server.user("alice").await;
    alice.create_doc("doc").await;
    let mut ws = alice.ws("doc").await;
    assert_eq!(ws.hello["user"]["username"], "alice");
    let cookie_lifetime = format!("Max-Age={TTL}");
    // A second session, never presented again.
    common::process::register(&server.base, "bob").await;
    // The socket closes by itself when the session ends...
    assert_eq!(
        close_code(&mut ws, Duration::from_secs(60)).await,
        CloseCode::Policy
    );
    assert!(
        started.elapsed() >= Duration::from_secs(TTL - 1),
        "not before expiry"
    );
    // ...and the stored sessions go without anyone presenting them.
    let store = server.engine().store();
    let deadline = Instant::now() + Duration::from_secs(60);
    while store.census().sessions + store.census().session_expiries != 0 {
        assert!(Instant::now() < deadline, "expired sessions still stored");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The cookie said as much.
    let r = server
        .client()
        .post(server.url("/auth/login"))
        .json(&json!({"username": "alice", "password": "correct horse"}))
        .send()
        .await
        .unwrap();
    assert!(r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .contains(&cookie_lifetime));
}

/// Sessions stored before the expiry index existed are indexed at start,
/// so the expired ones are purged too.
#[tokio::test]
async fn sessions_stored_without_the_expiry_index_are_indexed_and_purged() {
    let mut server = TestServer::start().await;
    let alice = server.user("alice").await;
    let token = alice.cookie.clone();
    drop(alice);
    server.stop().await;
    let data = server.dir.path().to_path_buf();
    {
        // As an older build left it: sessions, no index, one long expired.
        // The stopped server's storage threads let go of it shortly.
        let deadline = Instant::now() + Duration::from_secs(30);
        let db = loop {
            match sled::Config::new()
                .path(&data)
                .segment_size(2 * 1024 * 1024)
                .open()
            {
                Ok(db) => break db,
                Err(e) => assert!(Instant::now() < deadline, "{e}"),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let sessions = db.open_tree("sessions").unwrap();
        let (_, live) = sessions.first().unwrap().unwrap();
        let mut expired: serde_json::Value = serde_json::from_slice(&live).unwrap();
        expired["expires_at"] = json!(1_000);
        sessions
            .insert([7u8; 32], serde_json::to_vec(&expired).unwrap())
            .unwrap();
        db.open_tree("session_expiry").unwrap().clear().unwrap();
        db.flush().unwrap();
    }
    let running = keystrate::start(keystrate::Config {
        data: data.clone(),
        serve: keystrate::config::ServeArgs {
            listen: "127.0.0.1:0".parse().unwrap(),
            ..Default::default()
        },
    })
    .await
    .unwrap();
    let store = running.engine.store();
    let deadline = Instant::now() + Duration::from_secs(30);
    while (store.census().sessions, store.census().session_expiries) != (1, 1) {
        assert!(Instant::now() < deadline, "not indexed and purged");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The live one still works.
    assert!(running.engine.session_user(&token).unwrap().is_some());
    running.shutdown().await;
}

//! Password hashing is a bounded resource (issue 14, item 1): failed logins
//! are throttled per username and per client address, registrations past
//! the hashing pool get 503 with `Retry-After`, and durable writes never wait
//! for tokio's blocking pool.

use crate::common::*;
use keystrate::engine::accounts::{LOGIN_FAILURES_PER_ADDRESS, LOGIN_FAILURES_PER_USER};
use serde_json::{json, Value};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

/// A client whose requests come from loopback address `127.0.2.<n>`.
fn client_from(n: u8) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 2, n)))
        .build()
        .unwrap()
}

async fn login_status(
    server: &TestServer,
    http: &reqwest::Client,
    name: &str,
    password: &str,
) -> reqwest::Response {
    http.post(server.url("/auth/login"))
        .json(&json!({"username": name, "password": password}))
        .send()
        .await
        .unwrap()
}

fn retry_after(r: &reqwest::Response) -> u64 {
    r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn wrong_passwords_are_throttled_per_username() {
    let server = TestServer::start().await;
    server.user("alice").await;
    server.user("bob").await;
    // Each guess from another address: the username alone is the limit.
    for i in 0..LOGIN_FAILURES_PER_USER {
        let r = login_status(&server, &client_from(i as u8 + 1), "alice", "wrong guess").await;
        assert_eq!(r.status(), 401);
    }
    let fresh = client_from(200);
    for password in ["wrong guess", "correct horse"] {
        let r = login_status(&server, &fresh, "alice", password).await;
        assert_eq!(r.status(), 429, "blocked whatever the password");
        assert!(retry_after(&r) >= 1);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["code"], "rate_limited");
    }
    // Other users are not affected, from the same addresses.
    let r = login_status(&server, &fresh, "bob", "correct horse").await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn wrong_passwords_are_throttled_per_client_address() {
    let server = TestServer::start().await;
    server.user("alice").await;
    let attacker = client_from(7);
    // A new username each time: only the address ties the guesses together.
    for i in 0..LOGIN_FAILURES_PER_ADDRESS {
        let r = login_status(&server, &attacker, &format!("nobody{i}"), "wrong guess").await;
        assert_eq!(r.status(), 401, "attempt {i}");
    }
    let r = login_status(&server, &attacker, "alice", "correct horse").await;
    assert_eq!(r.status(), 429);
    assert!(retry_after(&r) >= 1);
    // Another address logs in as usual.
    let r = login_status(&server, &client_from(8), "alice", "correct horse").await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn registrations_past_the_hashing_pool_get_503_with_retry_after() {
    let server = TestServer::start().await;
    let mut busy = None;
    // Every registration hashes a password; a burst of them outruns a pool
    // of one worker per core with a short queue.
    for round in 0..5 {
        let mut burst = Vec::new();
        for i in 0..100 {
            let (http, url) = (reqwest::Client::new(), server.url("/auth/register"));
            burst.push(tokio::spawn(async move {
                let name = format!("user{round}x{i}");
                let body = json!({"username": name, "password": "correct horse"});
                http.post(url).json(&body).send().await.unwrap()
            }));
        }
        for r in burst {
            let r = r.await.unwrap();
            match r.status().as_u16() {
                201 => {}
                503 => busy = Some(r),
                other => panic!("unexpected status {other}"),
            }
        }
        if busy.is_some() {
            break;
        }
    }
    let r = busy.expect("some registrations were refused as busy");
    assert_eq!(retry_after(&r), 1);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "busy");
    // Once the burst is over, registration works again.
    server.user("after").await;
}

/// The storage flusher and write combiner used to run their blocking work
/// on tokio's blocking pool, where password hashes queued too. Here that
/// pool has one thread, held by a blocking task until a document creation
/// answers: the write must not need the pool.
#[test]
fn durable_writes_do_not_wait_for_tokios_blocking_pool() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let server = TestServer::start().await;
        let alice = server.user("alice").await;
        let (release, held) = std::sync::mpsc::channel::<()>();
        let (taken, on_taken) = tokio::sync::oneshot::channel();
        let blocker = tokio::task::spawn_blocking(move || {
            let _ = taken.send(());
            let _ = held.recv_timeout(Duration::from_secs(60));
        });
        on_taken.await.unwrap();
        let created = tokio::time::timeout(Duration::from_secs(30), alice.create_doc("doc")).await;
        release.send(()).unwrap();
        blocker.await.unwrap();
        assert!(created.is_ok(), "the write waited for the blocking pool");
    });
}

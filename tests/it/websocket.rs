//! The WebSocket transport (docs/protocol.md, "WebSocket RPC"): connection rules, Origin
//! checks, frame errors and limits, rate limiting, events and presence.

use crate::common::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::time::Duration;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn connection_rules() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    alice.create_doc("doc").await;
    // Missing document.
    assert_eq!(
        Ws::connect(&server.base, "nope", Some(&alice.cookie), None)
            .await
            .err(),
        Some(404)
    );
    // Anonymous on a private document.
    assert_eq!(
        Ws::connect(&server.base, "doc", None, None).await.err(),
        Some(403)
    );
    // A logged-in user without access may connect (to accept invites) and
    // sees nobody.
    let b = bob.ws("doc").await;
    assert_eq!(b.hello["permissions"], "");
    assert_eq!(b.hello["clients"], json!([]));
    assert_eq!(
        b.hello["user"],
        json!({"username": "bob", "provider": "local"})
    );
    let a = alice.ws("doc").await;
    assert_eq!(a.hello["d"], "doc");
    assert_eq!(
        a.hello["clients"],
        json!([a.hello["clientId"]]),
        "invisible bob not listed"
    );
    let mut users = serde_json::Map::new();
    users.insert(
        a.hello["clientId"].as_str().unwrap().to_string(),
        json!({"username": "alice", "provider": "local"}),
    );
    assert_eq!(
        a.hello["users"],
        Value::Object(users),
        "who each listed client is"
    );
    assert_eq!(b.hello["users"], json!({}));
}

#[tokio::test]
async fn origin_is_checked() {
    let server =
        TestServer::start_with(|s| s.allowed_origins = vec!["https://app.example".into()]).await;
    let alice = server.user("alice").await;
    alice.create_doc("doc").await;
    let own = server.base.clone();
    let localhost = format!("http://localhost:{}", server.addr.port());
    let ipv6_loopback = format!("http://[::1]:{}", server.addr.port());
    let allowed = [
        own.as_str(),
        localhost.as_str(),
        ipv6_loopback.as_str(),
        "https://app.example",
    ];
    let refused = ["https://evil.example", "http://127.0.0.1:1", "null"];
    assert_origins(&server, &alice.cookie, &allowed, &refused).await;
}

/// Each `allowed` origin opens a socket on `doc`; each `refused` one gets
/// 403 before the upgrade.
async fn assert_origins(server: &TestServer, cookie: &str, allowed: &[&str], refused: &[&str]) {
    for ok in allowed {
        let r = Ws::connect(&server.base, "doc", Some(cookie), Some(ok)).await;
        assert!(r.is_ok(), "{ok}: {:?}", r.err());
    }
    for bad in refused {
        let r = Ws::connect(&server.base, "doc", Some(cookie), Some(bad)).await;
        assert_eq!(r.err(), Some(403), "{bad}");
    }
}

#[tokio::test]
async fn origin_with_explicit_public_url() {
    let server =
        TestServer::start_with(|s| s.public_url = Some("https://docs.example/".into())).await;
    let alice = server.user("alice").await;
    alice.create_doc("doc").await;
    assert!(Ws::connect(
        &server.base,
        "doc",
        Some(&alice.cookie),
        Some("https://docs.example")
    )
    .await
    .is_ok());
    let loopback = server.base.clone();
    assert_eq!(
        Ws::connect(&server.base, "doc", Some(&alice.cookie), Some(&loopback))
            .await
            .err(),
        Some(403)
    );
}

/// Origins compare as origins, the way browsers serialise them, not as
/// text: an `--allowed-origin` written with its default port and a public
/// URL with a path match the `Origin` a browser sends for them; a header
/// that is more than an origin, or another scheme or port, does not.
#[tokio::test]
async fn origins_compare_as_origins_not_as_text() {
    let server = TestServer::start_with(|s| {
        s.allowed_origins = vec!["https://app.example:443".into()];
        s.public_url = Some("https://docs.example/keystrate/".into());
    })
    .await;
    let alice = server.user("alice").await;
    alice.create_doc("doc").await;
    let refused = [
        "http://app.example",
        "https://app.example:8443",
        "https://app.example/page",
        "https://user@app.example",
        "https://docs.example/keystrate",
    ];
    let allowed = ["https://app.example", "https://docs.example"];
    assert_origins(&server, &alice.cookie, &allowed, &refused).await;
}

#[tokio::test]
async fn bad_frames_get_errors_without_closing() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    alice.create_doc("doc").await;
    let mut a = alice.ws("doc").await;
    for frame in [
        "not json",
        "[1,2]",
        r#"{"wa":"getInvites"}"#,
        r#"{"token":"x"}"#,
    ] {
        a.send_raw(Message::text(frame)).await;
        let v = next_json(&mut a.socket).await.unwrap();
        assert_eq!(v["code"], "bad_request", "{frame}: {v}");
        if frame.contains("token") {
            assert_eq!(v["wa"], "reply");
            assert_eq!(v["token"], "x");
        } else {
            assert_eq!(v["wa"], "error");
        }
    }
    a.send_raw(Message::binary(vec![1u8, 2, 3])).await;
    let v = next_json(&mut a.socket).await.unwrap();
    assert_eq!(
        (v["wa"].as_str(), v["code"].as_str()),
        (Some("error"), Some("bad_request"))
    );
    // Integer tokens are echoed as given; a bad `d` is a reply error.
    a.send_raw(Message::text(r#"{"wa":"getPermissions","token":42}"#))
        .await;
    let v = next_json(&mut a.socket).await.unwrap();
    assert_eq!(v["token"], 42);
    assert_eq!(v["reply"][0]["permissions"], "arw");
    assert_eq!(
        a.err("getPermissions", Some("../etc"), json!({})).await.0,
        "no_such_document"
    );
    // Still open and working.
    assert_eq!(
        a.ok("getPermissions", None, json!({})).await[0]["username"],
        "alice"
    );
}

#[tokio::test]
async fn frames_over_64_kib_close_with_1009() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    alice.create_doc("doc").await;
    let mut a = alice.ws("doc").await;
    // Just under the limit is answered.
    let padding = "x".repeat(64 * 1024 - 100);
    a.send_raw(Message::text(
        json!({"wa": "getPermissions", "token": "t", "pad": padding}).to_string(),
    ))
    .await;
    assert_eq!(next_json(&mut a.socket).await.unwrap()["token"], "t");
    a.send_raw(Message::text("y".repeat(64 * 1024 + 1))).await;
    let close = loop {
        match tokio::time::timeout(Duration::from_secs(5), a.socket.next())
            .await
            .unwrap()
        {
            Some(Ok(Message::Close(frame))) => break frame,
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    assert_eq!(close.unwrap().code, CloseCode::Size);
    // The server keeps serving others.
    assert!(alice.ws("doc").await.hello["permissions"] == "arw");
}

/// Sends `n` requests without waiting, then counts the `rate_limited`
/// replies; also the seconds from the first send to the last reply.
async fn flood(a: &mut Ws, n: usize) -> (usize, f64) {
    let started = std::time::Instant::now();
    for i in 0..n {
        a.socket
            .feed(Message::text(
                json!({"wa": "getPermissions", "token": format!("t{i}")}).to_string(),
            ))
            .await
            .unwrap();
    }
    a.socket.flush().await.unwrap();
    let mut limited = 0;
    let mut answered = 0;
    while answered < n {
        let v = next_json(&mut a.socket).await.unwrap();
        if v["wa"] != "reply" {
            continue;
        }
        answered += 1;
        if v["code"] == "rate_limited" {
            assert_eq!(v["error"], "Too many requests");
            limited += 1;
        }
    }
    (limited, started.elapsed().as_secs_f64())
}

/// The token bucket's rule, whatever the machine's speed: the burst
/// (`2 × rate`, or all of `sent` when fewer) always passes, and at most the
/// burst plus what refilled during `seconds` does.
fn assert_bucket(rate: usize, sent: usize, passed: usize, seconds: f64) {
    let burst = 2 * rate;
    let most = burst + (rate as f64 * seconds).ceil() as usize + 1;
    assert!(
        passed >= burst.min(sent) && passed <= most,
        "{passed} of {sent} passed in {seconds:.2} s at {rate}/s: expected {}..={most}",
        burst.min(sent)
    );
}

#[tokio::test]
async fn the_socket_rate_limit_is_the_operators_setting() {
    let server = TestServer::start_with(|s| s.ws_rate_limit = 10).await;
    let alice = server.user("alice").await;
    alice.create_doc("doc").await;
    let mut a = alice.ws("doc").await;
    // A burst of 20 passes, then 10 a second (not the default 100).
    let (limited, seconds) = flood(&mut a, 100).await;
    assert_bucket(10, 100, 100 - limited, seconds);
}

#[tokio::test]
async fn socket_token_bucket_answers_rate_limited() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    alice.create_doc("doc").await;
    let mut a = alice.ws("doc").await;
    // Far more than the burst of 200 (twice the default 100/s).
    let n = 400;
    let (limited, seconds) = flood(&mut a, n).await;
    assert_bucket(100, n, n - limited, seconds);
    // Another socket of the same user has its own bucket.
    let mut a2 = alice.ws("doc").await;
    assert_eq!(
        a2.ok("getPermissions", None, json!({})).await[0]["permissions"],
        "arw"
    );
}

#[tokio::test]
async fn malformed_and_binary_frames_pay_the_token_bucket() {
    let server = TestServer::start_with(|s| s.ws_rate_limit = 10).await;
    let alice = server.user("alice").await;
    alice.create_doc("doc").await;
    let mut a = alice.ws("doc").await;
    // 1,000 token-less frames at once, half garbage, half binary: only the
    // burst (20) and what refills meanwhile are read; the rest are refused.
    let n = 1000;
    let started = std::time::Instant::now();
    for i in 0..n {
        let frame = if i % 2 == 0 {
            Message::text("not json")
        } else {
            Message::binary(vec![1u8, 2, 3])
        };
        a.socket.feed(frame).await.unwrap();
    }
    a.socket.flush().await.unwrap();
    let (mut read, mut limited) = (0, 0);
    for _ in 0..n {
        let v = next_json(&mut a.socket).await.unwrap();
        assert_eq!(v["wa"], "error", "{v}");
        match v["code"].as_str() {
            Some("bad_request") => read += 1,
            Some("rate_limited") => {
                assert_eq!(v["error"], "Too many requests");
                limited += 1;
            }
            other => panic!("unexpected code {other:?}: {v}"),
        }
    }
    assert_eq!(read + limited, n);
    assert_bucket(10, n, read, started.elapsed().as_secs_f64());
    // A refused request still gets its token back, and the socket recovers.
    a.send_raw(Message::text(r#"{"wa":"getPermissions","token":"late"}"#))
        .await;
    let v = next_json(&mut a.socket).await.unwrap();
    assert_eq!(v["token"], "late", "{v}");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let r = a.request("getPermissions", None, json!({})).await;
        if r.get("reply").is_some() {
            break;
        }
        assert_eq!(r["code"], "rate_limited", "{r}");
        assert!(
            std::time::Instant::now() < deadline,
            "bucket never refilled"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Connects until it works (a closed socket frees its place once the
/// server has seen the close).
async fn connect_eventually(base: &str, doc: &str, cookie: Option<&str>) -> Ws {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match Ws::connect(base, doc, cookie, None).await {
            Ok(ws) => return ws,
            Err(status) => assert_eq!(status, 429),
        }
        assert!(std::time::Instant::now() < deadline, "place never freed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn sockets_per_user_and_per_logged_out_address_are_capped() {
    let server = TestServer::start_with(|s| s.max_sockets_per_user = 3).await;
    let alice = server.user("alice").await;
    alice.create_doc("doc").await;
    alice.create_doc("pub").await;
    let mut a = alice.ws("pub").await;
    a.ok(
        "setPermissions",
        None,
        json!({"username": "anonymous", "permissions": "r"}),
    )
    .await;
    // Mallory may not even read "doc", yet could hold every slot.
    let mallory = server.user("mallory").await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(mallory.ws("doc").await);
    }
    for doc in ["doc", "pub"] {
        assert_eq!(
            Ws::connect(&server.base, doc, Some(&mallory.cookie), None)
                .await
                .err(),
            Some(429),
            "the cap is per user, across documents"
        );
    }
    // Others are unaffected, and a closed socket frees its place.
    let _second = alice.ws("doc").await;
    held.pop().unwrap().socket.close(None).await.unwrap();
    held.push(connect_eventually(&server.base, "doc", Some(&mallory.cookie)).await);
    // Logged out, the client address is the owner.
    let mut anonymous = Vec::new();
    for _ in 0..3 {
        anonymous.push(Ws::connect(&server.base, "pub", None, None).await.unwrap());
    }
    assert_eq!(
        Ws::connect(&server.base, "pub", None, None).await.err(),
        Some(429)
    );
    let _third = alice.ws("pub").await;
}

/// Opens an anonymous socket on "pub" with these forwarding headers.
async fn anonymous_via(server: &TestServer, headers: &[(&str, &str)]) -> Result<Ws, u16> {
    Ws::connect_with(&server.base, "pub", None, headers).await
}

async fn public_doc(server: &TestServer) {
    let alice = server.user("alice").await;
    alice.create_doc("pub").await;
    let mut a = alice.ws("pub").await;
    a.ok(
        "setPermissions",
        None,
        json!({"username": "anonymous", "permissions": "r"}),
    )
    .await;
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_client_is_the_address() {
    let server = TestServer::start_with(|s| {
        s.max_sockets_per_user = 1;
        s.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
    })
    .await;
    public_doc(&server).await;
    let xff = |v| [("x-forwarded-for", v)];
    let _one = anonymous_via(&server, &xff("1.1.1.1")).await.unwrap();
    assert_eq!(
        anonymous_via(&server, &xff("1.1.1.1")).await.err(),
        Some(429)
    );
    // A forged left-most entry does not help; the proxy's entry counts.
    assert_eq!(
        anonymous_via(&server, &xff("9.9.9.9, 1.1.1.1")).await.err(),
        Some(429)
    );
    let _two = anonymous_via(&server, &xff("1.1.1.1, 2.2.2.2"))
        .await
        .unwrap();
    let _three = anonymous_via(&server, &[("forwarded", "for=\"[2001:db8::3]:80\"")])
        .await
        .unwrap();
    assert_eq!(
        anonymous_via(&server, &[("forwarded", "for=2001:db8::3")])
            .await
            .err(),
        Some(429)
    );
}

#[tokio::test]
async fn forwarded_headers_from_untrusted_peers_are_ignored() {
    let server = TestServer::start_with(|s| s.max_sockets_per_user = 1).await;
    public_doc(&server).await;
    let _one = anonymous_via(&server, &[("x-forwarded-for", "1.1.1.1")])
        .await
        .unwrap();
    // Another claimed address from the same peer is still the same client.
    assert_eq!(
        anonymous_via(&server, &[("x-forwarded-for", "2.2.2.2")])
            .await
            .err(),
        Some(429)
    );
}

#[tokio::test]
async fn presence_and_permission_events() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    alice.create_doc("doc").await;
    let mut a = alice.ws("doc").await;
    let a_id = a.hello["clientId"].clone();
    // Bob without `r` is invisible and hears nothing.
    let mut b = bob.ws("doc").await;
    let b_id = b.hello["clientId"].clone();
    let mut a_other = alice.ws("doc").await;
    let joined = a.event("clientJoin").await;
    assert_eq!(joined["clientId"], a_other.hello["clientId"]);
    assert_eq!(
        joined["user"],
        json!({"username": "alice", "provider": "local"})
    );
    assert!(
        b.drain(Duration::from_millis(200)).await.is_empty(),
        "no presence without r"
    );
    // Granting `r`: bob's sockets hear permissionsChanged and who is here;
    // readers hear bob join.
    a.ok(
        "setPermissions",
        None,
        json!({"username": "bob", "permissions": "r"}),
    )
    .await;
    assert_eq!(b.event("permissionsChanged").await["permissions"], "r");
    let mut seen = vec![
        b.event("clientJoin").await["clientId"].clone(),
        b.event("clientJoin").await["clientId"].clone(),
    ];
    seen.sort_by_key(|v| v.to_string());
    let mut expected = vec![a_id.clone(), a_other.hello["clientId"].clone()];
    expected.sort_by_key(|v| v.to_string());
    assert_eq!(seen, expected);
    assert_eq!(a.event("clientJoin").await["clientId"], b_id);
    assert_eq!(a_other.event("clientJoin").await["clientId"], b_id);
    // Only the affected user's sockets get permissionsChanged.
    assert!(a
        .drain(Duration::from_millis(100))
        .await
        .iter()
        .all(|e| e["wa"] != "permissionsChanged"));
    // Leaving: readers hear clientPart, naming the socket that left.
    let a_other_id = a_other.hello["clientId"].clone();
    drop(a_other);
    assert_eq!(a.event("clientPart").await["clientId"], a_other_id);
    // Losing `r`: bob stops hearing presence at once, readers see him part.
    a.ok(
        "setPermissions",
        None,
        json!({"username": "bob", "permissions": ""}),
    )
    .await;
    assert_eq!(b.event("permissionsChanged").await["permissions"], "");
    // What bob heard while he could read (alice's second socket leaving).
    let backlog: Vec<Value> = b.events.drain(..).collect();
    let heard: Vec<(&Value, &Value)> = backlog.iter().map(|e| (&e["wa"], &e["clientId"])).collect();
    assert_eq!(heard, [(&json!("clientPart"), &a_other_id)], "{backlog:?}");
    assert_eq!(a.event("clientPart").await["clientId"], b_id);
    let carol = server.user("carol").await;
    a.ok(
        "setPermissions",
        None,
        json!({"username": "carol", "permissions": "r"}),
    )
    .await;
    let _c = carol.ws("doc").await;
    assert_eq!(a.event("clientJoin").await["user"]["username"], "carol");
    let heard: Vec<Value> = b.drain(Duration::from_millis(200)).await;
    assert!(heard.is_empty(), "bob without r heard {heard:?}");
}

#[tokio::test]
async fn anonymous_entry_changes_reach_every_socket_without_an_entry() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    alice.create_doc("doc").await;
    let mut a = alice.ws("doc").await;
    let mut b = bob.ws("doc").await;
    a.ok(
        "setPermissions",
        None,
        json!({"username": "anonymous", "permissions": "rw"}),
    )
    .await;
    assert_eq!(b.event("permissionsChanged").await["permissions"], "rw");
    let mut anon = Ws::connect(&server.base, "doc", None, None).await.unwrap();
    assert_eq!(anon.hello["permissions"], "rw");
    assert_eq!(
        anon.ok("getPermissions", None, json!({})).await,
        json!([{"username": "anonymous", "provider": "", "permissions": "rw"}])
    );
    assert_eq!(
        a.err(
            "setPermissions",
            None,
            json!({"username": "anonymous", "permissions": "arw"})
        )
        .await
        .0,
        "bad_request"
    );
    a.ok(
        "setPermissions",
        None,
        json!({"username": "anonymous", "permissions": ""}),
    )
    .await;
    assert_eq!(anon.event("permissionsChanged").await["permissions"], "");
    assert_eq!(b.event("permissionsChanged").await["permissions"], "");
}

#[tokio::test]
async fn set_and_get_permissions_rules() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    alice.create_doc("doc").await;
    let mut a = alice.ws("doc").await;
    assert_eq!(
        a.ok(
            "setPermissions",
            None,
            json!({"username": "bob", "provider": "local", "permissions": "wr"})
        )
        .await,
        json!({"username": "bob", "provider": "local", "permissions": "rw"})
    );
    let mut b = bob.ws("doc").await;
    assert_eq!(
        b.ok("getPermissions", None, json!({})).await,
        json!([{"username": "bob", "provider": "local", "permissions": "rw"}])
    );
    assert_eq!(
        b.err(
            "setPermissions",
            None,
            json!({"username": "bob", "permissions": "arw"})
        )
        .await
        .0,
        "not_admin"
    );
    let last = (
        "last_admin".to_string(),
        "A document must keep at least one admin".to_string(),
    );
    assert_eq!(
        a.err(
            "setPermissions",
            None,
            json!({"username": "alice", "permissions": "rw"})
        )
        .await,
        last
    );
    assert_eq!(
        a.err(
            "setPermissions",
            None,
            json!({"username": "alice", "permissions": ""})
        )
        .await,
        last
    );
    for bad in [
        json!({"username": "bob", "permissions": "x"}),
        json!({"permissions": "r"}),
        json!({"username": "bob"}),
        json!({"username": "nobody", "permissions": "r"}),
        json!({"username": 5, "permissions": "r"}),
    ] {
        assert_eq!(
            a.err("setPermissions", None, bad.clone()).await.0,
            "bad_request",
            "{bad}"
        );
    }
    // With a second admin, alice may step down.
    a.ok(
        "setPermissions",
        None,
        json!({"username": "bob", "permissions": "arw"}),
    )
    .await;
    a.ok(
        "setPermissions",
        None,
        json!({"username": "alice", "permissions": "r"}),
    )
    .await;
    assert_eq!(a.event("permissionsChanged").await["permissions"], "r");
    let list = b.ok("getPermissions", None, json!({})).await;
    assert_eq!(list.as_array().unwrap().len(), 2);
}

/// A socket that never reads (with a small receive buffer, so the kernel
/// does not absorb megabytes first): presence events overflow its queue
/// (256 frames), and it is closed with 1008 `too slow to read events`,
/// while a socket that reads on the same document is answered throughout.
/// The close frame used to wait behind the full queue and never came.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_whose_queue_overflows_is_closed_with_1008_and_others_are_unaffected() {
    // Pings off (an hour apart): a socket that never reads never answers
    // them either, and would be dropped as half-open before it overflows.
    let server = TestServer::start_with(|s| s.ws_ping_interval = 3600).await;
    let alice = server.user("alice").await;
    alice.create_doc("doc").await;
    let mut reader = alice.ws("doc").await;
    let (mut idle, idle_id) = never_reading_socket(&server, &alice.cookie, "doc").await;
    // Each socket opened and dropped is a clientJoin and a clientPart. The
    // reader hears the idle socket part once it is evicted; the idle socket
    // must then read its close frame soon (the server waits 10 s for it).
    churn_until_evicted(&alice, "doc", &mut reader, (&mut idle, &idle_id)).await;
    let r = reader.request("getPermissions", None, json!({})).await;
    assert_eq!(r["reply"][0]["permissions"], "arw", "{r}");
}
/// Each action reads its own options: a wrong shape is `bad_request` naming
/// the field, judged after the caller's standing (anonymous callers hear
/// `not_logged_in` whatever options they sent), and changes nothing.
#[tokio::test]
async fn options_are_read_per_action() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    alice.create_doc("doc").await;
    let mut a = alice.ws("doc").await;
    let bad = |text: &str| ("bad_request".to_string(), text.to_string());
    for (wa, options, text) in [
        ("getInvites", json!([1]), "options must be an object"),
        ("createInvite", json!("r"), "options must be an object"),
        ("checkInvite", Value::Null, "key must be a string"),
        ("removeInvite", json!({"key": 7}), "key must be a string"),
        (
            "getInvites",
            json!({"limit": 0}),
            "limit must be an integer from 1 to 1000",
        ),
        (
            "setPermissions",
            json!({"username": 5, "permissions": "r"}),
            "username must be a string",
        ),
        (
            "setPermissions",
            json!({"permissions": "r"}),
            "username is required",
        ),
    ] {
        assert_eq!(
            a.err(wa, None, options.clone()).await,
            bad(text),
            "{wa} {options}"
        );
    }
    assert!(a
        .ok("getInvites", None, json!({}))
        .await
        .as_array()
        .unwrap()
        .is_empty());
    // Options an action does not take are ignored.
    assert_eq!(
        a.ok("getPermissions", None, json!({"whatever": [1]})).await[0]["permissions"],
        "arw"
    );
    a.ok(
        "setPermissions",
        None,
        json!({"username": "anonymous", "provider": "", "permissions": "r"}),
    )
    .await;
    let mut anon = Ws::connect(&server.base, "doc", None, None).await.unwrap();
    assert_eq!(
        anon.err("createInvite", None, json!({"maxAge": 0})).await.0,
        "not_logged_in"
    );
}

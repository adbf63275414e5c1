//! Operating the server (docs/deploy.md): readiness, Prometheus metrics on
//! their own listener, JSON logs that carry no secrets. Each test runs the
//! real binary, since logging and the metrics recorder are process-wide.

use crate::common::metrics::{sample, scrape};
use crate::common::mount::{fill, tmpfs};
use crate::common::process::{login, register, Proc};
use crate::common::{wait_until, Call, Ws};
use serde_json::{json, Value};

#[tokio::test]
async fn metrics_are_served_on_their_own_listener_with_bounded_labels() {
    let dir = tempfile::tempdir().unwrap();
    let server = Proc::start_logged(
        dir.path(),
        &[
            "--metrics-listen",
            "127.0.0.1:0",
            "--max-sockets-per-user",
            "2",
        ],
        &[],
    )
    .await;
    let metrics = server.metrics_url().await;
    assert!(!metrics.contains(&server.base));
    // Never on the public listener, and not read as a document there.
    let public = reqwest::get(server.url("/metrics")).await.unwrap();
    assert_eq!(public.status(), 404);

    let alice = register(&server.base, "alice-the-admin").await;
    let bob = register(&server.base, "bob-the-guest").await;
    alice.create_doc("secret-doc-name").await;
    let mut a = alice.ws("secret-doc-name").await;
    let mut b = bob.ws("secret-doc-name").await;
    let invite = a.ok("createInvite", None, json!({})).await;
    let key = invite["key"].as_str().unwrap().to_string();
    b.ok("acceptInvite", None, json!({"key": key})).await;
    let wrong = "0".repeat(64);
    b.err("acceptInvite", None, json!({"key": wrong})).await;
    let removable = a.ok("createInvite", None, json!({})).await;
    a.ok("removeInvite", None, json!({"key": removable["key"]}))
        .await;
    a.ok("createInvite", None, json!({"maxAge": 1})).await;
    // A third socket of alice's is over --max-sockets-per-user.
    let _second = alice.ws("secret-doc-name").await;
    let third = Ws::connect(&server.base, "secret-doc-name", Some(&alice.cookie), None).await;
    assert!(third.is_err(), "the third socket must be refused");

    let text = scrape(&metrics).await;
    let invites = |event: &str, outcome: &str| {
        sample(
            &text,
            &format!("keystrate_invites_total{{event=\"{event}\",outcome=\"{outcome}\"}}"),
        )
    };
    assert_eq!(invites("created", "ok"), Some(3.0), "{text}");
    assert_eq!(invites("accepted", "ok"), Some(1.0), "{text}");
    assert_eq!(invites("accepted", "invalid_key"), Some(1.0), "{text}");
    assert_eq!(invites("removed", "ok"), Some(1.0), "{text}");
    assert_eq!(
        sample(&text, "keystrate_websockets_open"),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "keystrate_refusals_total{limit=\"max_sockets_per_user\"}"
        ),
        Some(1.0),
        "{text}"
    );
    for series in [
        "keystrate_ws_request_seconds_count{action=\"createInvite\"}",
        "keystrate_http_request_seconds_count{method=\"POST\",route=\"/api/documents\",status=\"201\"}",
        "keystrate_http_request_seconds_count{method=\"GET\",route=\"/{doc}/ws\",status=\"101\"}",
        "keystrate_storage_flush_seconds_count",
        "keystrate_password_hashing_queue",
    ] {
        assert!(sample(&text, series).is_some(), "{series} missing:\n{text}");
    }
    // Histograms with buckets, not summaries.
    assert!(
        text.contains("keystrate_ws_request_seconds_bucket{action=\"createInvite\",le=\"0.01\"}")
    );
    // Labels never name documents, users or keys.
    for secret in ["secret-doc-name", "alice-the-admin", "bob-the-guest", &key] {
        assert!(!text.contains(secret), "{secret} in the metrics");
    }

    // The short invite expires and is counted; closed sockets leave the gauge.
    drop((a, b, _second));
    wait_until("the invite expired and the sockets closed", || {
        let metrics = metrics.clone();
        async move {
            let text = scrape(&metrics).await;
            sample(
                &text,
                "keystrate_invites_total{event=\"expired\",outcome=\"ok\"}",
            ) == Some(1.0)
                && sample(&text, "keystrate_websockets_open") == Some(0.0)
        }
    })
    .await;
    server.stop();
}

#[tokio::test]
async fn without_the_flag_no_metrics_listener_is_announced() {
    let dir = tempfile::tempdir().unwrap();
    let server = Proc::start_logged(dir.path(), &[], &[]).await;
    let public = reqwest::get(server.url("/metrics")).await.unwrap();
    assert_eq!(public.status(), 404);
    // The probes' paths are routes, never documents.
    let alice = register(&server.base, "alice").await;
    for id in ["ready", "health", "metrics"] {
        let r = alice
            .http
            .post(server.url("/api/documents"))
            .json(&json!({ "id": id }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{id}");
    }
    let stdout = server.stdout.lock().unwrap().clone();
    assert!(stdout
        .iter()
        .any(|l| l.starts_with("keystrate listening on")));
    assert!(!stdout.iter().any(|l| l.contains("metrics")), "{stdout:?}");
    server.stop();
}

/// Every line on stderr is one JSON object; request lines carry the span's
/// fields; and no password, session token, invite key or API key secret
/// appears anywhere, even at `debug`, over a run of every kind of request
/// that carries one.
#[tokio::test]
async fn json_logs_carry_request_fields_and_no_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let server = Proc::start_logged(
        dir.path(),
        &["--log-format", "json"],
        &[("RUST_LOG", "debug")],
    )
    .await;
    let mut secrets: Vec<String> = vec!["correct horse".into()];
    let alice = register(&server.base, "alice").await;
    let bob = register(&server.base, "bob").await;
    secrets.extend([alice.cookie.clone(), bob.cookie.clone()]);
    alice.create_doc("doc").await;
    let mut a = alice.ws("doc").await;
    let invite = a.ok("createInvite", None, json!({})).await;
    let invite_key = invite["key"].as_str().unwrap().to_string();
    secrets.push(invite_key.clone());
    // The invite page and its acceptance carry the key in the URL.
    let page = bob
        .http
        .get(server.url(&format!("/doc/?acceptInvite={invite_key}")))
        .send()
        .await
        .unwrap();
    assert!(page.status().is_success() || page.status().is_redirection());
    let mut b = bob.ws("doc").await;
    b.ok("checkInvite", None, json!({"key": invite_key})).await;
    b.ok("acceptInvite", None, json!({"key": invite_key})).await;
    // An app key, used in the query string, as a Bearer token and as Basic.
    let (id, secret) = alice.app_key("doc", "ci").await;
    secrets.push(secret.clone());
    let bearer = format!("{id}/{secret}");
    let http = reqwest::Client::new();
    for request in [
        http.get(server.url(&format!("/invites_api?key={bearer}"))),
        http.post(server.url("/invites_api")).bearer_auth(&bearer),
        http.get(server.url("/v1/apps/doc/invites"))
            .basic_auth(&id, Some(&secret)),
    ] {
        let r = request.send().await.unwrap();
        assert!(r.status().is_success(), "{} {}", r.url(), r.status());
        if let Ok(body) = r.json::<Value>().await {
            if let Some(key) = body["key"].as_str() {
                secrets.push(key.to_string());
            }
        }
    }
    // A wrong password, a password change, and a logout.
    let wrong = reqwest::Client::new()
        .post(server.url("/auth/login"))
        .json(&json!({"username": "alice", "password": "wrong battery staple"}))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    secrets.push("wrong battery staple".into());
    let changed = bob
        .http
        .post(server.url("/auth/password"))
        .json(&json!({"password": "correct horse", "newPassword": "new staple horse"}))
        .send()
        .await
        .unwrap();
    secrets.push("new staple horse".into());
    assert!(changed.status().is_success(), "{}", changed.status());
    let out = alice
        .http
        .post(server.url("/auth/logout"))
        .send()
        .await
        .unwrap();
    assert!(out.status().is_success(), "{}", out.status());
    drop((a, b));

    let lines = server.stop_logged();
    assert!(lines.len() > 20, "too few log lines: {lines:?}");
    let logs: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let created_doc = logs
        .iter()
        .find(|l| l["span"]["route"] == "/api/documents" && l["fields"]["message"] == "request")
        .expect("a request line for POST /api/documents");
    assert_eq!(created_doc["span"]["method"], "POST");
    assert_eq!(created_doc["span"]["client"], "127.0.0.1");
    assert_eq!(created_doc["span"]["user"], "alice");
    assert_eq!(created_doc["fields"]["status"], 201);
    assert!(created_doc["fields"]["latency_ms"].as_f64().unwrap() >= 0.0);
    assert!(logs
        .iter()
        .any(|l| l["span"]["route"] == "/{doc}" && l["fields"]["message"] == "request"));
    // Spans nest: the connection (peer address), the request, and for a
    // WebSocket the socket (document, id) and each request on it (action).
    let spans = |l: &Value| -> Vec<Value> { l["spans"].as_array().cloned().unwrap_or_default() };
    let named = |l: &Value, name: &str| spans(l).into_iter().find(|s| s["name"] == name);
    let connection = named(created_doc, "connection").expect("the connection's span");
    assert!(
        connection["peer"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:"),
        "{connection}"
    );
    let create = logs
        .iter()
        .find(|l| l["span"]["name"] == "ws_request" && l["span"]["action"] == "createInvite")
        .expect("a line inside alice's createInvite");
    assert_eq!(create["span"]["doc"], "doc");
    let names: Vec<Value> = spans(create).iter().map(|s| s["name"].clone()).collect();
    assert_eq!(
        names,
        ["connection", "request", "socket", "ws_request"],
        "{create}"
    );
    let upgrade = named(create, "request").unwrap();
    assert_eq!(upgrade["route"], "/{doc}/ws");
    assert_eq!(upgrade["user"], "alice");
    assert_eq!(upgrade["client"], "127.0.0.1");
    let socket = named(create, "socket").unwrap();
    assert_eq!(socket["doc"], "doc");
    assert_eq!(socket["id"].as_str().map(str::len), Some(16), "{socket}");
    assert!(logs.iter().any(|l| l["span"]["action"] == "acceptInvite"
        && named(l, "request").is_some_and(|r| r["user"] == "bob")));
    let all = lines.join("\n");
    for secret in &secrets {
        assert!(!all.contains(secret.as_str()), "{secret:?} was logged");
    }
}

/// `/ready` writes through to the disk: on a full disk it answers 503 while
/// `/health` still answers 200. sled refuses every write after a failed one,
/// so readiness stays 503 until a restart, which then answers 200 with the
/// data intact once there is space again.
#[tokio::test]
async fn ready_follows_storage_and_health_stays_live() {
    let dir = tempfile::tempdir().unwrap();
    let test = "ready_follows_storage_and_health_stays_live";
    let Some(_mount) = tmpfs(test, dir.path(), "size=24m") else {
        return;
    };
    let data = dir.path().join("data");
    let server = Proc::start_logged(&data, &[], &[]).await;
    let ready = |server: &Proc| {
        let url = server.url("/ready");
        async move { reqwest::get(url).await.unwrap().status() }
    };
    assert_eq!(ready(&server).await, 200);
    let alice = register(&server.base, "alice").await;
    alice.create_doc("doc").await;
    let filler = dir.path().join("filler");
    fill(&filler);
    wait_until("/ready answers 503 on a full disk", || async {
        ready(&server).await == 503
    })
    .await;
    let health = reqwest::get(server.url("/health")).await.unwrap();
    assert_eq!(health.status(), 200);
    drop(server);
    std::fs::remove_file(&filler).unwrap();
    let server = Proc::start_logged(&data, &[], &[]).await;
    assert_eq!(ready(&server).await, 200);
    let alice = login(&server.base, "alice").await;
    let docs = alice.get("/api/documents").value().await;
    assert!(docs.to_string().contains("\"doc\""), "{docs}");
    server.stop();
}

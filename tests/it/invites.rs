//! The invite operations (docs/protocol.md, "Invites") over the real WebSocket RPC:
//! every option's default and bound, every error code, validity, expiry,
//! demotion, cross-document `d`, and concurrent accepts.

use crate::common::*;
use serde_json::{json, Value};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

async fn setup() -> (TestServer, User, User) {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    alice.create_doc("doc").await;
    (server, alice, bob)
}

fn ms(ts: &Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(ts.as_str().unwrap())
        .unwrap()
        .timestamp_millis()
}

#[tokio::test]
async fn create_defaults_and_wire_shape() {
    let (_server, alice, _bob) = setup().await;
    let mut a = alice.ws("doc").await;
    let inv = a.ok("createInvite", None, json!({})).await;
    let key = inv["key"].as_str().unwrap();
    assert_eq!(key.len(), 64);
    assert!(key
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
    assert_eq!(inv["webstrateId"], "doc");
    assert_eq!(inv["permissions"], "r");
    assert_eq!(inv["maxUses"], Value::Null);
    assert_eq!(inv["uses"], 0);
    assert_eq!(
        inv["createdBy"],
        json!({"username": "alice", "provider": "local"})
    );
    let created = inv["createdAt"].as_str().unwrap();
    assert!(created.ends_with('Z') && created.len() == 24, "{created}");
    assert_eq!(ms(&inv["expiresAt"]) - ms(&inv["createdAt"]), 604_800_000);
    assert!(inv.get("acceptedBy").is_none(), "acceptors only in get");
    // Omitted options behave like an empty object.
    let r = a.request("createInvite", None, Value::Null).await;
    assert_eq!(r["reply"]["permissions"], "r");
}

#[tokio::test]
async fn create_option_bounds() {
    let (_server, alice, _bob) = setup().await;
    let mut a = alice.ws("doc").await;
    for (options, expires_in) in [
        (json!({"maxAge": 1}), 1_000),
        (json!({"maxAge": 2_592_000}), 2_592_000_000i64),
        (json!({"maxAge": "300"}), 300_000),
    ] {
        let inv = a.ok("createInvite", None, options.clone()).await;
        assert_eq!(
            ms(&inv["expiresAt"]) - ms(&inv["createdAt"]),
            expires_in,
            "{options}"
        );
    }
    for (perm, canonical) in [
        ("r", "r"),
        ("w", "rw"),
        ("wr", "rw"),
        ("a", "arw"),
        ("raw", "arw"),
    ] {
        let inv = a
            .ok("createInvite", None, json!({"permissions": perm}))
            .await;
        assert_eq!(inv["permissions"], canonical);
    }
    for uses in [1, 1_000_000] {
        let inv = a.ok("createInvite", None, json!({"maxUses": uses})).await;
        assert_eq!(inv["maxUses"], uses);
    }
    let bad = [
        (
            json!({"maxAge": 0}),
            "maxAge must be an integer from 1 to 2592000",
        ),
        (
            json!({"maxAge": 2_592_001}),
            "maxAge must be an integer from 1 to 2592000",
        ),
        (
            json!({"maxAge": -5}),
            "maxAge must be an integer from 1 to 2592000",
        ),
        (
            json!({"maxAge": 1.5}),
            "maxAge must be an integer from 1 to 2592000",
        ),
        (
            json!({"maxAge": "12a"}),
            "maxAge must be an integer from 1 to 2592000",
        ),
        (
            json!({"maxAge": ""}),
            "maxAge must be an integer from 1 to 2592000",
        ),
        (
            json!({"maxUses": 0}),
            "maxUses must be null or an integer from 1 to 1000000",
        ),
        (
            json!({"maxUses": 1_000_001}),
            "maxUses must be null or an integer from 1 to 1000000",
        ),
        (
            json!({"permissions": ""}),
            "permissions must grant at least one of \"r\", \"w\", \"a\"",
        ),
        (
            json!({"permissions": "rx"}),
            "permissions must be letters from \"arw\", got \"rx\"",
        ),
        (
            json!({"permissions": "rr"}),
            "permissions must not repeat a letter, got \"rr\"",
        ),
        (
            json!({"permissions": 3}),
            "permissions must be a string such as \"r\", \"rw\" or \"arw\"",
        ),
        (
            json!({"maxage": 5}),
            "unknown option \"maxage\"; options are permissions, maxAge, maxUses",
        ),
        (json!([1]), "options must be an object"),
    ];
    for (options, text) in bad {
        assert_eq!(
            a.err("createInvite", None, options.clone()).await,
            ("bad_request".to_string(), text.to_string()),
            "{options}"
        );
    }
    // Nothing was created by the rejected requests.
    let all = a.ok("getInvites", None, json!({"all": true})).await;
    assert_eq!(all.as_array().unwrap().len(), 3 + 5 + 2);
}

#[tokio::test]
async fn non_admins_and_anonymous_cannot_manage_invites() {
    let (server, alice, bob) = setup().await;
    let mut a = alice.ws("doc").await;
    a.ok(
        "setPermissions",
        None,
        json!({"username": "bob", "permissions": "rw"}),
    )
    .await;
    let mut b = bob.ws("doc").await;
    let not_admin = (
        "not_admin".to_string(),
        "Need admin permissions to manage invites. User only has rw on doc.".to_string(),
    );
    assert_eq!(b.err("createInvite", None, json!({})).await, not_admin);
    assert_eq!(b.err("getInvites", None, json!({})).await, not_admin);
    let inv = a.ok("createInvite", None, json!({})).await;
    assert_eq!(
        b.err("removeInvite", None, json!({"key": inv["key"]}))
            .await,
        not_admin
    );

    // Anonymous sockets may connect to a public document, but never handle invites.
    a.ok(
        "setPermissions",
        None,
        json!({"username": "anonymous", "provider": "", "permissions": "r"}),
    )
    .await;
    let mut anon = Ws::connect(&server.base, "doc", None, None).await.unwrap();
    assert_eq!(anon.hello["user"], Value::Null);
    assert_eq!(anon.hello["permissions"], "r");
    let nli = (
        "not_logged_in".to_string(),
        "Must be logged in to handle invites".to_string(),
    );
    for wa in [
        "createInvite",
        "checkInvite",
        "acceptInvite",
        "getInvites",
        "removeInvite",
    ] {
        assert_eq!(
            anon.err(wa, None, json!({"key": inv["key"]})).await,
            nli,
            "{wa}"
        );
    }
}

#[tokio::test]
async fn check_accept_and_distinct_use_counting() {
    let (server, alice, bob) = setup().await;
    let carol = server.user("carol").await;
    let mut a = alice.ws("doc").await;
    let inv = a
        .ok(
            "createInvite",
            None,
            json!({"permissions": "rw", "maxUses": 2}),
        )
        .await;
    let key = inv["key"].clone();
    let mut b = bob.ws("doc").await;
    let checked = b.ok("checkInvite", None, json!({"key": key})).await;
    assert_eq!(checked["key"], key);
    assert_eq!(checked["uses"], 0);
    assert_eq!(b.ok("acceptInvite", None, json!({"key": key})).await, "rw");
    let changed = b.event("permissionsChanged").await;
    assert_eq!(
        changed,
        json!({"wa": "permissionsChanged", "d": "doc", "permissions": "rw"})
    );
    // Accepting again is idempotent and consumes nothing.
    assert_eq!(b.ok("acceptInvite", None, json!({"key": key})).await, "rw");
    let mut c = carol.ws("doc").await;
    assert_eq!(c.ok("acceptInvite", None, json!({"key": key})).await, "rw");
    let listed = a.ok("getInvites", None, json!({})).await;
    assert_eq!(
        listed,
        json!([]),
        "used up invites are no longer valid for others"
    );
    // Used up for a third user, still valid for those who accepted.
    let dave = server.user("dave").await;
    let mut d = dave.ws("doc").await;
    let used_up = (
        "used_up".to_string(),
        "Invitation has been used up".to_string(),
    );
    assert_eq!(
        d.err("checkInvite", None, json!({"key": key})).await,
        used_up
    );
    assert_eq!(
        d.err("acceptInvite", None, json!({"key": key})).await,
        used_up
    );
    assert_eq!(
        b.ok("checkInvite", None, json!({"key": key})).await["uses"],
        2
    );
    // The record keeps who accepted.
    let record = server
        .engine()
        .store()
        .invite("doc", key.as_str().unwrap())
        .unwrap()
        .unwrap();
    let who: Vec<&str> = record
        .accepted_by
        .iter()
        .map(|a| a.user.username.as_str())
        .collect();
    assert_eq!(who, ["bob", "carol"]);
}

#[tokio::test]
async fn accept_merges_and_never_lowers() {
    let (_server, alice, bob) = setup().await;
    let mut a = alice.ws("doc").await;
    a.ok(
        "setPermissions",
        None,
        json!({"username": "bob", "permissions": "rw"}),
    )
    .await;
    let read = a
        .ok("createInvite", None, json!({"permissions": "r"}))
        .await;
    let mut b = bob.ws("doc").await;
    assert_eq!(
        b.ok("acceptInvite", None, json!({"key": read["key"]}))
            .await,
        "rw"
    );
    let admin = a
        .ok("createInvite", None, json!({"permissions": "a"}))
        .await;
    assert_eq!(
        b.ok("acceptInvite", None, json!({"key": admin["key"]}))
            .await,
        "arw"
    );
    // An invite's own creator accepting it keeps admin.
    assert_eq!(
        a.ok("acceptInvite", None, json!({"key": read["key"]}))
            .await,
        "arw"
    );
}

#[tokio::test]
async fn get_lists_own_or_all_with_acceptors() {
    let (server, alice, bob) = setup().await;
    let mut a = alice.ws("doc").await;
    a.ok(
        "setPermissions",
        None,
        json!({"username": "bob", "permissions": "arw"}),
    )
    .await;
    let mine = a.ok("createInvite", None, json!({})).await;
    let mut b = bob.ws("doc").await;
    let theirs = b.ok("createInvite", None, json!({})).await;
    let own = a.ok("getInvites", None, json!({})).await;
    assert_eq!(own.as_array().unwrap().len(), 1);
    assert_eq!(own[0]["key"], mine["key"]);
    let all = a.ok("getInvites", None, json!({"all": true})).await;
    let keys: Vec<&Value> = all.as_array().unwrap().iter().map(|i| &i["key"]).collect();
    assert_eq!(keys, [&mine["key"], &theirs["key"]]);
    let carol = server.user("carol").await;
    let mut c = carol.ws("doc").await;
    c.ok("acceptInvite", None, json!({"key": mine["key"]}))
        .await;
    let own = a.ok("getInvites", None, json!({})).await;
    assert_eq!(own[0]["uses"], 1);
    assert_eq!(own[0]["acceptedBy"][0]["username"], "carol");
    assert!(own[0]["acceptedBy"][0]["at"]
        .as_str()
        .unwrap()
        .ends_with('Z'));
    assert_eq!(
        a.err("getInvites", None, json!({"all": "yes"})).await.0,
        "bad_request"
    );
}

#[tokio::test]
async fn get_pages_through_every_invite_and_bounds_acceptors() {
    let (server, alice, _bob) = setup().await;
    let mut a = alice.ws("doc").await;
    let mut created = Vec::new();
    for _ in 0..7 {
        created.push(a.ok("createInvite", None, json!({})).await["key"].clone());
    }
    // The default page holds all seven, oldest first.
    let listed = a.ok("getInvites", None, json!({})).await;
    let keys = |page: &Value| -> Vec<Value> {
        page.as_array()
            .unwrap()
            .iter()
            .map(|i| i["key"].clone())
            .collect()
    };
    let all_keys = keys(&listed);
    assert_eq!(all_keys.len(), 7);
    let mut sorted = created.clone();
    sorted.sort_by_key(|k| all_keys.iter().position(|l| l == k));
    assert_eq!(sorted, all_keys, "every created invite listed once");
    // Pages of three: 3, 3, 1, each continuing after the previous page's
    // last invite (passed as the invite object itself).
    let mut paged = Vec::new();
    let mut after = Value::Null;
    for expected in [3, 3, 1] {
        let page = a
            .ok("getInvites", None, json!({"limit": 3, "after": after}))
            .await;
        assert_eq!(page.as_array().unwrap().len(), expected, "{page}");
        paged.extend(keys(&page));
        after = page.as_array().unwrap().last().unwrap().clone();
    }
    let empty = a
        .ok("getInvites", None, json!({"limit": 3, "after": after}))
        .await;
    assert_eq!(empty, json!([]));
    assert_eq!(paged, all_keys);
    for bad in [
        json!({"limit": 0}),
        json!({"limit": 1001}),
        json!({"limit": "x"}),
        json!({"after": "nonsense"}),
        json!({"after": {"createdAt": "yesterday", "key": created[0]}}),
    ] {
        let (code, text) = a.err("getInvites", None, bad.clone()).await;
        assert_eq!(code, "bad_request", "{bad}: {text}");
    }
    // Over HTTP the listing says where the next page starts.
    let mut paged = Vec::new();
    let mut url = alice.url("/v1/apps/doc/invites?limit=3");
    loop {
        let page: Value = alice.http.get(&url).value().await;
        paged.extend(keys(&page["invites"]));
        match page["next"].as_str() {
            Some(next) => url = alice.url(&format!("/v1/apps/doc/invites?limit=3&after={next}")),
            None => break,
        }
    }
    assert_eq!(paged, all_keys);

    // An unlimited invite accepted by 22 users lists its 20 latest
    // acceptors and counts all 22.
    let key = created[0].clone();
    let mut acceptors = Vec::new();
    for i in 0..22 {
        let name = format!("reader{i:02}");
        let user = server.user(&name).await;
        let mut ws = user.ws("doc").await;
        ws.ok("acceptInvite", None, json!({"key": key})).await;
        acceptors.push(name);
    }
    let page = a.ok("getInvites", None, json!({"limit": 1})).await;
    assert_eq!(page[0]["key"], key);
    assert_eq!(page[0]["uses"], 22);
    let listed: Vec<&str> = page[0]["acceptedBy"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["username"].as_str().unwrap())
        .collect();
    assert_eq!(listed, acceptors[2..]);
}

#[tokio::test]
async fn a_document_holds_at_most_the_configured_number_of_invites() {
    let server = TestServer::start_with(|s| s.max_invites_per_document = 3).await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    alice.create_doc("doc").await;
    alice.create_doc("other").await;
    let mut a = alice.ws("doc").await;
    a.ok(
        "setPermissions",
        None,
        json!({"username": "bob", "provider": "local", "permissions": "arw"}),
    )
    .await;
    let mut b = bob.ws("doc").await;
    let first = a.ok("createInvite", None, json!({})).await;
    a.ok("createInvite", None, json!({"maxAge": 1})).await;
    b.ok("createInvite", None, json!({})).await;
    let full = (
        "too_many_invites".to_string(),
        "A document can hold at most 3 invites; remove some or let them expire".to_string(),
    );
    assert_eq!(a.err("createInvite", None, json!({})).await, full);
    assert_eq!(b.err("createInvite", None, json!({})).await, full);
    // Over HTTP too, and nothing was stored by the refusals.
    let r = alice
        .http
        .post(alice.url("/v1/apps/doc/invites"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    let listed = a.ok("getInvites", None, json!({"all": true})).await;
    assert_eq!(listed.as_array().unwrap().len(), 3);
    // Other documents have their own places.
    a.ok("createInvite", Some("other"), json!({})).await;
    // An expiry gives a place back (the one-second invite).
    let mut freed = false;
    for _ in 0..100 {
        if a.request("createInvite", None, json!({}))
            .await
            .get("reply")
            .is_some()
        {
            freed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(freed, "the expired invite's place was never given back");
    assert_eq!(a.err("createInvite", None, json!({})).await, full);
    // So does a removal.
    a.ok("removeInvite", None, json!({"key": first["key"]}))
        .await;
    a.ok("createInvite", None, json!({})).await;
    assert_eq!(a.err("createInvite", None, json!({})).await, full);
    // And a demotion, which drops bob's invite.
    a.ok(
        "setPermissions",
        None,
        json!({"username": "bob", "provider": "local", "permissions": "r"}),
    )
    .await;
    a.ok("createInvite", None, json!({})).await;
    assert_eq!(a.err("createInvite", None, json!({})).await, full);
}

#[tokio::test]
async fn remove_by_creator_or_admin() {
    let (_server, alice, bob) = setup().await;
    let mut a = alice.ws("doc").await;
    a.ok(
        "setPermissions",
        None,
        json!({"username": "bob", "permissions": "arw"}),
    )
    .await;
    let inv = a.ok("createInvite", None, json!({})).await;
    let mut b = bob.ws("doc").await;
    // Another admin may remove it.
    assert_eq!(
        b.ok("removeInvite", None, json!({"key": inv["key"]})).await,
        json!({"acknowledged": true, "deletedCount": 1})
    );
    let failed = (
        "remove_failed".to_string(),
        "Unable to delete invite".to_string(),
    );
    assert_eq!(
        a.err("removeInvite", None, json!({"key": inv["key"]}))
            .await,
        failed
    );
    assert_eq!(
        a.err("removeInvite", None, json!({"key": "zz"})).await,
        failed
    );
    let invalid = (
        "invalid_key".to_string(),
        "Invalid invitation key".to_string(),
    );
    assert_eq!(
        b.err("checkInvite", None, json!({"key": inv["key"]})).await,
        invalid
    );
    assert_eq!(
        a.err("removeInvite", None, json!({})).await.0,
        "bad_request"
    );
}

#[tokio::test]
async fn invalid_keys_and_other_documents() {
    let (_server, alice, bob) = setup().await;
    alice.create_doc("other").await;
    let mut a = alice.ws("doc").await;
    let inv = a.ok("createInvite", None, json!({})).await;
    let mut b = bob.ws("doc").await;
    let invalid = (
        "invalid_key".to_string(),
        "Invalid invitation key".to_string(),
    );
    for key in [
        json!("nope"),
        json!("0".repeat(64)),
        json!(inv["key"].as_str().unwrap().to_uppercase()),
    ] {
        assert_eq!(
            b.err("checkInvite", None, json!({"key": key})).await,
            invalid
        );
        assert_eq!(
            b.err("acceptInvite", None, json!({"key": key})).await,
            invalid
        );
    }
    // A key is only valid for its own document.
    assert_eq!(
        b.err("acceptInvite", Some("other"), json!({"key": inv["key"]}))
            .await,
        invalid
    );
    assert_eq!(
        b.err("checkInvite", Some("missing"), json!({"key": inv["key"]}))
            .await,
        (
            "no_such_document".to_string(),
            "No such document missing".to_string()
        )
    );
    assert_eq!(
        b.err("flyToTheMoon", None, json!({})).await,
        ("unknown_action".to_string(), "Unknown action".to_string())
    );
}

#[tokio::test]
async fn cross_document_requests_follow_the_same_rules() {
    let (_server, alice, bob) = setup().await;
    alice.create_doc("second").await;
    bob.create_doc("bobs").await;
    let mut a = alice.ws("doc").await;
    // Alice, connected to "doc", creates an invite to "second".
    let inv = a
        .ok("createInvite", Some("second"), json!({"permissions": "rw"}))
        .await;
    assert_eq!(inv["webstrateId"], "second");
    let mut b = bob.ws("bobs").await;
    assert_eq!(
        b.ok("acceptInvite", Some("second"), json!({"key": inv["key"]}))
            .await,
        "rw"
    );
    assert_eq!(
        b.ok("getPermissions", Some("second"), json!({})).await,
        json!([{"username": "bob", "provider": "local", "permissions": "rw"}])
    );
    // Bob is not admin of "doc", whichever socket he uses.
    assert_eq!(
        b.err("createInvite", Some("doc"), json!({})).await.0,
        "not_admin"
    );
    assert_eq!(
        a.ok("getInvites", Some("second"), json!({})).await[0]["uses"],
        1
    );
}

#[tokio::test]
async fn a_burst_of_expiries_on_two_documents_is_purged_completely() {
    let (server, alice, _bob) = setup().await;
    alice.create_doc("doc2").await;
    let engine = server.engine();
    let user = engine.session_user(&alice.cookie).unwrap().unwrap();
    let caller = keystrate::engine::Caller::User(user);
    let short = keystrate::engine::options::CreateOptions {
        max_age: 1,
        ..Default::default()
    };
    // More than one purge batch, spread over two documents.
    let mut creations = Vec::new();
    for i in 0..600 {
        let (engine, caller, short) = (engine.clone(), caller.clone(), short.clone());
        let doc = if i % 2 == 0 { "doc" } else { "doc2" };
        creations.push(tokio::spawn(async move {
            engine.create_invite(&caller, doc, &short).await.unwrap()
        }));
    }
    for c in creations {
        c.await.unwrap();
    }
    let mut a = alice.ws("doc").await;
    let kept = a.ok("createInvite", None, json!({"maxAge": 600})).await;
    let store = engine.store();
    // Some of the 600 may be gone already on a slow machine: wait for the
    // end state, however long the burst took (every creation succeeded).
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while store.census().invites != 1 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let census = store.census();
    assert_eq!(census.invites, 1, "every expired invite deleted");
    assert_eq!(census.invite_expiries, 1, "with its expiry entry");
    let kept = store.invite("doc", kept["key"].as_str().unwrap());
    assert!(kept.unwrap().is_some());
}

#[tokio::test]
async fn expired_invites_are_rejected_and_deleted_from_storage() {
    let (server, alice, bob) = setup().await;
    let mut a = alice.ws("doc").await;
    let short = a.ok("createInvite", None, json!({"maxAge": 1})).await;
    let long = a.ok("createInvite", None, json!({"maxAge": 600})).await;
    let store = server.engine().store();
    assert_eq!(store.census().invites, 2);
    assert_eq!(store.census().invite_expiries, 2);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let mut b = bob.ws("doc").await;
    let invalid = (
        "invalid_key".to_string(),
        "Invalid invitation key".to_string(),
    );
    assert_eq!(
        b.err("acceptInvite", None, json!({"key": short["key"]}))
            .await,
        invalid
    );
    // The expiry task deleted the record and every index entry.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while store.census().invites != 1 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stored = |invite: &Value| {
        let key = invite["key"].as_str().unwrap();
        store.invite("doc", key).unwrap().is_some()
    };
    assert!(!stored(&short));
    assert!(stored(&long));
    assert_eq!(store.census().invite_expiries, 1);
    assert_eq!(
        a.ok("getInvites", None, json!({}))
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn demoting_the_creator_drops_their_invites_at_once() {
    let (server, alice, bob) = setup().await;
    let carol = server.user("carol").await;
    let mut a = alice.ws("doc").await;
    a.ok(
        "setPermissions",
        None,
        json!({"username": "bob", "permissions": "arw"}),
    )
    .await;
    let mut b = bob.ws("doc").await;
    let bobs = b
        .ok("createInvite", None, json!({"permissions": "rw"}))
        .await;
    let bobs2 = b.ok("createInvite", None, json!({})).await;
    let alices = a.ok("createInvite", None, json!({})).await;
    a.ok(
        "setPermissions",
        None,
        json!({"username": "bob", "permissions": "r"}),
    )
    .await;
    let store = server.engine().store();
    let stored = |invite: &Value| {
        let key = invite["key"].as_str().unwrap();
        store.invite("doc", key).unwrap().is_some()
    };
    for invite in [&bobs, &bobs2] {
        assert!(!stored(invite), "dropped in the same change");
    }
    assert!(stored(&alices));
    assert_eq!(store.census().invites, 1);
    assert_eq!(store.census().invite_expiries, 1);
    let mut c = carol.ws("doc").await;
    assert_eq!(
        c.err("acceptInvite", None, json!({"key": bobs["key"]}))
            .await
            .0,
        "invalid_key"
    );
    assert_eq!(
        c.ok("acceptInvite", None, json!({"key": alices["key"]}))
            .await,
        "r"
    );
}

#[tokio::test]
async fn removing_the_creators_entry_drops_their_invites() {
    let (server, alice, bob) = setup().await;
    let carol = server.user("carol").await;
    let mut a = alice.ws("doc").await;
    a.ok(
        "setPermissions",
        None,
        json!({"username": "bob", "permissions": "arw"}),
    )
    .await;
    let mut b = bob.ws("doc").await;
    let inv = b.ok("createInvite", None, json!({})).await;
    a.ok(
        "setPermissions",
        None,
        json!({"username": "bob", "permissions": ""}),
    )
    .await;
    let mut c = carol.ws("doc").await;
    assert_eq!(
        c.err("checkInvite", None, json!({"key": inv["key"]}))
            .await
            .0,
        "invalid_key"
    );
    assert_eq!(server.engine().store().census().invites, 0);
}

// Several worker threads, so the accepts really run at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_accepts_grant_exactly_max_uses() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    alice.create_doc("doc").await;
    let mut a = alice.ws("doc").await;
    let k = 5;
    let inv = a
        .ok(
            "createInvite",
            None,
            json!({"permissions": "rw", "maxUses": k}),
        )
        .await;
    let mut sockets = Vec::new();
    for i in 0..24 {
        let user = server.user(&format!("user{i}")).await;
        sockets.push(user.ws("doc").await);
    }
    let key = inv["key"].clone();
    let tasks: Vec<_> = sockets
        .into_iter()
        .map(|mut ws| {
            let key = key.clone();
            tokio::spawn(async move { ws.request("acceptInvite", None, json!({"key": key})).await })
        })
        .collect();
    let mut granted = 0;
    for t in tasks {
        let r = t.await.unwrap();
        match r.get("reply") {
            Some(level) => {
                assert_eq!(level, "rw");
                granted += 1
            }
            None => assert_eq!(r["code"], "used_up", "{r}"),
        }
    }
    assert_eq!(granted, k);
    let perms = a.ok("getPermissions", None, json!({})).await;
    assert_eq!(perms.as_array().unwrap().len(), 1 + k as usize);
    let record = server
        .engine()
        .store()
        .invite("doc", key.as_str().unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(record.accepted_by.len(), k as usize);
}

#[tokio::test]
async fn brute_force_guard_per_user() {
    let (server, alice, bob) = setup().await;
    let carol = server.user("carol").await;
    let mut a = alice.ws("doc").await;
    let inv = a.ok("createInvite", None, json!({})).await;
    let mut b = bob.ws("doc").await;
    for _ in 0..20 {
        assert_eq!(
            b.err("checkInvite", None, json!({"key": "0".repeat(64)}))
                .await
                .0,
            "invalid_key"
        );
    }
    let limited = ("rate_limited".to_string(), "Too many requests".to_string());
    // The 21st attempt in the minute is refused, even with the right key.
    assert_eq!(
        b.err("acceptInvite", None, json!({"key": inv["key"]}))
            .await,
        limited
    );
    // A second socket of the same user is limited too; other users are not.
    let mut b2 = bob.ws("doc").await;
    assert_eq!(
        b2.err("checkInvite", None, json!({"key": inv["key"]}))
            .await,
        limited
    );
    let mut c = carol.ws("doc").await;
    assert_eq!(
        c.ok("acceptInvite", None, json!({"key": inv["key"]})).await,
        "r"
    );
}

/// Sends `frames` without waiting and returns their replies, in any order.
async fn fire(ws: &mut Ws, frames: &[Value]) -> Vec<Value> {
    for f in frames {
        ws.send_raw(Message::text(f.to_string())).await;
    }
    let mut replies = Vec::new();
    while replies.len() < frames.len() {
        let v = next_json(&mut ws.socket).await.expect("reply");
        if v["wa"] == "reply" {
            replies.push(v);
        }
    }
    replies
}

/// `n` frames of action `wa` with `options`, on document `d`.
fn frames(wa: &str, d: &str, options: Value, n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| json!({"wa": wa, "token": format!("{wa}{i}"), "d": d, "options": options}))
        .collect()
}

fn entry(user: &str, level: &str) -> Value {
    json!({"username": user, "provider": "local", "permissions": level})
}

/// A server where alice owns `doc` and bob is a second admin of it with
/// 2,000 invites: demoting bob drops them all in one transaction, which
/// holds the document's lock long enough for bob's own requests, sent just
/// after the demotion, to pass their first admin check and queue behind it.
async fn bob_about_to_be_demoted() -> (TestServer, Ws, Ws, User) {
    let server = TestServer::start_with(|s| s.ws_rate_limit = 100_000).await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    alice.create_doc("doc").await;
    alice.create_doc("home").await;
    // Sockets on another document: deleting `doc` does not close them.
    let mut a = alice.ws("home").await;
    let b = bob.ws("home").await;
    a.ok("setPermissions", Some("doc"), entry("bob", "arw"))
        .await;
    (server, a, b, bob)
}

async fn give_invites(b: &mut Ws) {
    for r in fire(b, &frames("createInvite", "doc", json!({}), 2_000)).await {
        assert!(r.get("reply").is_some(), "{r}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_demoted_admins_queued_changes_are_refused() {
    // Requests that passed the admin check but still waited for the
    // document's lock when a demotion committed must be checked again under
    // the lock. Bob re-grants himself `arw` while alice demotes him: in any
    // order bob ends at `r`, since after the demotion no request of his may
    // act as admin.
    let (_server, mut a, mut b, _bob) = bob_about_to_be_demoted().await;
    for round in 0..3 {
        give_invites(&mut b).await;
        let demote = a.ok("setPermissions", Some("doc"), entry("bob", "r"));
        let regrant = frames("setPermissions", "doc", entry("bob", "arw"), 30);
        let (_, replies) = tokio::join!(demote, fire(&mut b, &regrant));
        for v in replies {
            if let Some(code) = v.get("code") {
                assert_eq!(code, "not_admin", "{v}");
            }
        }
        let perms = a.ok("getPermissions", Some("doc"), json!({})).await;
        let bobs = perms
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["username"] == "bob");
        assert_eq!(bobs.unwrap()["permissions"], "r", "round {round}: {perms}");
        a.ok("setPermissions", Some("doc"), entry("bob", "arw"))
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_demoted_admin_cannot_delete_the_document_after_the_demotion() {
    // Deleting a document and demoting its deleter exclude each other: if
    // the deletion came first the demotion finds no document, and if the
    // demotion came first the deletion finds no admin. Both succeeding
    // means the deletion acted on a stale admin check.
    let (_server, mut a, mut b, bob) = bob_about_to_be_demoted().await;
    give_invites(&mut b).await;
    let demote = a.request("setPermissions", Some("doc"), entry("bob", "r"));
    let delete = bob.http.delete(bob.url("/api/documents/doc")).send();
    let (demoted, deleted) = tokio::join!(demote, delete);
    let deleted = deleted.unwrap().status();
    if demoted.get("reply").is_some() {
        assert_eq!(deleted, 403, "deleted by an admin demoted before it");
    } else {
        assert_eq!(demoted["code"], "no_such_document", "{demoted}");
        assert_eq!(deleted, 204);
    }
}

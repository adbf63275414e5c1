//! `kill -9` at random moments during bursts of acknowledged writes of every
//! kind (invite create / accept / remove, setPermissions, API key creation,
//! identity registration), over several rounds: after a restart every acknowledged change is
//! present and nothing is half-applied.

mod common;
use keystrate::engine::invites::record_key;
#[path = "directory_support/mod.rs"]
#[allow(dead_code)]
mod directory_support;
use common::process::{login, Proc};
use common::*;
use rand::Rng;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;

/// What the clients were told, and what was in flight when the server died.
#[derive(Default)]
struct Ledger {
    /// Invites acknowledged as created, with whether a removal was acked
    /// (`Some(true)`) or in flight (`Some(false)`).
    invites: HashMap<String, Option<bool>>,
    /// (user, invite) accepts acknowledged.
    accepts: Vec<(String, String)>,
    /// Per target user: last acknowledged level and the one in flight.
    levels: HashMap<String, (String, Option<String>)>,
    /// API key ids acknowledged as created.
    api_keys: Vec<String>,
    /// Identity did:keys acknowledged as registered, with their account.
    identities: Vec<(String, String)>,
}

impl Ledger {
    fn absorb(&mut self, other: Ledger) {
        self.invites.extend(other.invites);
        self.accepts.extend(other.accepts);
        self.levels.extend(other.levels);
        self.api_keys.extend(other.api_keys);
        self.identities.extend(other.identities);
    }
}

const CYCLE: [&str; 3] = ["r", "rw", ""];

/// A request retried while the socket's rate limit refuses it (refused
/// requests change nothing); `None` once the server is gone.
async fn send(ws: &mut Ws, wa: &str, options: Value) -> Option<Value> {
    loop {
        let r = ws.try_request(wa, None, options.clone()).await?;
        if r["code"] != "rate_limited" {
            return Some(r);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn writer(admin: User, guest: User, target: String) -> Ledger {
    let mut ledger = Ledger::default();
    let mut a = admin.ws("doc").await;
    let mut g = guest.ws("doc").await;
    ledger.levels.insert(target.clone(), (String::new(), None));
    for i in 0.. {
        let Some(r) = send(&mut a, "createInvite", json!({"maxUses": 3})).await else {
            break;
        };
        let key = r["reply"]["key"]
            .as_str()
            .unwrap_or_else(|| panic!("create: {r}"))
            .to_string();
        ledger.invites.insert(key.clone(), None);
        let Some(r) = send(&mut g, "acceptInvite", json!({"key": key})).await else {
            break;
        };
        assert_eq!(r["reply"], "r", "{r}");
        ledger.accepts.push((guest.name.clone(), key.clone()));
        if i % 2 == 0 {
            ledger.invites.insert(key.clone(), Some(false));
            let Some(r) = send(&mut a, "removeInvite", json!({"key": key})).await else {
                break;
            };
            assert_eq!(r["reply"]["deletedCount"], 1, "{r}");
            ledger.invites.insert(key, Some(true));
        }
        let next = CYCLE[i % 3].to_string();
        ledger.levels.get_mut(&target).unwrap().1 = Some(next.clone());
        let options = json!({"username": target, "permissions": next});
        let Some(r) = send(&mut a, "setPermissions", options).await else {
            break;
        };
        assert!(r.get("reply").is_some(), "{r}");
        ledger.levels.insert(target.clone(), (next, None));
    }
    ledger
}

/// API keys over the REST route and identity keys in the key directory,
/// alternating, until the server dies.
async fn program_writer(admin: User) -> Ledger {
    use directory_support::{Identity, Wallet};
    let mut ledger = Ledger::default();
    let directory = directory_support::Directory {
        base: admin.base.clone(),
        http: reqwest::Client::new(),
    };
    for i in 0.. {
        let created = admin
            .http
            .post(admin.url("/v1/apps/doc/keys"))
            .json(&json!({"name": format!("key {i}")}))
            .send()
            .await;
        let Ok(response) = created else { break };
        let Ok(body) = response.json::<Value>().await else {
            break;
        };
        ledger.api_keys.push(
            body["key"]["_id"]
                .as_str()
                .unwrap_or_else(|| panic!("key: {body}"))
                .to_string(),
        );
        let (wallet, identity) = (Wallet::generate(), Identity::generate());
        let request = directory
            .http
            .post(format!("{}/identity", admin.base))
            .json(&json!({"cacao": wallet.cacao(&identity)}));
        let Ok(response) = request.send().await else {
            break;
        };
        let Ok(body) = response.json::<Value>().await else {
            break;
        };
        assert_eq!(body["status"], "SUCCESS", "{body}");
        ledger
            .identities
            .push((identity.public_key().to_string(), wallet.account()));
    }
    ledger
}

#[tokio::test]
async fn kill_9_at_random_points_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::default();
    let mut rng = rand::thread_rng();
    for round in 0..4 {
        // The program writer registers identities as fast as it can.
        let mut p = Proc::start(dir.path(), &["--directory-writes-per-minute", "1000000"]).await;
        let admin = login(&p.base, "admin").await;
        if round == 0 {
            admin.create_doc("doc").await;
        }
        let mut tasks = Vec::new();
        for w in 0..6 {
            let admin = User {
                name: "admin".into(),
                http: admin.http.clone(),
                cookie: admin.cookie.clone(),
                base: p.base.clone(),
            };
            let guest = login(&p.base, &format!("g{round}w{w}")).await;
            let target = format!("t{round}w{w}");
            login(&p.base, &target).await;
            tasks.push(tokio::spawn(writer(admin, guest, target)));
        }
        let programs = User {
            name: "admin".into(),
            http: admin.http.clone(),
            cookie: admin.cookie.clone(),
            base: p.base.clone(),
        };
        let programs = tokio::spawn(program_writer(programs));
        tokio::time::sleep(Duration::from_millis(rng.gen_range(150..900))).await;
        p.kill9();
        for t in tasks.into_iter().chain([programs]) {
            let part = t
                .await
                .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
            ledger.absorb(part);
        }
    }
    assert!(
        ledger.invites.len() > 40,
        "burst too small: {}",
        ledger.invites.len()
    );

    let store = keystrate::store::Store::open(dir.path()).unwrap();
    let invite = |key: &str| -> Option<Value> {
        store
            .invites
            .get(record_key("doc", key))
            .unwrap()
            .map(|v| serde_json::from_slice(&v).unwrap())
    };
    for (key, removal) in &ledger.invites {
        match removal {
            None => assert!(invite(key).is_some(), "acknowledged invite {key} lost"),
            Some(true) => assert!(invite(key).is_none(), "acknowledged removal of {key} lost"),
            Some(false) => {} // removal in flight: either outcome is fine
        }
    }
    for (user, key) in &ledger.accepts {
        if let Some(record) = invite(key) {
            assert!(
                record["accepted_by"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|a| a["user"]["username"] == user.as_str()),
                "acknowledged accept of {key} by {user} lost"
            );
        }
        let entry = store.perms.get(format!("doc\0{user}:local")).unwrap();
        assert_eq!(
            entry.as_deref(),
            Some(&b"r"[..]),
            "{user}'s acknowledged permission lost"
        );
    }
    for (user, (acked, in_flight)) in &ledger.levels {
        let stored = store
            .perms
            .get(format!("doc\0{user}:local"))
            .unwrap()
            .map(|v| String::from_utf8(v.to_vec()).unwrap())
            .unwrap_or_default();
        assert!(
            &stored == acked || Some(&stored) == in_flight.as_ref(),
            "{user}: stored {stored:?}, acknowledged {acked:?}, in flight {in_flight:?}"
        );
    }
    for id in &ledger.api_keys {
        assert!(
            store.keys.get(id).unwrap().is_some(),
            "acknowledged API key {id} lost"
        );
    }
    let identities = store.db.open_tree("dir_identities").unwrap();
    let account_keys = store.db.open_tree("dir_account_keys").unwrap();
    let counts = store.db.open_tree("dir_account_counts").unwrap();
    for (key, account) in &ledger.identities {
        let did = format!("did:key:{key}");
        assert!(
            identities.get(&did).unwrap().is_some(),
            "acknowledged identity {key} lost"
        );
        assert!(
            account_keys
                .get(format!("{account}\0{did}"))
                .unwrap()
                .is_some(),
            "{account} does not list {key}"
        );
        assert!(
            counts.get(account).unwrap().is_some(),
            "{account}'s key count written with the identity"
        );
    }
    // Nothing half-applied: every stored acceptor holds its permission, and
    // every invite's index entries exist.
    for item in store.invites.iter() {
        let (k, v) = item.unwrap();
        let record: Value = serde_json::from_slice(&v).unwrap();
        for a in record["accepted_by"].as_array().unwrap() {
            let user = a["user"]["username"].as_str().unwrap();
            assert!(
                store
                    .perms
                    .get(format!("doc\0{user}:local"))
                    .unwrap()
                    .is_some(),
                "use of {user} counted without its permission"
            );
        }
        // The expiry entry is the deadline, then the record's own key.
        let indexed = store.expiry.iter().keys().any(|i| {
            let i = i.unwrap();
            i.len() == 9 + k.len() && i.ends_with(&k)
        });
        assert!(indexed, "invite {k:?} without its expiry entry");
    }
    assert_eq!(store.invites.len(), store.expiry.len());
}

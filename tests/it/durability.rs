//! `kill -9` at random moments during bursts of acknowledged writes of every
//! kind (invite create / accept / remove, setPermissions, API key creation,
//! identity and directory invite registration, account registration and
//! login), over several rounds: after a restart every acknowledged change is
//! present (accounts log in, old session cookies still work) and nothing is
//! half-applied. The kill points are seeded: `KEYSTRATE_TEST_SEED` replays a
//! run; the seed is printed.

use crate::common::process::{login, register, Proc};
use crate::common::*;
use crate::directory_support;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

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
    /// Directory invite keys acknowledged as registered, per account.
    directory_invites: Vec<(String, String)>,
    /// Accounts acknowledged as registered.
    accounts: Vec<String>,
    /// Session cookies acknowledged (by registration or login), per user.
    sessions: Vec<(String, String)>,
}

impl Ledger {
    fn absorb(&mut self, other: Ledger) {
        self.invites.extend(other.invites);
        self.accepts.extend(other.accepts);
        self.levels.extend(other.levels);
        self.api_keys.extend(other.api_keys);
        self.identities.extend(other.identities);
        self.directory_invites.extend(other.directory_invites);
        self.accounts.extend(other.accounts);
        self.sessions.extend(other.sessions);
    }

    /// A user whose registration (and so session) was acknowledged.
    fn registered(&mut self, user: &User) {
        self.accounts.push(user.name.clone());
        self.sessions.push((user.name.clone(), user.cookie.clone()));
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

/// The admin's socket `a` and the guest's `g` are open before the burst, so
/// an early kill never meets a socket still connecting.
async fn writer(
    mut a: Ws,
    mut g: Ws,
    guest: String,
    target: String,
    acked: Arc<AtomicUsize>,
) -> Ledger {
    let mut ledger = Ledger::default();
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
        acked.fetch_add(1, Ordering::SeqCst);
        let Some(r) = send(&mut g, "acceptInvite", json!({"key": key})).await else {
            break;
        };
        assert_eq!(r["reply"], "r", "{r}");
        ledger.accepts.push((guest.clone(), key.clone()));
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

/// API keys over the REST route, identity and invite keys in the key
/// directory, and new accounts, in turn, until the server dies.
async fn program_writer(admin: User, round: usize, acked: Arc<AtomicUsize>) -> Ledger {
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
        let invite = directory_support::invite_key();
        let mut claims =
            directory_support::claims(&identity, &wallet, &directory.aud(), "register_invite");
        claims["sub"] = json!(invite);
        let id_auth = identity.sign_jwt(&directory_support::jwt_header(), &claims);
        let request = directory
            .http
            .post(format!("{}/invite", admin.base))
            .json(&json!({"idAuth": id_auth}));
        let Ok(response) = request.send().await else {
            break;
        };
        let Ok(body) = response.json::<Value>().await else {
            break;
        };
        assert_eq!(body["status"], "SUCCESS", "{body}");
        ledger.directory_invites.push((wallet.account(), invite));
        acked.fetch_add(1, Ordering::SeqCst);
        // Every few rounds an account (Argon2 is slow: not every time).
        if i % 4 == 0 {
            let created = admin
                .http
                .post(admin.url("/auth/register"))
                .json(&json!({"username": format!("p{round}n{i}"), "password": "correct horse"}))
                .send()
                .await;
            let Ok(response) = created else { break };
            if response.status() == 503 {
                continue; // the hashing pool is busy: nothing was created
            }
            assert_eq!(response.status(), 201);
            let cookie = session_cookie(&response).expect("session cookie");
            ledger.accounts.push(format!("p{round}n{i}"));
            ledger.sessions.push((format!("p{round}n{i}"), cookie));
        }
    }
    ledger
}

#[tokio::test]
async fn kill_9_at_random_points_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::default();
    let seed = std::env::var("KEYSTRATE_TEST_SEED")
        .map(|s| s.parse().expect("KEYSTRATE_TEST_SEED is a number"))
        .unwrap_or_else(|_| rand::random::<u64>());
    eprintln!("kill_9_at_random_points_loses_nothing_acknowledged: KEYSTRATE_TEST_SEED={seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    for round in 0..4 {
        // The program writer registers identities as fast as it can.
        let mut p = Proc::start(dir.path(), &["--directory-writes-per-minute", "1000000"]).await;
        let admin = if round == 0 {
            let admin = register(&p.base, "admin").await;
            admin.create_doc("doc").await;
            admin
        } else {
            login(&p.base, "admin").await
        };
        ledger
            .sessions
            .push((admin.name.clone(), admin.cookie.clone()));
        let acked = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for w in 0..6 {
            let guest = register(&p.base, &format!("g{round}w{w}")).await;
            ledger.registered(&guest);
            let target = format!("t{round}w{w}");
            ledger.registered(&register(&p.base, &target).await);
            let (a, g) = (admin.ws("doc").await, guest.ws("doc").await);
            tasks.push(tokio::spawn(writer(
                a,
                g,
                guest.name,
                target,
                acked.clone(),
            )));
        }
        let programs = User {
            name: "admin".into(),
            http: admin.http.clone(),
            cookie: admin.cookie.clone(),
            base: p.base.clone(),
        };
        let directory_acked = Arc::new(AtomicUsize::new(0));
        let programs = tokio::spawn(program_writer(programs, round, directory_acked.clone()));
        // Killed after a seeded number of acknowledged invites, however
        // fast or slow this machine is.
        let kill_after = rng.gen_range(5..60);
        let deadline = Instant::now() + Duration::from_secs(120);
        while acked.load(Ordering::SeqCst) < kill_after
            || directory_acked.load(Ordering::SeqCst) == 0
        {
            assert!(Instant::now() < deadline, "no progress (seed {seed})");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        p.kill9();
        for t in tasks.into_iter().chain([programs]) {
            let part = t
                .await
                .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
            ledger.absorb(part);
        }
    }

    assert!(ledger.invites.len() >= 20, "every round acknowledged some");

    // Accounts log in, old cookies still name their user, directory invite
    // keys resolve: over HTTP, on a restarted server.
    let p = Proc::start(dir.path(), &[]).await;
    for name in &ledger.accounts {
        login(&p.base, name).await;
    }
    let http = reqwest::Client::new();
    for (name, cookie) in &ledger.sessions {
        let me: Value = http
            .get(p.url("/auth/me"))
            .header("cookie", format!("keystrate_session={cookie}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap_or_else(|e| panic!("{name}'s acknowledged session lost: {e}"));
        assert_eq!(me["username"], name.as_str(), "seed {seed}");
    }
    for (account, invite) in &ledger.directory_invites {
        let body: Value = http
            .get(p.url("/invite"))
            .query(&[("account", account)])
            .value()
            .await;
        assert_eq!(
            body["value"]["inviteKey"],
            invite.as_str(),
            "acknowledged directory invite of {account} lost (seed {seed})"
        );
    }
    p.stop();

    let store = keystrate::store::Store::open(dir.path()).unwrap();
    let invite = |key: &str| store.invite("doc", key).unwrap();
    let level = |user: &str| {
        let stored = store
            .permission("doc", &keystrate::engine::User::local(user))
            .unwrap();
        stored.map(|l| l.as_str().to_string())
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
                record.accepted_by.iter().any(|a| &a.user.username == user),
                "acknowledged accept of {key} by {user} lost"
            );
        }
        assert_eq!(
            level(user).as_deref(),
            Some("r"),
            "{user}'s acknowledged permission lost"
        );
    }
    for (user, (acked, in_flight)) in &ledger.levels {
        let stored = level(user).unwrap_or_default();
        assert!(
            &stored == acked || Some(&stored) == in_flight.as_ref(),
            "{user}: stored {stored:?}, acknowledged {acked:?}, in flight {in_flight:?}"
        );
    }
    for id in &ledger.api_keys {
        assert!(
            store.key(id).unwrap().is_some(),
            "acknowledged API key {id} lost"
        );
    }
    for (key, account) in &ledger.identities {
        let did = format!("did:key:{key}");
        assert!(
            store.identity::<Value>(&did).unwrap().is_some(),
            "acknowledged identity {key} lost"
        );
        assert!(
            store.account_has_key(account, &did).unwrap(),
            "{account} does not list {key}"
        );
        assert!(
            store.account_key_count(account).unwrap() > 0,
            "{account}'s key count written with the identity"
        );
    }
    // Nothing half-applied: every stored acceptor holds its permission, and
    // every invite has its expiry entry.
    let every_deadline = store.due_invites(i64::MAX, usize::MAX).unwrap().due;
    for record in store.invites_on("doc") {
        let record = record.unwrap();
        for a in &record.accepted_by {
            let user = &a.user.username;
            assert!(
                level(user).is_some(),
                "use of {user} counted without its permission"
            );
        }
        assert!(
            every_deadline.contains(&record.reference()),
            "invite {} without its expiry entry",
            record.key
        );
    }
    let census = store.census();
    assert_eq!(census.invites, census.invite_expiries);
}

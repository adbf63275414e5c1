//! End-to-end tests of the pages and of keystrate.js in headless Chromium
//! against the in-process server. Without /usr/bin/chromium they print a
//! SKIP line and pass, unless CI=true.
//!
//! `KEYSTRATE_SCREENSHOTS=1 cargo test --test it browser::` also refreshes
//! docs/screenshots/*.png.

mod webdriver;

use crate::common::*;
use serde_json::{json, Value};
use webdriver::{browser_present, Driver, Session};

/// One browser test at a time: two cores shared with builders, and
/// Chromium instances racing each other make timings flaky.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A browser session logged in as `user`, showing `doc`'s page with the
/// socket greeted.
async fn open_doc(driver: &Driver, server: &TestServer, user: &User, doc: &str) -> Session {
    let s = driver.session().await;
    s.set_session_cookie(&server.base, &user.cookie).await;
    s.goto(&server.url(&format!("/{doc}/"))).await;
    s.js("return webstrate.ready.then(() => true);", json!([]))
        .await;
    s
}

/// Runs an async function body in the page and returns its value; a
/// rejection comes back as `{rejected: {message, code, isError}}`.
async fn call(s: &Session, body: &str) -> Value {
    let script = format!(
        "return (async () => {{ {body} }})().catch(e => ({{rejected: \
         {{message: e.message, code: e.code, isError: e instanceof Error}}}}));"
    );
    s.js(&script, json!([])).await
}

#[tokio::test]
async fn invites_api_from_the_page_context() {
    if !browser_present("invites_api_from_the_page_context") {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().await;
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    alice.create_doc("notes").await;
    alice.create_doc("other-doc").await;
    let driver = Driver::start().await;
    let s = open_doc(&driver, &server, &alice, "notes").await;

    let state = s
        .js(
            "return {id: webstrate.webstrateId, clientId: webstrate.clientId, clients: webstrate.clients,
                     user: {username: webstrate.user.username, provider: webstrate.user.provider,
                            userId: webstrate.user.userId, permissions: webstrate.user.permissions}};",
            json!([]),
        )
        .await;
    assert_eq!(state["id"], "notes");
    assert_eq!(state["clients"], json!([state["clientId"]]));
    assert_eq!(
        state["user"],
        json!({"username": "alice", "provider": "local", "userId": "alice:local", "permissions": "arw"})
    );

    // Record outgoing frames to see that `d` is sent only for other documents.
    s.js(
        "window.sent = []; const send = WebSocket.prototype.send;
         WebSocket.prototype.send = function (f) {
           window.lastSocket = this; sent.push(JSON.parse(f)); return send.call(this, f);
         };",
        json!([]),
    )
    .await;
    let r = call(
        &s,
        "const inv = webstrate.user.invites;
         const created = await inv.create({permissions: 'rw', maxAge: 300, maxUses: 2});
         const checked = await inv.check(created.key);
         const mine = await inv.get();
         const all = await inv.get({all: true});
         const elsewhere = await inv.create({}, 'other-doc');
         const otherMine = await inv.get('other-doc');
         const otherAll = await inv.get({all: true}, 'other-doc');
         const accepted = await inv.accept(created.key);
         const removed = await inv.remove(created.key);
         const afterRemove = await inv.get();
         const removedElsewhere = await inv.remove(elsewhere.key, 'other-doc');
         return {created, checked, mine, all, elsewhere, otherMine, otherAll, accepted, removed,
                 afterRemove, removedElsewhere, frames: sent};",
    )
    .await;
    assert!(r.get("rejected").is_none(), "{r}");
    let key = r["created"]["key"].as_str().unwrap();
    assert_eq!(key.len(), 64);
    assert_eq!(r["created"]["permissions"], "rw");
    assert_eq!(r["created"]["maxUses"], 2);
    assert_eq!(r["checked"]["key"], key);
    assert_eq!(r["mine"].as_array().unwrap().len(), 1);
    assert_eq!(r["all"][0]["key"], key);
    assert_eq!(r["elsewhere"]["webstrateId"], "other-doc");
    assert_eq!(r["elsewhere"]["permissions"], "r");
    assert_eq!(r["otherMine"][0]["key"], r["elsewhere"]["key"]);
    assert_eq!(r["otherAll"].as_array().unwrap().len(), 1);
    assert_eq!(r["accepted"], "arw", "accept never lowers");
    assert_eq!(
        r["removed"],
        json!({"acknowledged": true, "deletedCount": 1})
    );
    assert_eq!(r["afterRemove"], json!([]));
    assert_eq!(r["removedElsewhere"]["deletedCount"], 1);
    let frames = r["frames"].as_array().unwrap();
    assert_eq!(frames.len(), 11);
    // Calls 4, 5, 6 and 10 (0-based) name 'other-doc'; the rest the page's own.
    for (i, f) in frames.iter().enumerate() {
        let expected = if [4, 5, 6, 10].contains(&i) {
            json!("other-doc")
        } else {
            Value::Null
        };
        assert_eq!(
            f.get("d").cloned().unwrap_or(Value::Null),
            expected,
            "frame {i}: {f}"
        );
    }

    // A rejection is an Error carrying the server's text and code.
    let bogus = call(
        &s,
        "return await webstrate.user.invites.check('00'.repeat(32));",
    )
    .await;
    assert_eq!(
        bogus["rejected"],
        json!({"message": "Invalid invitation key", "code": "invalid_key", "isError": true})
    );
    let bad = call(
        &s,
        "return await webstrate.user.invites.create({maxAge: 0});",
    )
    .await;
    assert_eq!(bad["rejected"]["code"], "bad_request");
    assert!(bad["rejected"]["message"]
        .as_str()
        .unwrap()
        .contains("maxAge"));

    // A drop rejects what was in flight with `disconnected`; calls made
    // while down are queued and answered after the reconnect's new hello.
    let drop = call(
        &s,
        "const inv = webstrate.user.invites;
         const before = webstrate.clientId;
         const dropped = new Promise(r => webstrate.on('disconnected', r));
         const inFlight = inv.get().then(() => 'resolved', e => e.code + ' ' + (e instanceof Error));
         lastSocket.close();
         await dropped;
         const connectedWhileDown = webstrate.connected;
         const queued = await inv.get({all: true});
         return {inFlight: await inFlight, connectedWhileDown, queued, connected: webstrate.connected,
                 newClientId: webstrate.clientId !== before, clients: webstrate.clients.length};",
    )
    .await;
    assert_eq!(
        drop,
        json!({"inFlight": "disconnected true", "connectedWhileDown": false, "queued": [],
               "connected": true, "newClientId": true, "clients": 1})
    );

    // Listeners can be added and removed.
    let on_off = call(
        &s,
        "const f = () => {}; webstrate.on('clientJoin', f); webstrate.off('clientJoin', f);
         try { webstrate.on('nonsense', f); return 'accepted'; } catch (e) { return e.message; }",
    )
    .await;
    assert!(
        on_off.as_str().unwrap().starts_with("Unknown event"),
        "{on_off}"
    );

    // A request the server never answers is rejected after 10 s, not left
    // pending: swallow outgoing frames for one call.
    let timed_out = call(
        &s,
        "const send = WebSocket.prototype.send;
         WebSocket.prototype.send = function () {};
         const started = Date.now();
         const outcome = await webstrate.user.invites.get().then(() => 'resolved', e => e.code);
         WebSocket.prototype.send = send;
         return [outcome, Date.now() - started];",
    )
    .await;
    assert_eq!(timed_out[0], "timeout");
    let waited = timed_out[1].as_f64().unwrap();
    // Not before its 10 s; the upper bound only says "not left pending"
    // (a loaded machine's timers fire late).
    assert!((9_900.0..60_000.0).contains(&waited), "{waited} ms");

    // The landing page lists the documents.
    s.goto(&server.base).await;
    s.wait_for("document.querySelectorAll('#docs a').length === 2")
        .await;
    assert!(s.text("#who").await.contains("alice"));
    s.screenshot("landing").await;

    // "New document" makes one and opens it, with alice as its admin.
    s.click("#new-doc button").await;
    s.wait_for("/^\\/[A-Za-z0-9_-]+\\/$/.test(location.pathname) && window.webstrate && webstrate.connected")
        .await;
    assert_eq!(s.text("#my-permission").await, "arw");
    s.assert_clean_console(&[]).await;
    s.close().await;
}

#[tokio::test]
async fn invite_link_opened_logged_out_goes_through_login() {
    if !browser_present("invite_link_opened_logged_out_goes_through_login") {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().await;
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let _bob = server.user("bob").await;
    alice.create_doc("plans").await;
    let mut a = alice.ws("plans").await;
    let invite = a
        .ok("createInvite", None, json!({"permissions": "rw"}))
        .await;
    let link = server.url(&format!(
        "/plans/?acceptInvite={}",
        invite["key"].as_str().unwrap()
    ));

    let driver = Driver::start().await;
    let s = driver.session().await;
    // Logged out, the landing page offers log in / register.
    s.goto(&server.base).await;
    s.wait_for("!document.getElementById('anonymous').hidden")
        .await;

    s.goto(&link).await;
    let url = s.current_url().await;
    assert!(url.starts_with(&server.url("/auth/login?next=")), "{url}");
    s.wait_for("!document.getElementById('next-note').hidden")
        .await;
    s.screenshot("login").await;

    // A wrong password is shown, not swallowed.
    s.fill("#login-username", "bob").await;
    s.fill("#login-password", "wrong password").await;
    s.click("#login button").await;
    let shown = s
        .wait_for("document.querySelector('#login .message').textContent")
        .await;
    assert_eq!(shown, "Wrong username or password (unauthorized)");
    // So is a name already taken.
    s.fill("#register-username", "alice").await;
    s.fill("#register-password", "long enough").await;
    s.click("#register button").await;
    let taken = s
        .wait_for("document.querySelector('#register .message').textContent")
        .await;
    assert_eq!(taken, "username alice is taken (conflict)");

    s.fill("#login-password", "correct horse").await;
    s.click("#login button").await;
    s.wait_for("location.pathname === '/plans/' && location.search === '' && window.webstrate && webstrate.connected")
        .await;
    assert_eq!(s.text("#my-permission").await, "rw");
    assert_eq!(s.text("#doc-id").await, "plans");
    // bob and alice's test socket.
    s.wait_for("document.querySelectorAll('#clients li').length === 2")
        .await;
    s.screenshot("document-invitee").await;
    let level = a.event("clientJoin").await;
    assert_eq!(level["user"]["username"], "bob");
    s.assert_clean_console(&[
        "/auth/me - Failed to load resource: the server responded with a status of 401",
        "/auth/login - Failed to load resource: the server responded with a status of 401",
        "/auth/register - Failed to load resource: the server responded with a status of 409",
    ])
    .await;
    s.close().await;

    // `?next=` never leaves the site: `//host` would be another origin.
    let s = driver.session().await;
    s.goto(&server.url("/auth/login?next=//example.com/steal"))
        .await;
    s.fill("#login-username", "bob").await;
    s.fill("#login-password", "correct horse").await;
    s.click("#login button").await;
    s.wait_for(
        "location.pathname === '/' && document.getElementById('who').textContent.includes('bob')",
    )
    .await;
    assert_eq!(s.current_url().await, server.url("/"));
    s.assert_clean_console(&[]).await;
    s.close().await;
}

/// The `<option>` of `user`'s permission select in the admin's panel.
fn option_of(user: &str, level: &str) -> String {
    format!("#permission-list li[data-user='{user}'] select option[value='{level}']")
}

#[tokio::test]
async fn admin_changes_anothers_permission_live() {
    if !browser_present("admin_changes_anothers_permission_live") {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().await;
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    alice.create_doc("board").await;
    let mut a = alice.ws("board").await;
    a.ok(
        "setPermissions",
        None,
        json!({"username": "bob", "provider": "local", "permissions": "r"}),
    )
    .await;
    drop(a);

    let driver = Driver::start().await;
    let admin = open_doc(&driver, &server, &alice, "board").await;
    let other = open_doc(&driver, &server, &bob, "board").await;
    assert_eq!(other.text("#my-permission").await, "r");
    assert!(
        other
            .js(
                "return document.getElementById('invites').hidden;",
                json!([])
            )
            .await
            == json!(true)
    );
    // Each sees the other connected.
    admin.wait_for("webstrate.clients.length === 2 && document.querySelector('#clients').textContent.includes('bob')").await;
    // bob's page opened after alice's, and still names her (from hello).
    other.wait_for("webstrate.clients.length === 2 && document.querySelector('#clients').textContent.includes('alice')").await;
    admin
        .wait_for("document.querySelector(\"#permission-list li[data-user='bob:local']\")")
        .await;
    admin.screenshot("document-admin").await;

    admin.click(&option_of("bob:local", "arw")).await;
    other
        .wait_for("document.getElementById('my-permission').textContent === 'arw'")
        .await;
    other.wait_for("!document.getElementById('invites').hidden && !document.getElementById('permissions').hidden")
        .await;

    admin.click(&option_of("bob:local", "rw")).await;
    other
        .wait_for("document.getElementById('my-permission').textContent === 'rw'")
        .await;
    other.wait_for("document.getElementById('invites').hidden && document.getElementById('permissions').hidden")
        .await;

    // Removing the entry takes read access away: presence goes quiet.
    admin
        .click("#permission-list li[data-user='bob:local'] button")
        .await;
    other
        .wait_for("document.getElementById('my-permission').textContent === 'none'")
        .await;
    other.wait_for("webstrate.clients.length === 0").await;
    admin.wait_for("webstrate.clients.length === 1").await;

    // The last admin cannot demote herself; the panel says why.
    admin.click(&option_of("alice:local", "rw")).await;
    // The message still says "Saved." from the removal until the answer comes.
    let shown = admin
        .wait_for("document.getElementById('permissions-message').classList.contains('error') && document.getElementById('permissions-message').textContent")
        .await;
    assert!(shown.as_str().unwrap().contains("last_admin"), "{shown}");

    // Anonymous read access from the panel.
    admin.click(&option_of("anonymous:", "r")).await;
    admin.wait_for("document.querySelector(\"li[data-user='anonymous:'] select\").value === 'r' && document.getElementById('permissions-message').textContent === 'Saved.'").await;
    let anon = server
        .client()
        .get(server.url("/board/"))
        .send()
        .await
        .unwrap();
    assert_eq!(anon.status(), 200, "anonymous may now read");
    // A logged-out visitor sees the page read-only, with a way to log in.
    let visitor = driver.session().await;
    visitor.goto(&server.url("/board/")).await;
    visitor
        .wait_for(
            "webstrate.connected && document.getElementById('my-permission').textContent === 'r'",
        )
        .await;
    assert_eq!(visitor.text("#who").await, "Not logged in · Log in");
    visitor
        .wait_for(
            "document.getElementById('invites').hidden && webstrate.user.userId === 'anonymous:'",
        )
        .await;
    visitor.assert_clean_console(&[]).await;
    visitor.close().await;

    admin.assert_clean_console(&[]).await;
    other.assert_clean_console(&[]).await;
    admin.close().await;
    other.close().await;
}

#[tokio::test]
async fn invites_panel_create_copy_remove_by_clicking() {
    if !browser_present("invites_panel_create_copy_remove_by_clicking") {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().await;
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    alice.create_doc("wiki").await;
    let driver = Driver::start().await;
    let s = open_doc(&driver, &server, &alice, "wiki").await;
    s.wait_for("!document.getElementById('invites').hidden")
        .await;

    s.click("#invite-permissions option[value='rw']").await;
    s.fill("#invite-max-age", "3600").await;
    s.fill("#invite-max-uses", "3").await;
    s.click("#invite-form button").await;
    s.wait_for("document.querySelectorAll('#invite-list li').length === 1")
        .await;
    let link = s
        .js(
            "return document.querySelector('#invite-list .invite-link').value;",
            json!([]),
        )
        .await;
    let link = link.as_str().unwrap();
    let prefix = server.url("/wiki/?acceptInvite=");
    assert!(link.starts_with(&prefix), "{link}");
    let key = &link[prefix.len()..];
    assert!(
        key.len() == 64 && key.bytes().all(|b| b.is_ascii_hexdigit()),
        "{key}"
    );

    let mut a = alice.ws("wiki").await;
    let invite = a.ok("checkInvite", None, json!({"key": key})).await;
    assert_eq!(invite["permissions"], "rw");
    assert_eq!(invite["maxUses"], 3);
    let countdown = s.text("#invite-list .countdown").await;
    assert!(
        countdown.starts_with("expires in 59m") || countdown.starts_with("expires in 1h"),
        "{countdown}"
    );
    assert_eq!(s.text("#invite-list .uses").await, "used 0 / 3");

    s.click("#invite-list .copy").await;
    // The message says "Invite created." until the clipboard answers.
    let said = s
        .wait_for("document.getElementById('invites-message').textContent.startsWith('Link') && document.getElementById('invites-message').textContent")
        .await;
    assert!(said.as_str().unwrap().starts_with("Link"), "{said}");
    s.screenshot("document-admin-invites").await;
    // A phone-sized view of the same page.
    s.resize(390, 844).await;
    s.screenshot("document-admin-phone").await;
    s.resize(1000, 900).await;

    s.click("#invite-list .remove").await;
    s.wait_for("document.querySelectorAll('#invite-list li').length === 0 && !document.getElementById('invites-empty').hidden")
        .await;
    let (code, _) = a.err("checkInvite", None, json!({"key": key})).await;
    assert_eq!(code, "invalid_key");

    s.assert_clean_console(&[]).await;
    s.close().await;
}

/// The paths of the `/v1/…` requests the page has made since it loaded
/// (Resource Timing records every fetch).
const V1_REQUESTS: &str = "performance.getEntriesByType('resource')
    .map(e => new URL(e.name).pathname).filter(p => p.startsWith('/v1/'))";

#[tokio::test]
async fn api_keys_panel_create_copy_delete_by_clicking() {
    if !browser_present("api_keys_panel_create_copy_delete_by_clicking") {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().await;
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    alice.create_doc("vault").await;
    let mut a = alice.ws("vault").await;
    a.ok(
        "setPermissions",
        None,
        json!({"username": "bob", "provider": "local", "permissions": "r"}),
    )
    .await;
    drop(a);
    let page = server.url("/vault/");
    let invites_api = |key: &str| server.url(&format!("/invites_api?key={key}"));

    let driver = Driver::start().await;
    let admin = open_doc(&driver, &server, &alice, "vault").await;
    admin
        .wait_for("!document.getElementById('api-keys').hidden && document.querySelector('#api-key-list li.empty')")
        .await;
    assert_eq!(admin.text("#api-keys-title").await, "API keys");
    assert_eq!(admin.text("#api-key-list").await, "No API keys yet.");
    assert_eq!(
        admin
            .js(
                "return document.querySelector('label[for=api-key-name]').textContent;",
                json!([])
            )
            .await,
        "Key name"
    );

    // bob can only read: no section, and the panel never asked the API.
    let other = open_doc(&driver, &server, &bob, "vault").await;
    other
        .wait_for("document.getElementById('my-permission').textContent === 'r'")
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(
        other
            .js(
                &format!("return [document.getElementById('api-keys').hidden, {V1_REQUESTS}];"),
                json!([])
            )
            .await,
        json!([true, []])
    );

    // alice makes a key: its full form is shown with a copy button, and the
    // panel says who can read the secret later (the owner, over REST).
    admin.fill("#api-key-name", "CI bot").await;
    admin.click("#api-key-form button").await;
    let full = admin
        .wait_for("document.getElementById('api-key-secret') && document.getElementById('api-key-secret').value")
        .await;
    let full = full.as_str().unwrap().to_string();
    let (id, secret) = full.split_once('/').expect("<app_id>/<secret>");
    assert!(
        id.len() == 28
            && id.starts_with("app_")
            && id[4..]
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "{id}"
    );
    assert_eq!(secret.len(), 32, "{secret}");
    let shown = admin.text("#api-keys .key-secret").await;
    assert!(
        shown.contains("CI bot")
            && shown.contains("Only you, its owner, can read its secret again"),
        "{shown}"
    );
    assert_eq!(
        admin.text("#api-keys-message").await,
        "Key \u{201c}CI bot\u{201d} created."
    );
    assert_eq!(admin.text("#api-key-name").await, "");
    // Listed by name and id, without the secret.
    let row = format!("#api-key-list li[data-key='{id}']");
    admin.find(&row).await;
    let listed = admin.text(&row).await;
    assert!(
        listed.contains("CI bot") && listed.contains(id) && !listed.contains(secret),
        "{listed}"
    );
    assert_eq!(
        admin
            .js(
                "return document.querySelectorAll('#api-key-list li').length;",
                json!([])
            )
            .await,
        1
    );
    admin.click("#api-keys .copy").await;
    let said = admin
        .wait_for("document.getElementById('api-keys-message').textContent.startsWith('Key c') && document.getElementById('api-keys-message').textContent")
        .await;
    assert_eq!(said, "Key copied.");
    admin.screenshot("document-admin-keys").await;

    // The full key makes invites to this document on /invites_api.
    let http = server.client();
    let r = http.get(invites_api(&full)).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let invite: Value = r.json().await.unwrap();
    assert_eq!(
        location,
        server.url(&format!(
            "/vault/?acceptInvite={}",
            invite["key"].as_str().unwrap()
        ))
    );
    assert_eq!(invite["createdBy"]["username"], "alice");

    // Promoted in alice's permissions panel, bob gets the section live, with
    // alice's key listed but not its secret.
    other.js("window.sameLoad = true;", json!([])).await;
    admin.click(&option_of("bob:local", "arw")).await;
    other
        .wait_for("document.getElementById('my-permission').textContent === 'arw'")
        .await;
    other
        .wait_for(&format!(
            "!document.getElementById('api-keys').hidden && document.querySelector(\"{row}\")"
        ))
        .await;
    let seen = other
        .js(
            "return [window.sameLoad, document.documentElement.outerHTML.includes(arguments[0]),
                     Array.from(document.querySelectorAll('input')).some(i => i.value.includes(arguments[0]))];",
            json!([secret]),
        )
        .await;
    assert_eq!(seen, json!([true, false, false]), "no reload, no secret");

    // After a reload alice sees the key, never the secret again.
    admin.goto(&page).await;
    admin.find(&row).await;
    let again = admin
        .js(
            "return [document.querySelector('#api-keys .key-secret').hidden,
                     document.documentElement.outerHTML.includes(arguments[0]),
                     Array.from(document.querySelectorAll('input')).some(i => i.value.includes(arguments[0]))];",
            json!([secret]),
        )
        .await;
    assert_eq!(again, json!([true, false, false]));

    // Delete asks first; once confirmed the key is gone and refused.
    admin.click(&format!("{row} .remove")).await;
    let question = admin.alert_text().await;
    assert!(question.contains("CI bot"), "{question}");
    admin.accept_alert().await;
    admin
        .wait_for("document.querySelector('#api-key-list li.empty') && document.getElementById('api-keys-message').textContent.includes('deleted')")
        .await;
    let r = http.get(invites_api(&full)).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Bearer"));

    // bob's list is now stale: deleting the key again shows the server's
    // error in the panel instead of swallowing it.
    other.click(&format!("{row} .remove")).await;
    other.alert_text().await;
    other.accept_alert().await;
    let error = other
        .wait_for("document.getElementById('api-keys-message').classList.contains('error') && document.getElementById('api-keys-message').textContent")
        .await;
    assert!(error.as_str().unwrap().starts_with("Error: "), "{error}");

    admin.assert_clean_console(&[]).await;
    other
        .assert_clean_console(&[&format!(
            "/v1/apps/vault/keys/{id} - Failed to load resource: the server responded with a status of 404"
        )])
        .await;
    admin.close().await;
    other.close().await;
}

#[tokio::test]
async fn changing_the_password_on_the_landing_page() {
    if !browser_present("changing_the_password_on_the_landing_page") {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().await;
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    // A second session of alice's, which the change must end.
    let other = crate::common::process::login(&server.base, "alice").await;

    let driver = Driver::start().await;
    let s = driver.session().await;
    s.set_session_cookie(&server.base, &alice.cookie).await;
    s.goto(&server.url("/")).await;
    s.wait_for("!document.getElementById('account').hidden")
        .await;
    assert_eq!(s.text("#account-title").await, "Change your password");

    // A wrong current password: the server's error, nothing changed.
    s.fill("#current-password", "wrong horse").await;
    s.fill("#new-password", "battery staple").await;
    s.click("#password-form button").await;
    let said = s
        .wait_for("!document.getElementById('message').hidden && document.getElementById('message').textContent")
        .await;
    assert_eq!(said, "Wrong current password (unauthorized)");
    let me = |client: &reqwest::Client| client.get(server.url("/auth/me")).send();
    assert_eq!(me(&other.http).await.unwrap().status(), 200);

    s.fill("#current-password", "correct horse").await;
    s.fill("#new-password", "battery staple").await;
    s.click("#password-form button").await;
    let said = s
        .wait_for("document.getElementById('message').textContent.startsWith('Password changed') && document.getElementById('message').textContent")
        .await;
    assert_eq!(
        said,
        "Password changed. Your other sessions were logged out."
    );
    assert_eq!(
        me(&other.http).await.unwrap().status(),
        401,
        "other session ended"
    );
    // The page's own session goes on, with the fresh cookie.
    s.goto(&server.url("/")).await;
    s.wait_for("document.getElementById('who').textContent === 'Logged in as alice'")
        .await;
    let r = server
        .client()
        .post(server.url("/auth/login"))
        .json(&json!({"username": "alice", "password": "battery staple"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    s.close().await;
}

//! The official client libraries against the real server: smooch-core 8.x
//! (`/v1.1`) and 6.x (`/v1`) app-key flows, and @walletconnect/identity-keys
//! (registration, recap registration, did-JWTs, unregistration), driven by
//! `tests/clients/run.js` under Node with only the base URL changed.
//!
//! Needs `node` and `tests/clients/node_modules` (`npm ci` there; `.ci/run`
//! does it). Under `CI=true` a missing install fails the test; locally the
//! test runs `npm ci` itself. It never passes without running the flows.

use crate::common::TestServer;
use std::path::{Path, PathBuf};
use std::time::Duration;

const FLOWS: [&str; 6] = [
    "ok smooch-core 8.11.4 app keys: create, list, get, getJwt, delete, errors",
    "ok smooch-core 6.6.0 app keys: create, list, get, getJwt, delete, errors",
    "ok identity-keys: prepareRegistration, registerIdentity, resolveIdentity",
    "ok identity-keys: generateIdAuth on POST and DELETE /invite",
    "ok identity-keys: unregisterIdentity",
    "ok identity-keys: prepareRegistrationWithRecaps (uri, ReCap statement)",
];

fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients")
}

/// The libraries, installed from the committed lock file.
async fn ensure_installed(dir: &Path) {
    if dir.join("node_modules").is_dir() {
        return;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "tests/clients/node_modules is missing: CI must run `npm ci` in tests/clients first"
    );
    let status = tokio::process::Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(dir)
        .status()
        .await
        .expect("npm (Debian package `npm`) is needed to install the client libraries");
    assert!(status.success(), "npm ci in tests/clients failed: {status}");
}

#[tokio::test]
async fn official_client_libraries_work_against_the_server() {
    let dir = clients_dir();
    ensure_installed(&dir).await;

    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    alice.create_doc("clientapp").await;
    let (key_id, key_secret) = alice.account_key("client libraries").await;

    let run = tokio::process::Command::new("node")
        .arg("run.js")
        .current_dir(&dir)
        .env("KEYSTRATE_URL", &server.base)
        .env("KEYSTRATE_APP", "clientapp")
        .env("KEYSTRATE_KEY_ID", &key_id)
        .env("KEYSTRATE_KEY_SECRET", &key_secret)
        .kill_on_drop(true)
        .output();
    // Generous: Node loads the WalletConnect libraries in a few seconds on
    // an idle machine; this only guards against a hang.
    let output = tokio::time::timeout(Duration::from_secs(300), run)
        .await
        .expect("the client script finishes")
        .expect("node (Debian package `nodejs`) is needed to run the client libraries");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "client flows failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    let lines: Vec<&str> = stdout.lines().collect();
    for flow in FLOWS {
        assert!(lines.contains(&flow), "missing `{flow}` in:\n{stdout}");
    }
    assert_eq!(lines.last(), Some(&"all client flows passed"), "{stdout}");
}

//! No secret in any log, over the whole suite: with `KEYSTRATE_TEST_LOGS`
//! set to a directory (`.ci/run` sets it), every server the helpers start
//! logs at `debug` into `<dir>/logs/`, and every secret the helpers see
//! (passwords, session tokens, invite keys, API key secrets, JWTs) is
//! written to `<dir>/ledger/`. After `cargo test`, `.ci/no-secrets-in-logs`
//! fails if any ledger line appears in any log. Without the variable the
//! functions here do nothing.

use serde_json::Value;
use std::io::Write;
use std::path::PathBuf;
use std::sync::OnceLock;

/// Shorter values (request tokens such as `t1`, permission strings) are
/// no secrets and would match log text by chance.
const SHORTEST_SECRET: usize = 8;

/// JSON fields whose string values are secrets.
const SECRET_FIELDS: &[&str] = &["key", "secret", "jwt", "password", "newPassword", "idAuth"];

/// `<KEYSTRATE_TEST_LOGS>/<part>`, created; `None` when not collecting.
fn dir(part: &str) -> Option<PathBuf> {
    let dir = PathBuf::from(std::env::var_os("KEYSTRATE_TEST_LOGS")?).join(part);
    std::fs::create_dir_all(&dir).expect("KEYSTRATE_TEST_LOGS is writable");
    Some(dir)
}

/// A fresh log file for one server, named after `what`.
pub fn log_file(what: &str) -> Option<std::fs::File> {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = format!("{what}-{}-{n}.log", std::process::id());
    Some(std::fs::File::create(dir("logs")?.join(name)).expect("log file"))
}

/// Sends the logs of in-process servers to a file at `debug`, once per
/// test process. Only the server's crates: the tests' own HTTP clients log
/// the URLs they call, keys and all.
pub fn capture_in_process_logs() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        if let Some(file) = log_file("in-process") {
            let _ = tracing_subscriber::fmt()
                .with_env_filter("keystrate=debug,warp=debug,sled=debug")
                .with_writer(std::sync::Mutex::new(file))
                .with_ansi(false)
                .try_init();
        }
    });
}

/// Records one secret.
pub fn record(secret: &str) {
    if secret.len() < SHORTEST_SECRET {
        return;
    }
    let Some(dir) = dir("ledger") else { return };
    let path = dir.join(format!("{}.txt", std::process::id()));
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("ledger file");
    writeln!(file, "{secret}").expect("ledger write");
}

/// Records every secret field (see [`SECRET_FIELDS`]) anywhere in `value`.
pub fn record_in(value: &Value) {
    match value {
        Value::Object(map) => {
            for (name, field) in map {
                match field {
                    Value::String(s) if SECRET_FIELDS.contains(&name.as_str()) => record(s),
                    other => record_in(other),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(record_in),
        _ => {}
    }
}

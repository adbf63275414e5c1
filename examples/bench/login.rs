//! A login flood (issue 14): 200 connections post wrong passwords while
//! another user creates documents. The load is `tests/it/common/flood.rs`, the
//! same as `tests/it/login_flood.rs`'s.

use crate::flood::login_flood;
use crate::procs::{temp_dir, Proc};
use crate::setup;
use crate::table::{ms, thousands, Row};
use crate::Opts;
use std::time::{Duration, Instant};

const CONNECTIONS: usize = 200;

pub async fn flood(o: &Opts, rows: &mut Vec<Row>) {
    let dir = temp_dir("login");
    let mut server = Proc::spawn(&["--serve", dir.path().to_str().expect("utf-8 path")]);
    server.ready(Instant::now(), true).await;
    let owner = setup::register(&server.base, "owner").await;
    let r = login_flood(&server.base, &owner, CONNECTIONS, o.flood, || {
        server.rss_kb()
    })
    .await;
    let count = |status: u16| thousands(r.statuses.get(&status).copied().unwrap_or(0));
    let growth_mb = r.rss_growth_kb as f64 / 1024.0;
    rows.push(Row {
        scenario: format!(
            "login flood: {CONNECTIONS} connections × {} s of wrong passwords",
            o.flood.as_secs()
        ),
        measured: format!(
            "RSS +{growth_mb:.1} MB; document creation max {} ({} made, {} failed)",
            ms(r.slowest_creation),
            r.creations,
            r.failed_creations
        ),
        baseline: "—".into(),
        ratio: format!(
            "logins: {} × 401, {} × 429, {} × 503",
            count(401),
            count(429),
            count(503)
        ),
        target: "RSS growth < 300 MB, every creation ≤ 1 s".into(),
        pass: Some(
            growth_mb < 300.0
                && r.slowest_creation <= Duration::from_secs(1)
                && r.failed_creations == 0
                && r.busy_without_retry_after == 0,
        ),
    });
    server.stop();
}

//! Issue 14, item 1: a login flood against the real binary. Its own test
//! binary, so that no other test shares the two cores while it measures.

use crate::common::flood::login_flood;
use crate::common::process::{login, register, Proc};
use std::time::Duration;

/// 200 connections post wrong passwords for 10 s. Before password hashing
/// had its own bounded pool, RSS grew by 2.3–2.6 GiB and document creation
/// took seconds (the flusher queued on the same blocking pool).
#[tokio::test]
async fn a_login_flood_keeps_memory_bounded_and_writes_answering() {
    let dir = tempfile::tempdir().unwrap();
    let p = Proc::start(dir.path(), &[]).await;
    let owner = register(&p.base, "owner").await;
    let report = login_flood(&p.base, &owner.cookie, 200, Duration::from_secs(10), || {
        p.rss_kb()
    })
    .await;
    let statuses = &report.statuses;
    eprintln!(
        "statuses {statuses:?}, RSS +{} MiB, {} creations, slowest {:?}",
        report.rss_growth_kb / 1024,
        report.creations,
        report.slowest_creation
    );
    assert!(
        report.rss_growth_kb < 300 * 1024,
        "RSS grew by {} MiB",
        report.rss_growth_kb / 1024
    );
    assert!(
        report.slowest_creation < Duration::from_secs(1),
        "a document creation took {:?}",
        report.slowest_creation
    );
    assert!(report.creations >= 5, "{} creations", report.creations);
    assert_eq!(report.failed_creations, 0);
    assert!(statuses.get(&401).copied().unwrap_or(0) > 0, "{statuses:?}");
    assert!(statuses.get(&503).copied().unwrap_or(0) > 0, "{statuses:?}");
    assert!(
        statuses.keys().all(|s| [401, 429, 503].contains(s)),
        "{statuses:?}"
    );
    assert_eq!(report.busy_without_retry_after, 0);
    // The server is fine afterwards.
    let again = login(&p.base, "owner").await;
    again.create_doc("after-the-flood").await;
}

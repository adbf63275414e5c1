//! The login flood of issue 14: many connections posting wrong passwords
//! while one logged-in user keeps creating documents. Shared by the test
//! (`tests/it/login_flood.rs`) and the benchmark (`examples/bench`), which
//! includes this file by path.

use serde_json::json;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct FloodReport {
    /// Login answers by HTTP status.
    pub statuses: BTreeMap<u16, u64>,
    /// 503s that carried no `Retry-After`.
    pub busy_without_retry_after: u64,
    /// Highest RSS seen minus RSS before the flood, in KiB.
    pub rss_growth_kb: u64,
    /// Document creations during the flood, and the slowest one.
    pub creations: usize,
    pub slowest_creation: Duration,
    /// Creations that did not answer 201.
    pub failed_creations: usize,
}

/// Loopback address number `i` other than 127.0.0.1, so that every flood
/// connection is its own client address, as in a distributed flood: the
/// per-address limit does not hide the hashing pool.
fn source(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 1, (i / 250) as u8, (i % 250 + 1) as u8))
}

/// Floods `base` with `connections` clients posting wrong passwords for
/// `duration`, each for a new unknown username every time (so the
/// per-username limit does not stop them either), while `cookie`'s user
/// creates documents one after another. `rss_kb` reads the server's RSS.
pub async fn login_flood(
    base: &str,
    cookie: &str,
    connections: usize,
    duration: Duration,
    rss_kb: impl Fn() -> u64,
) -> FloodReport {
    let before = rss_kb();
    let stop = Arc::new(AtomicBool::new(false));
    let mut floods = Vec::new();
    for i in 0..connections {
        let (base, stop) = (base.to_string(), stop.clone());
        floods.push(tokio::spawn(async move {
            let http = reqwest::Client::builder()
                .local_address(source(i))
                .pool_max_idle_per_host(1)
                .build()
                .expect("client");
            let mut statuses = BTreeMap::new();
            let mut no_retry_after = 0;
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let body =
                    json!({"username": format!("guess-{i}-{n}"), "password": "wrong password"});
                let Ok(r) = http
                    .post(format!("{base}/auth/login"))
                    .json(&body)
                    .send()
                    .await
                else {
                    *statuses.entry(0).or_insert(0) += 1;
                    continue;
                };
                let status = r.status().as_u16();
                if status == 503 && !r.headers().contains_key("retry-after") {
                    no_retry_after += 1;
                }
                *statuses.entry(status).or_insert(0u64) += 1;
                let _ = r.bytes().await;
            }
            (statuses, no_retry_after)
        }));
    }
    let owner = reqwest::Client::new();
    let started = Instant::now();
    let (mut peak, mut creations, mut slowest, mut failed) = (before, 0, Duration::ZERO, 0);
    while started.elapsed() < duration {
        peak = peak.max(rss_kb());
        let t0 = Instant::now();
        let r = owner
            .post(format!("{base}/api/documents"))
            .header("cookie", format!("keystrate_session={cookie}"))
            .json(&json!({}))
            .send()
            .await;
        slowest = slowest.max(t0.elapsed());
        creations += 1;
        if !r.is_ok_and(|r| r.status() == 201) {
            failed += 1;
        }
        peak = peak.max(rss_kb());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut statuses = BTreeMap::new();
    let mut busy_without_retry_after = 0;
    for f in floods {
        let (s, b) = f.await.expect("flood task");
        for (status, n) in s {
            *statuses.entry(status).or_insert(0) += n;
        }
        busy_without_retry_after += b;
    }
    FloodReport {
        statuses,
        busy_without_retry_after,
        rss_growth_kb: peak.saturating_sub(before),
        creations,
        slowest_creation: slowest,
        failed_creations: failed,
    }
}

//! What sled 0.34 keeps in memory per stored key, measured apart from
//! keystrate: writes `n` keys into one tree (random or key order, values of
//! `value_bytes`), then opens the database in a fresh process, as a server
//! start would, and prints the resident memory the open added.
//! docs/benchmarks.md uses it to tell sled's page table from keystrate's
//! own state.
//!
//! `cargo run --release --example sled_keys -- [n] [value_bytes]`

use std::process::Command;

fn rss_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("procfs");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmRSS")
}

/// Child mode: open `dir` and print the KiB of RSS the open added.
fn open_and_measure(dir: &str) {
    let before = rss_kb();
    let db = sled::open(dir).expect("open");
    println!("{}", rss_kb().saturating_sub(before));
    drop(db);
}

fn added_by_open(dir: &std::path::Path) -> f64 {
    let out = Command::new(std::env::current_exe().expect("own path"))
        .arg("--open")
        .arg(dir)
        .output()
        .expect("child");
    let kb: f64 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("KiB");
    kb / 1024.0
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--open") {
        return open_and_measure(&args[1]);
    }
    let n: u64 = args.first().map_or(1_000_000, |v| v.parse().expect("n"));
    let value_bytes: usize = args.get(1).map_or(0, |v| v.parse().expect("value_bytes"));
    let value = vec![7u8; value_bytes];
    println!("| key order | keys | value bytes | RSS added by the first open | by the next |");
    println!("|---|---|---|---|---|");
    for ordered in [false, true] {
        let dir = tempfile::tempdir().expect("temp dir");
        {
            let db = sled::open(dir.path()).expect("open");
            let tree = db.open_tree("t").expect("tree");
            for i in 0..n {
                let mut key = Vec::with_capacity(40);
                if ordered {
                    key.extend_from_slice(&i.to_be_bytes());
                }
                key.extend_from_slice(&rand::random::<[u8; 32]>());
                tree.insert(key, value.as_slice()).expect("insert");
            }
            db.flush().expect("flush");
        }
        // The first open replays the log and writes a snapshot; the next
        // starts from that snapshot.
        let first = added_by_open(dir.path());
        let next = added_by_open(dir.path());
        let order = if ordered { "ascending" } else { "random" };
        println!("| {order} | {n} | {value_bytes} | +{first:.1} MB | +{next:.1} MB |");
    }
}

//! Reading a process's memory from `/proc`. Shared by the tests and the
//! benchmark (`examples/bench`), which includes this file by path.

/// Resident set size of process `pid` in KiB (`VmRSS`); 0 once it is gone.
pub fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

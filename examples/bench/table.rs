//! The result table, printed as Markdown so it can go into the docs as is.

use std::time::Duration;

pub struct Row {
    pub scenario: String,
    pub measured: String,
    pub baseline: String,
    pub ratio: String,
    pub target: String,
    /// `None`: informational, or not measurable on this build.
    pub pass: Option<bool>,
}

impl Row {
    pub fn info(scenario: impl Into<String>, measured: impl Into<String>) -> Row {
        Row {
            scenario: scenario.into(),
            measured: measured.into(),
            baseline: "—".into(),
            ratio: "—".into(),
            target: "—".into(),
            pass: None,
        }
    }
}

pub fn print(rows: &[Row]) {
    println!();
    println!("| scenario | measured | baseline | ratio | target | result |");
    println!("|---|---|---|---|---|---|");
    for r in rows {
        let result = match r.pass {
            Some(true) => "PASS",
            Some(false) => "FAIL",
            None => "—",
        };
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            r.scenario, r.measured, r.baseline, r.ratio, r.target, result
        );
    }
}

pub fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

pub fn us(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}

pub fn per_s(rate: f64) -> String {
    format!("{}/s", thousands(rate.round() as u64))
}

pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub fn pct(ratio: f64) -> String {
    format!("{:.0}%", ratio * 100.0)
}

pub fn mb(kb: i64) -> String {
    format!("{:.1} MB", kb as f64 / 1024.0)
}

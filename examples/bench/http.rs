//! `POST /invites_api` (SPEC section 7) against warp's hello world.

use crate::load::Outcome;
use crate::procs::{keystrate_binary, temp_dir, Proc};
use crate::setup::{self, DOC};
use crate::table::{ms, pct, per_s, Row};
use crate::Opts;
use std::path::Path;
use std::time::Instant;

const CONCURRENCY: usize = 64;

/// `CONCURRENCY` keep-alive clients sending `request` for the window;
/// responses other than `want` count as errors by status.
async fn http_load(
    o: &Opts,
    want: u16,
    request: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder + Send + Sync + Clone + 'static,
) -> Outcome {
    let client = reqwest::Client::new();
    let start = Instant::now();
    let (from, until) = (start + o.warmup, start + o.warmup + o.duration);
    let tasks: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let (client, request) = (client.clone(), request.clone());
            tokio::spawn(async move {
                let mut out = Outcome::default();
                while Instant::now() < until {
                    let sent = Instant::now();
                    let status = match request(&client).send().await {
                        Ok(r) => {
                            let s = r.status().as_u16();
                            let _ = r.bytes().await;
                            s
                        }
                        Err(_) => 0,
                    };
                    let now = Instant::now();
                    if now < from || now > until {
                        continue;
                    }
                    if status == want {
                        out.ok += 1;
                        out.latencies
                            .push(now.duration_since(sent).as_micros() as u32);
                    } else {
                        *out.errors.entry(status.to_string()).or_default() += 1;
                    }
                }
                out
            })
        })
        .collect();
    let mut total = Outcome {
        window: o.duration,
        ..Outcome::default()
    };
    for t in tasks {
        let part = t.await.expect("http task");
        total.ok += part.ok;
        total.latencies.extend(part.latencies);
        for (k, v) in part.errors {
            *total.errors.entry(k).or_default() += v;
        }
    }
    total
}

fn describe(out: &mut Outcome) -> String {
    format!("{} p99 {}", per_s(out.rate()), ms(out.p(0.99)))
}

/// Creates an API key with the CLI (server stopped); `id/secret`.
fn create_key(dir: &Path) -> Result<String, String> {
    let bin = keystrate_binary().ok_or("build the keystrate binary (cargo build --release)")?;
    let out = std::process::Command::new(bin)
        .args(["keys", "create", DOC, "bench", "--owner", "owner", "--data"])
        .arg(dir)
        .output()
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .find(|w| w.contains('/') && !w.contains(':'))
        .map(str::to_string)
        .ok_or_else(|| format!("keys create printed no key: {text}"))
}

pub async fn invites_api(o: &Opts, rows: &mut Vec<Row>) {
    let mut hello = Proc::spawn(&["--hello"]);
    hello.ready(Instant::now(), false).await;
    let url = format!("{}/", hello.base);
    let mut base = http_load(o, 200, move |c| c.get(&url)).await;
    drop(hello);

    let mut row = Row {
        scenario: "POST /invites_api".into(),
        measured: String::new(),
        baseline: format!("warp hello world {}", describe(&mut base)),
        ratio: "—".into(),
        target: "≥ 50% of hello world".into(),
        pass: None,
    };
    match api_rate(o).await {
        Ok(mut out) => {
            let ratio = out.rate() / base.rate();
            row.measured = describe(&mut out);
            row.ratio = pct(ratio);
            row.pass = Some(ratio >= 0.5 && out.errors.is_empty());
        }
        Err(why) => row.measured = format!("n/a ({why})"),
    }
    rows.push(row);
}

/// The invites API rate, or why it cannot be measured on this build.
async fn api_rate(o: &Opts) -> Result<Outcome, String> {
    let dir = temp_dir("api");
    let path = dir.path().to_str().expect("utf-8 path");
    let mut server = Proc::spawn(&["--serve", path]);
    server.ready(Instant::now(), true).await;
    let owner = setup::register(&server.base, "owner").await;
    setup::create_doc(&server.base, &owner, DOC).await;
    let probe = reqwest::Client::new()
        .post(format!("{}/invites_api", server.base))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    // Without the route, the request falls through to the document pages
    // (`/<doc>`), which answer 404, 405 or a redirect.
    let status = probe.status().as_u16();
    if matches!(status, 404 | 405 | 308) {
        return Err(format!("route not present: POST answered {status}"));
    }
    server.stop();
    let key = create_key(dir.path())?;
    let mut server = Proc::spawn(&["--serve", path]);
    server.ready(Instant::now(), true).await;
    let url = format!("{}/invites_api?key={key}", server.base);
    Ok(http_load(o, 201, move |c| c.post(&url)).await)
}

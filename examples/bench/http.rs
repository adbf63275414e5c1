//! `POST /invites_api` (docs/programs.md) against warp's hello world, with
//! the CPU each side spends per request and what the durable write alone
//! costs.

use crate::load::{closed_loop, with_cpu, Outcome};
use crate::procs::{temp_dir, Proc};
use crate::setup::{self, DOC};
use crate::storage::{self, Write};
use crate::table::{ms, pct, per_s, us, Row};
use crate::Opts;
use std::future::Future;
use std::time::{Duration, Instant};

const CONCURRENCY: usize = 64;

/// `CONCURRENCY` keep-alive clients sending `request` for the window;
/// responses other than `want` count as errors by status.
async fn http_load(
    o: &Opts,
    want: u16,
    request: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder + Send + Sync + Clone + 'static,
) -> Outcome {
    let client = reqwest::Client::new();
    closed_loop(CONCURRENCY, o.warmup, o.duration, move || {
        let sent = request(&client).send();
        async move {
            let status = match sent.await {
                Ok(r) => {
                    let s = r.status().as_u16();
                    let _ = r.bytes().await;
                    s
                }
                Err(_) => 0,
            };
            if status == want {
                Ok(())
            } else {
                Err(status.to_string())
            }
        }
    })
    .await
}

fn describe(out: &mut Outcome) -> String {
    format!("{} p99 {}", per_s(out.rate()), ms(out.p(0.99)))
}

/// Creates an app key on `DOC` through the REST key API with the owner's
/// session; returns `id/secret`.
async fn create_key(base: &str, owner_cookie: &str) -> Result<String, String> {
    let r = reqwest::Client::new()
        .post(format!("{base}/v1/apps/{DOC}/keys"))
        .header("cookie", format!("keystrate_session={owner_cookie}"))
        .json(&serde_json::json!({"name": "bench"}))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = r.status();
    let body: serde_json::Value = r.json().await.map_err(|e| e.to_string())?;
    match (body["key"]["_id"].as_str(), body["key"]["secret"].as_str()) {
        (Some(id), Some(secret)) if status == 201 => Ok(format!("{id}/{secret}")),
        _ => Err(format!("creating a key answered {status}: {body}")),
    }
}

pub async fn invites_api(o: &Opts, rows: &mut Vec<Row>) {
    let mut hello = Proc::spawn(&["--hello"]);
    hello.ready(Instant::now(), false).await;
    let url = format!("{}/", hello.base);
    let (mut base, base_cpu) = with_cpu(
        &[hello.pid(), std::process::id()],
        o.warmup,
        o.duration,
        http_load(o, 200, move |c| c.get(&url)),
    )
    .await;
    drop(hello);

    let mut row = Row {
        scenario: "POST /invites_api".into(),
        measured: String::new(),
        baseline: format!("warp hello world {}", describe(&mut base)),
        ratio: "—".into(),
        target: "≥ 50% of hello world".into(),
        pass: None,
    };
    let mut ours = None;
    match api_rate(o).await {
        Ok((mut out, cpu)) => {
            let ratio = out.rate() / base.rate();
            row.measured = describe(&mut out);
            row.ratio = pct(ratio);
            row.pass = Some(ratio >= 0.5 && out.errors.is_empty());
            ours = Some((out, cpu));
        }
        Err(why) => row.measured = format!("n/a ({why})"),
    }
    rows.push(row);
    let (mut engine, engine_per_invite) = in_process(
        o,
        storage::engine_baseline(CONCURRENCY, o.warmup, o.duration),
    )
    .await;
    rows.push(Row::info(
        "createInvite through the engine alone, in-process ×64, no HTTP (reference: the durable write's ceiling)",
        format!(
            "{}; {} of CPU per invite",
            describe(&mut engine),
            us(engine_per_invite)
        ),
    ));
    if let Some((out, cpu)) = &ours {
        rows.extend(cpu_rows(&base, &base_cpu, out, cpu, engine_per_invite));
    }
    for write in Write::ALL {
        let (mut out, cpu) = in_process(
            o,
            storage::write_baseline(write, CONCURRENCY, o.warmup, o.duration),
        )
        .await;
        rows.push(Row::info(
            format!(
                "durable write ×64, in-process, as the server's store: {} (reference)",
                write.describe()
            ),
            format!("{}; {} of CPU per write", describe(&mut out), us(cpu)),
        ));
    }
    rows.push(peer_row(o, ours.map(|(out, _)| out.rate())).await);
}

/// Runs a load inside this process; returns its outcome and the CPU time
/// the process spent per successful request in the window.
async fn in_process(o: &Opts, load: impl Future<Output = Outcome>) -> (Outcome, Duration) {
    let me = std::process::id();
    let (out, cpu) = with_cpu(&[me], o.warmup, o.duration, load).await;
    let per_request = out.per_request(cpu[0]);
    (out, per_request)
}

/// What the two loads cost in CPU per request, and how much server CPU per
/// request the 50% target leaves on this machine's cores once the load
/// generator, which shares them, has taken its part.
fn cpu_rows(
    hello: &Outcome,
    hello_cpu: &[Duration],
    api: &Outcome,
    api_cpu: &[Duration],
    engine_per_invite: Duration,
) -> Vec<Row> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let target_rate = hello.rate() / 2.0;
    let client = api.per_request(api_cpu[1]);
    let budget = Duration::from_secs_f64(cores as f64 / target_rate).saturating_sub(client);
    vec![
        Row::info(
            "CPU per request, server; load generator",
            format!(
                "hello world {}; {} · POST /invites_api {}; {}",
                us(hello.per_request(hello_cpu[0])),
                us(hello.per_request(hello_cpu[1])),
                us(api.per_request(api_cpu[0])),
                us(client),
            ),
        ),
        Row {
            scenario: format!(
                "server CPU per request left at 50% of hello world ({}) on {cores} cores, after the load generator's {}",
                per_s(target_rate),
                us(client)
            ),
            measured: format!("at most {}", us(budget)),
            baseline: format!("engine alone {} per invite", us(engine_per_invite)),
            ratio: match engine_per_invite.as_secs_f64() / budget.as_secs_f64().max(1e-9) {
                over if over > 1.0 => format!("{over:.1}× over"),
                within => format!("within ({within:.1}×)"),
            },
            target: "—".into(),
            pass: None,
        },
    ]
}

/// Prosody's `GET /invites_api` with the same clients, as the peer.
async fn peer_row(o: &Opts, ours: Option<f64>) -> Row {
    let scenario =
        "Prosody mod_invites_api, GET /invites_api (peer; default file storage, no fsync)";
    let prosody = match crate::prosody::start().await {
        Ok(p) => p,
        Err(why) => return Row::info(scenario, format!("not run ({why})")),
    };
    let url = prosody.url.clone();
    // Prosody routes by virtual host.
    let mut out = http_load(o, 201, move |c| c.get(&url).header("host", "localhost")).await;
    drop(prosody);
    let mut row = Row::info(scenario, describe(&mut out));
    if let Some(ours) = ours {
        row.baseline = format!("keystrate {}", per_s(ours));
        row.ratio = format!("keystrate {:.1}×", ours / out.rate());
    }
    row
}

/// The invites API rate with the CPU time the server and this process
/// used in its window, or why it could not be measured.
async fn api_rate(o: &Opts) -> Result<(Outcome, Vec<Duration>), String> {
    let dir = temp_dir("api");
    let path = dir.path().to_str().expect("utf-8 path");
    let mut server = Proc::spawn(&["--serve", path]);
    server.ready(Instant::now(), true).await;
    let owner = setup::register(&server.base, "owner").await;
    setup::create_doc(&server.base, &owner, DOC).await;
    let key = create_key(&server.base, &owner).await?;
    let url = format!("{}/invites_api?key={key}", server.base);
    let load = http_load(o, 201, move |c| c.post(&url));
    Ok(with_cpu(
        &[server.pid(), std::process::id()],
        o.warmup,
        o.duration,
        load,
    )
    .await)
}

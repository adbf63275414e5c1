//! keystrate's benchmark: every figure side by side with a baseline measured
//! in the same run, because absolute numbers drift on shared machines.
//!
//!     cargo run --release --example bench                  # full run
//!     cargo run --release --example bench -- --quick       # smoke run
//!     cargo run --release --example bench -- --only check,create --invites 100000
//!
//! Scenarios: check, create, accept, fanout, idle, invites, http, login, metrics. Servers run
//! as child processes of this binary (it re-executes itself with a hidden
//! `--serve`, `--echo`, `--echo-small`, `--hello` or `--populate` mode); this process is the
//! load generator. See docs/benchmarks.md.

/// The login flood's load, shared with `tests/it/login_flood.rs`.
#[path = "../../tests/it/common/flood.rs"]
mod flood;
mod http;
mod load;
mod login;
/// Reading `/proc`, shared with the tests.
#[path = "../../tests/it/common/procfs.rs"]
mod procfs;
mod procs;
mod prosody;
mod rpc;
mod setup;
mod sockets;
mod storage;
mod table;

use std::path::Path;
use std::time::Duration;

/// Run options (`--quick` lowers every size).
pub struct Opts {
    pub warmup: Duration,
    pub duration: Duration,
    pub only: Option<Vec<String>>,
    pub users: usize,
    pub check_sockets: usize,
    pub check_depth: usize,
    pub idle: usize,
    pub readers: usize,
    pub fanout_rounds: usize,
    pub invites: u64,
    /// How long the login flood lasts.
    pub flood: Duration,
}

const SCENARIOS: [&str; 9] = [
    "check", "create", "accept", "fanout", "idle", "invites", "http", "login", "metrics",
];

impl Opts {
    fn parse(args: &[String]) -> Result<Opts, String> {
        let quick = args.iter().any(|a| a == "--quick");
        let mut o = Opts {
            warmup: Duration::from_millis(if quick { 500 } else { 1000 }),
            duration: Duration::from_secs(if quick { 2 } else { 5 }),
            only: None,
            users: if quick { 32 } else { 64 },
            check_sockets: 64,
            check_depth: 8,
            idle: if quick { 1000 } else { 10_000 },
            readers: if quick { 200 } else { 1000 },
            fanout_rounds: if quick { 5 } else { 20 },
            invites: if quick { 50_000 } else { 1_000_000 },
            flood: Duration::from_secs(if quick { 5 } else { 10 }),
        };
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let mut value = || it.next().cloned().ok_or(format!("{arg} needs a value"));
            match arg.as_str() {
                "--quick" => {}
                "--only" => {
                    let list: Vec<String> = value()?.split(',').map(str::to_string).collect();
                    if let Some(bad) = list.iter().find(|s| !SCENARIOS.contains(&s.as_str())) {
                        return Err(format!("unknown scenario {bad}; known: {SCENARIOS:?}"));
                    }
                    o.only = Some(list);
                }
                "--seconds" => o.duration = Duration::from_secs_f64(number(&value()?)?),
                "--invites" => o.invites = number(&value()?)?,
                "--idle" => o.idle = number(&value()?)?,
                "--readers" => o.readers = number(&value()?)?,
                "--users" => o.users = number(&value()?)?,
                "--check-sockets" => o.check_sockets = number(&value()?)?,
                "--check-depth" => o.check_depth = number(&value()?)?,
                other => return Err(format!("unknown argument {other}")),
            }
        }
        Ok(o)
    }

    fn wants(&self, scenario: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|list| list.iter().any(|s| s == scenario))
    }
}

fn number<T: std::str::FromStr>(s: &str) -> Result<T, String> {
    s.replace('_', "")
        .parse()
        .map_err(|_| format!("not a number: {s}"))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or("");
    match arg(0) {
        "--serve" => rt.block_on(procs::serve(Path::new(arg(1)), arg(2), false)),
        "--serve-metrics" => rt.block_on(procs::serve(Path::new(arg(1)), arg(2), true)),
        "--echo" => rt.block_on(procs::echo(arg(1), false)),
        "--echo-small" => rt.block_on(procs::echo(arg(1), true)),
        "--hello" => rt.block_on(procs::hello(arg(1))),
        "--populate" => rt.block_on(storage::populate(
            Path::new(arg(1)),
            number(arg(2)).expect("count"),
            number(arg(3)).expect("expiring"),
        )),
        _ => match Opts::parse(&args) {
            Ok(o) => rt.block_on(bench(o)),
            Err(e) => {
                eprintln!("bench: {e}");
                std::process::exit(2);
            }
        },
    }
}

async fn bench(o: Opts) {
    let mut rows = Vec::new();
    if ["check", "create", "accept", "fanout"]
        .iter()
        .any(|s| o.wants(s))
    {
        let world = setup::world(o.users).await;
        if o.wants("check") {
            step("check", rpc::check(&world, &o, &mut rows)).await;
        }
        let mut keys = Vec::new();
        if o.wants("create") {
            keys = step("create", rpc::create(&world, &o, &mut rows)).await;
        }
        if o.wants("accept") {
            step("accept", rpc::accept(&world, &o, keys, &mut rows)).await;
        }
        if o.wants("fanout") {
            step("fanout", sockets::fanout(&world, &o, &mut rows)).await;
        }
    }
    if o.wants("idle") {
        step("idle", sockets::idle(&o, &mut rows)).await;
    }
    if o.wants("invites") {
        step("invites", storage::invites(&o, &mut rows)).await;
    }
    if o.wants("http") {
        step("http", http::invites_api(&o, &mut rows)).await;
    }
    if o.wants("login") {
        step("login", login::flood(&o, &mut rows)).await;
    }
    if o.wants("metrics") {
        step("metrics", rpc::metrics(&o, &mut rows)).await;
    }
    table::print(&rows);
}

/// Runs one scenario, telling the user what is going on.
async fn step<T>(name: &str, f: impl std::future::Future<Output = T>) -> T {
    eprintln!("== {name}");
    let t = std::time::Instant::now();
    let out = f.await;
    eprintln!("   {name} took {:.1} s", t.elapsed().as_secs_f64());
    out
}

//! keystrate's benchmark: every figure side by side with a baseline measured
//! in the same run, because absolute numbers drift on shared machines.
//!
//!     cargo run --release --example bench                  # full run
//!     cargo run --release --example bench -- --quick       # smoke run
//!     cargo run --release --example bench -- --only check,create --invites 100000
//!
//! Scenarios: check, create, accept, fanout, idle, invites, http, login, metrics, rooms. Servers run
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
mod rooms;
mod rpc;
mod setup;
mod sockets;
mod storage;
mod table;

use clap::builder::PossibleValuesParser;
use clap::Parser;
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
    /// Readers joining one document in the join storm.
    pub room_joins: usize,
    /// Readers held in one document.
    pub room_held: usize,
}

const SCENARIOS: [&str; 10] = [
    "check", "create", "accept", "fanout", "idle", "invites", "http", "login", "metrics", "rooms",
];

/// The command line (`--help` lists the scenarios). Sizes left out take
/// the full run's values, or the smaller `--quick` ones.
#[derive(clap::Parser)]
#[command(
    name = "bench",
    about = "keystrate's benchmark: every figure beside a baseline measured in the same run"
)]
struct Flags {
    /// Smaller sizes and shorter runs: a smoke run.
    #[arg(long)]
    quick: bool,
    /// Run only these scenarios (comma-separated).
    #[arg(long, value_delimiter = ',', value_parser = PossibleValuesParser::new(SCENARIOS))]
    only: Option<Vec<String>>,
    /// Seconds each measured phase lasts (5; quick 2).
    #[arg(long, value_parser = number::<f64>)]
    seconds: Option<f64>,
    /// Invites stored for the storage scenario (1_000_000; quick 50_000).
    #[arg(long, value_parser = number::<u64>)]
    invites: Option<u64>,
    /// Idle sockets held open (10_000; quick 1000).
    #[arg(long, value_parser = number::<usize>)]
    idle: Option<usize>,
    /// Readers of the fan-out document (1000; quick 200).
    #[arg(long, value_parser = number::<usize>)]
    readers: Option<usize>,
    /// Users, each with a socket, making requests (64; quick 32).
    #[arg(long, value_parser = number::<usize>)]
    users: Option<usize>,
    /// Sockets sending checkInvite (64).
    #[arg(long, value_parser = number::<usize>)]
    check_sockets: Option<usize>,
    /// checkInvite requests each socket keeps in flight (8).
    #[arg(long, value_parser = number::<usize>)]
    check_depth: Option<usize>,
    /// Readers joining one document in the big-room join storm (2000; quick 500).
    #[arg(long, value_parser = number::<usize>)]
    room_joins: Option<usize>,
    /// Readers held in one document for the big-room memory row (10_000; quick 2000).
    #[arg(long, value_parser = number::<usize>)]
    room_held: Option<usize>,
}

impl Opts {
    fn from(flags: Flags) -> Opts {
        let quick = flags.quick;
        let full_or_quick = |full, quick_size| if quick { quick_size } else { full };
        Opts {
            warmup: Duration::from_millis(full_or_quick(1000, 500)),
            duration: flags.seconds.map_or(
                Duration::from_secs(full_or_quick(5, 2)),
                Duration::from_secs_f64,
            ),
            only: flags.only,
            users: flags.users.unwrap_or(full_or_quick(64, 32) as usize),
            check_sockets: flags.check_sockets.unwrap_or(64),
            check_depth: flags.check_depth.unwrap_or(8),
            idle: flags.idle.unwrap_or(full_or_quick(10_000, 1000) as usize),
            readers: flags.readers.unwrap_or(full_or_quick(1000, 200) as usize),
            fanout_rounds: full_or_quick(20, 5) as usize,
            invites: flags.invites.unwrap_or(full_or_quick(1_000_000, 50_000)),
            flood: Duration::from_secs(full_or_quick(10, 5)),
            room_joins: flags
                .room_joins
                .unwrap_or(full_or_quick(2000, 500) as usize),
            room_held: flags
                .room_held
                .unwrap_or(full_or_quick(10_000, 2000) as usize),
        }
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
        _ => rt.block_on(bench(Opts::from(Flags::parse()))),
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
    if o.wants("rooms") {
        step("rooms", rooms::rooms(&o, &mut rows)).await;
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

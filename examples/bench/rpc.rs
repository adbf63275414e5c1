//! Request/reply scenarios over WebSockets: checkInvite against the echo
//! baseline, createInvite and acceptInvite against sled's own durable
//! write rate.

use crate::load::{self, MakeFrame, Outcome, Shape};
use crate::procs::Proc;
use crate::setup::{self, World};
use crate::storage;
use crate::table::{ms, pct, per_s, Row};
use crate::Opts;
use std::sync::Arc;
use std::time::{Duration, Instant};

const P99_LIMIT: Duration = Duration::from_millis(20);

fn shape(o: &Opts, in_flight: usize) -> Shape {
    Shape {
        in_flight,
        warmup: o.warmup,
        duration: o.duration,
    }
}

/// `rate/s, p50, p99` plus any errors.
fn describe(out: &mut Outcome) -> String {
    let mut s = format!(
        "{} p50 {} p99 {}",
        per_s(out.rate()),
        ms(out.p(0.50)),
        ms(out.p(0.99))
    );
    if !out.errors.is_empty() {
        s.push_str(&format!(" errors: {}", out.error_summary()));
    }
    s
}

/// checkInvite: `check_sockets` × `check_depth` (64 × 8) requests in
/// flight; the echo server gets exactly the same sockets and frames.
pub async fn check(world: &World, o: &Opts, rows: &mut Vec<Row>) {
    let make = check_frames(world).await;
    let (sockets, depth) = (o.check_sockets, o.check_depth);

    let mut echo = Proc::spawn(&["--echo"]);
    echo.ready(Instant::now(), false).await;
    let echo_sockets = connect_many(&echo.base, sockets).await;
    let (mut base, _) = load::run(echo_sockets, shape(o, depth), make.clone(), None).await;
    drop(echo);

    let mut out = check_load(world, o, make).await;
    let ratio = out.rate() / base.rate();
    rows.push(Row {
        scenario: format!("checkInvite, {sockets} sockets × {depth} in flight"),
        measured: describe(&mut out),
        baseline: format!("echo {}", describe(&mut base)),
        ratio: pct(ratio),
        target: "≥ 50% of echo, p99 ≤ 20 ms".into(),
        pass: Some(ratio >= 0.5 && out.p(0.99) <= P99_LIMIT && out.errors.is_empty()),
    });
}

/// checkInvite frames over 256 fresh invites of the world's document.
async fn check_frames(world: &World) -> MakeFrame {
    let owner = world.sockets(std::slice::from_ref(&world.owner), 8).await;
    let (keys, _) = world.create_invites(owner, 256, 3600).await;
    let keys = Arc::new(keys);
    Arc::new(move |socket, seq, token| {
        let key = &keys[(socket * 7 + seq as usize) % keys.len()];
        Some(setup::key_frame("checkInvite", token, key))
    })
}

/// checkInvite load: `check_sockets` × `check_depth` in flight.
async fn check_load(world: &World, o: &Opts, make: MakeFrame) -> Outcome {
    let ks_sockets = world.sockets(&world.users, o.check_sockets).await;
    load::run(ks_sockets, shape(o, o.check_depth), make, None)
        .await
        .0
}

/// createInvite load: 64 owner sockets, one in flight each; with the
/// created keys.
async fn create_load(world: &World, o: &Opts) -> (Outcome, Vec<String>) {
    let sockets = world.sockets(std::slice::from_ref(&world.owner), 64).await;
    let make: MakeFrame = Arc::new(|_, _, token| Some(setup::create_frame(token, 3600)));
    let (keys, on_reply) = load::collector();
    let (out, _) = load::run(sockets, shape(o, 1), make, Some(on_reply)).await;
    let keys = std::mem::take(&mut *keys.lock().expect("keys"));
    (out, keys)
}

/// checkInvite and createInvite against a server without and with metrics
/// (`--metrics-listen`), one after the other on fresh servers.
pub async fn metrics(o: &Opts, rows: &mut Vec<Row>) {
    let mut runs = Vec::new();
    for mode in ["--serve", "--serve-metrics"] {
        let world = setup::world_serving(o.users, mode).await;
        let make = check_frames(&world).await;
        let check = check_load(&world, o, make).await;
        let (create, _) = create_load(&world, o).await;
        runs.push((check, create));
    }
    let [(mut check_off, mut create_off), (mut check_on, mut create_on)] =
        <[_; 2]>::try_from(runs).unwrap_or_else(|_| unreachable!("two runs"));
    for (name, on, off) in [
        ("checkInvite, metrics on", &mut check_on, &mut check_off),
        (
            "createInvite (durable), metrics on",
            &mut create_on,
            &mut create_off,
        ),
    ] {
        let ratio = on.rate() / off.rate();
        rows.push(Row {
            scenario: name.into(),
            measured: describe(on),
            baseline: format!("metrics off: {}", describe(off)),
            ratio: pct(ratio),
            target: "≥ 90% of off (noise on a shared box)".into(),
            pass: Some(ratio >= 0.9 && on.errors.is_empty()),
        });
    }
}

async fn connect_many(base: &str, n: usize) -> Vec<load::Socket> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(load::connect(base, "/", None).await);
    }
    out
}

/// createInvite over 64 owner sockets, one in flight each, against 64
/// tasks doing sled insert + blocking flush. Returns the created keys.
pub async fn create(world: &World, o: &Opts, rows: &mut Vec<Row>) -> Vec<String> {
    let mut plain = storage::sled_baseline(64, o.warmup, o.duration, false).await;
    let mut group = storage::sled_baseline(64, o.warmup, o.duration, true).await;

    let (mut out, keys) = create_load(world, o).await;
    let ratio = out.rate() / plain.rate();
    rows.push(Row {
        scenario: "createInvite (durable), 64 sockets × 1".into(),
        measured: describe(&mut out),
        baseline: format!("sled insert+flush ×64: {}", describe(&mut plain)),
        ratio: pct(ratio),
        target: "≥ 5,000/s, ≥ 50% of sled, p99 ≤ 20 ms".into(),
        pass: Some(
            out.rate() >= 5000.0
                && ratio >= 0.5
                && out.p(0.99) <= P99_LIMIT
                && out.errors.is_empty(),
        ),
    });
    rows.push(Row::info(
        "sled insert + group-commit flush ×64 (reference)",
        describe(&mut group),
    ));
    keys
}

/// acceptInvite: every user accepts invites nobody accepted before, so each
/// accept writes a use count and a permission entry in one transaction.
pub async fn accept(world: &World, o: &Opts, mut pool: Vec<String>, rows: &mut Vec<Row>) {
    let users = world.users.len();
    // Enough fresh invites for each user to accept 300 a second.
    let per_user = (300.0 * (o.warmup + o.duration).as_secs_f64()) as usize;
    let needed = users * per_user;
    if pool.len() < needed {
        let owner = world.sockets(std::slice::from_ref(&world.owner), 64).await;
        let (more, _) = world
            .create_invites(owner, (needed - pool.len()) as u64, 3600)
            .await;
        pool.extend(more);
    }
    let pool = Arc::new(pool);
    let make: MakeFrame = Arc::new(move |socket, seq, token| {
        let seq = seq as usize;
        (seq < per_user)
            .then(|| setup::key_frame("acceptInvite", token, &pool[socket * per_user + seq]))
    });
    let mut sled = storage::sled_baseline(users, o.warmup, o.duration, false).await;
    let sockets = world.sockets(&world.users, users).await;
    let (mut out, _) = load::run(sockets, shape(o, 1), make, None).await;
    rows.push(Row {
        scenario: format!("acceptInvite (durable) by {users} distinct users × 1"),
        measured: describe(&mut out),
        baseline: format!("sled insert+flush ×{users}: {}", describe(&mut sled)),
        ratio: pct(out.rate() / sled.rate()),
        target: "≥ 2,000/s".into(),
        pass: Some(out.rate() >= 2000.0 && out.errors.is_empty()),
    });
}

//! The processes under test. The bench re-executes itself with a hidden
//! mode so that every server (keystrate, the echo baseline, the warp
//! hello-world baseline, the store populator) is a separate process on
//! loopback whose memory can be read from `/proc`.

use futures_util::{SinkExt, StreamExt};
use keystrate::config::{Config, ServeArgs};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A child process, killed when dropped.
pub struct Proc {
    child: Child,
    pub base: String,
}

impl Proc {
    /// Starts `bench <args…>` on a free loopback port, which is appended to
    /// `args` and returned in `base` as `http://127.0.0.1:<port>`.
    pub fn spawn(args: &[&str]) -> Proc {
        let port = free_port();
        let child = Command::new(std::env::current_exe().expect("own path"))
            .args(args)
            .arg(port.to_string())
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn server process");
        Proc {
            child,
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident set size in KiB (VmRSS).
    pub fn rss_kb(&self) -> u64 {
        crate::procfs::rss_kb(self.pid())
    }

    /// Waits until the process accepts TCP connections (or answers
    /// `/health` when `health` is set); returns how long that took since
    /// `since`.
    pub async fn ready(&mut self, since: Instant, health: bool) -> Duration {
        let addr = self.base.trim_start_matches("http://").to_string();
        let http = reqwest::Client::new();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("server process exited early: {status}");
            }
            let up = if health {
                matches!(http.get(format!("{}/health", self.base)).send().await,
                         Ok(r) if r.status() == 200)
            } else {
                tokio::net::TcpStream::connect(&addr).await.is_ok()
            };
            if up {
                return since.elapsed();
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Graceful stop (SIGTERM: the server flushes and exits).
    pub fn stop(mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // Drop kills it.
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// CPU time (user + system) process `pid` has used so far, from
/// `/proc/<pid>/stat`, which counts it in ticks of 10 ms (Linux's USER_HZ).
pub fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("procfs stat");
    // The command name in parentheses may hold spaces: count fields after it.
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let ticks: u64 = after_name
        .split_whitespace()
        .skip(11) // state … cmajflt: utime is field 14, stime 15
        .take(2)
        .filter_map(|t| t.parse::<u64>().ok())
        .sum();
    Duration::from_millis(ticks * 10)
}

/// A port that was free a moment ago (the child binds it right away).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn listen(port: &str) -> std::net::SocketAddr {
    format!("127.0.0.1:{port}").parse().expect("port")
}

/// `--serve <data dir> <port>`: keystrate itself, with the connection cap
/// raised so the idle-socket scenario is not refused. `--serve-metrics`
/// also records and serves Prometheus metrics (on a port of its own).
pub async fn serve(data: &Path, port: &str, metrics: bool) {
    let running = keystrate::start(Config {
        data: data.to_path_buf(),
        serve: ServeArgs {
            listen: listen(port),
            max_connections: 30_000,
            // The idle-socket scenario holds all its sockets as one user.
            max_sockets_per_user: 30_000,
            // The per-socket request rate and the per-document invite cap
            // are policies (tested in tests/it/websocket.rs, tests/it/invites.rs);
            // the bench measures capacity.
            ws_rate_limit: 1_000_000,
            max_invites_per_document: usize::MAX,
            cache_mb: cache_mb(),
            metrics_listen: metrics.then(|| listen("0")),
            ..ServeArgs::default()
        },
    })
    .await
    .expect("keystrate starts");
    let stop = running.stop_signal();
    tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("signal handler");
        term.recv().await;
        let _ = stop.send(true);
    });
    running.wait().await;
}

/// The page cache the bench's servers use: `KEYSTRATE_CACHE_MB`, as for the
/// real binary, or the default.
pub fn cache_mb() -> u64 {
    std::env::var("KEYSTRATE_CACHE_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(keystrate::store::DEFAULT_CACHE_MB)
}

/// `--echo <port>`: the transport baseline, a bare tokio-tungstenite server
/// that sends every text frame back, one send (and flush) per frame like
/// keystrate's writer. `small` (`--echo-small`) sets a 4 KiB read buffer
/// instead of tungstenite's 128 KiB default, which it zero-fills on its
/// first read: that is what an idle socket costs.
pub async fn echo(port: &str, small: bool) {
    let config = small.then(|| {
        tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default().read_buffer_size(4096)
    });
    let listener = tokio::net::TcpListener::bind(listen(port))
        .await
        .expect("bind");
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        tokio::spawn(async move {
            let Ok(mut ws) = tokio_tungstenite::accept_async_with_config(stream, config).await
            else {
                return;
            };
            while let Some(Ok(msg)) = ws.next().await {
                if (msg.is_text() || msg.is_binary()) && ws.send(msg).await.is_err() {
                    break;
                }
            }
        });
    }
}

/// `--hello <port>`: the HTTP baseline, warp's hello world.
pub async fn hello(port: &str) {
    use warp::Filter;
    let route = warp::any().map(|| "Hello, world!");
    warp::serve(route).run(listen(port)).await;
}

/// A fresh temporary directory under the system temp dir.
pub fn temp_dir(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("keystrate-bench-{name}-"))
        .tempdir()
        .expect("temp dir")
}

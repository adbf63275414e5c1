//! The load generator: tokio-tungstenite clients that keep a fixed number of
//! requests in flight per socket (closed loop) and record each request's
//! latency. The same code drives keystrate and the echo baseline.

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Opens a WebSocket to `<base>/<path>` with an optional session cookie.
/// Client buffers are kept small: the bench holds 10,000 of these.
pub async fn connect(base: &str, path: &str, cookie: Option<&str>) -> Socket {
    let url = format!("{}{path}", base.replacen("http", "ws", 1));
    let mut req = url.into_client_request().expect("url");
    if let Some(c) = cookie {
        req.headers_mut().insert(
            "cookie",
            format!("keystrate_session={c}").parse().expect("cookie"),
        );
    }
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let mut last = None;
    // The listen backlog overflows when thousands connect at once; retry.
    for _ in 0..20 {
        match tokio_tungstenite::connect_async_with_config(req.clone(), Some(config), true).await {
            Ok((socket, _)) => return socket,
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("connect {path}: {last:?}");
}

/// Connects to a keystrate document and reads the `hello` frame.
pub async fn connect_doc(base: &str, doc: &str, cookie: &str) -> (Socket, Value) {
    let mut socket = connect(base, &format!("/{doc}/ws"), Some(cookie)).await;
    let hello = next_json(&mut socket).await.expect("hello frame");
    assert_eq!(hello["wa"], "hello", "first frame: {hello}");
    (socket, hello)
}

/// The next text frame; `None` once the socket is closed or silent for
/// 10 s.
pub async fn next_text(socket: &mut Socket) -> Option<String> {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .ok()??;
        match msg {
            Ok(Message::Text(t)) => return Some(t.as_str().to_string()),
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => continue,
        }
    }
}

/// The next text frame as JSON.
pub async fn next_json(socket: &mut Socket) -> Option<Value> {
    serde_json::from_str(&next_text(socket).await?).ok()
}

/// The value of the first `"token":"…"` in a frame, found without parsing
/// the frame: the load generator must stay cheap next to the server it
/// shares the machine with. Tokens never contain quotes or escapes.
fn token_of(frame: &str) -> Option<&str> {
    let start = frame.find("\"token\":\"")? + 9;
    let len = frame[start..].find('"')?;
    Some(&frame[start..start + len])
}

/// The `code` of an error reply, or `None` for a successful one.
fn error_code(frame: &str) -> Option<String> {
    if !frame.contains("\"error\":") {
        return None;
    }
    let v: Value = serde_json::from_str(frame).unwrap_or_default();
    Some(v["code"].as_str().unwrap_or("?").to_string())
}

/// One request and its reply (for setup steps).
pub async fn call(socket: &mut Socket, frame: Value) -> Value {
    let token = frame["token"].clone();
    socket
        .send(Message::text(frame.to_string()))
        .await
        .expect("send");
    loop {
        let v = next_json(socket).await.expect("reply");
        if v["token"] == token {
            return v;
        }
    }
}

/// Builds request number `seq` of socket `socket` with `token`; `None` when
/// that socket has no more work.
pub type MakeFrame = Arc<dyn Fn(usize, u64, &str) -> Option<String> + Send + Sync>;
/// Sees every successful reply (e.g. to collect created invite keys).
pub type OnReply = Arc<dyn Fn(&Value) + Send + Sync>;

/// How a closed-loop run is shaped.
#[derive(Clone)]
pub struct Shape {
    pub in_flight: usize,
    pub warmup: Duration,
    pub duration: Duration,
}

/// What a run measured inside its window.
#[derive(Default, Debug)]
pub struct Outcome {
    pub ok: u64,
    pub errors: HashMap<String, u64>,
    /// Microseconds, successful requests only.
    pub latencies: Vec<u32>,
    pub window: Duration,
}

impl Outcome {
    pub fn rate(&self) -> f64 {
        self.ok as f64 / self.window.as_secs_f64()
    }

    /// `cpu` spread over the successful requests.
    pub fn per_request(&self, cpu: Duration) -> Duration {
        Duration::from_secs_f64(cpu.as_secs_f64() / self.ok.max(1) as f64)
    }

    pub fn p(&mut self, q: f64) -> Duration {
        percentile(&mut self.latencies, q)
    }

    pub fn error_summary(&self) -> String {
        let mut parts: Vec<String> = self
            .errors
            .iter()
            .map(|(code, n)| format!("{code}×{n}"))
            .collect();
        parts.sort();
        parts.join(", ")
    }

    fn merge(&mut self, other: Outcome) {
        self.ok += other.ok;
        for (code, n) in other.errors {
            *self.errors.entry(code).or_default() += n;
        }
        self.latencies.extend(other.latencies);
    }
}

/// `concurrency` tasks each running `op` back to back for warmup +
/// duration; only the runs that finish inside the window count, as a success
/// or as the error they name.
pub async fn closed_loop<F, Fut>(
    concurrency: usize,
    warmup: Duration,
    duration: Duration,
    op: F,
) -> Outcome
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<(), String>> + Send,
{
    let start = Instant::now();
    let (from, until) = (start + warmup, start + warmup + duration);
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let op = op.clone();
            tokio::spawn(async move {
                let mut out = Outcome::default();
                while Instant::now() < until {
                    let sent = Instant::now();
                    let result = op().await;
                    let now = Instant::now();
                    if now < from || now > until {
                        continue;
                    }
                    match result {
                        Ok(()) => {
                            out.ok += 1;
                            out.latencies
                                .push(now.duration_since(sent).as_micros() as u32);
                        }
                        Err(e) => *out.errors.entry(e).or_default() += 1,
                    }
                }
                out
            })
        })
        .collect();
    let mut total = Outcome {
        window: duration,
        ..Outcome::default()
    };
    for t in tasks {
        total.merge(t.await.expect("load task"));
    }
    total
}

/// Runs `load`, a closed loop started now with this `warmup` and
/// `duration`, and returns its outcome with the CPU time each process of
/// `pids` used during the loop's measured window.
pub async fn with_cpu(
    pids: &[u32],
    warmup: Duration,
    duration: Duration,
    load: impl std::future::Future<Output = Outcome>,
) -> (Outcome, Vec<Duration>) {
    let pids = pids.to_vec();
    let sample = async move {
        tokio::time::sleep(warmup).await;
        let before: Vec<Duration> = pids.iter().map(|p| crate::procs::cpu_time(*p)).collect();
        tokio::time::sleep(duration).await;
        let after = pids.iter().map(|p| crate::procs::cpu_time(*p));
        after
            .zip(before)
            .map(|(a, b)| a.saturating_sub(b))
            .collect()
    };
    tokio::join!(load, sample)
}

/// The `q` quantile (0–1) of microsecond samples.
pub fn percentile(samples: &mut [u32], q: f64) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    samples.sort_unstable();
    let i = ((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1;
    Duration::from_micros(samples[i] as u64)
}

/// Drives every socket closed-loop for warmup + duration; only replies that
/// arrive inside the measurement window count. Returns the sockets for
/// reuse once their in-flight requests are answered.
pub async fn run(
    sockets: Vec<Socket>,
    shape: Shape,
    make: MakeFrame,
    on_reply: Option<OnReply>,
) -> (Outcome, Vec<Socket>) {
    let start = Instant::now();
    let window = (start + shape.warmup, start + shape.warmup + shape.duration);
    let tasks: Vec<_> = sockets
        .into_iter()
        .enumerate()
        .map(|(i, socket)| {
            let (make, on_reply, shape) = (make.clone(), on_reply.clone(), shape.clone());
            tokio::spawn(drive(i, socket, shape, window, make, on_reply))
        })
        .collect();
    let mut total = Outcome {
        window: shape.duration,
        ..Outcome::default()
    };
    let mut back = Vec::new();
    for task in tasks {
        let (outcome, socket) = task.await.expect("load task");
        total.merge(outcome);
        back.extend(socket);
    }
    (total, back)
}

async fn drive(
    index: usize,
    mut socket: Socket,
    shape: Shape,
    (from, until): (Instant, Instant),
    make: MakeFrame,
    on_reply: Option<OnReply>,
) -> (Outcome, Option<Socket>) {
    let mut out = Outcome::default();
    let mut pending: HashMap<String, Instant> = HashMap::new();
    let mut seq = 0u64;
    let mut exhausted = false;
    loop {
        while !exhausted && pending.len() < shape.in_flight && Instant::now() < until {
            let token = format!("t{seq}");
            let Some(frame) = make(index, seq, &token) else {
                exhausted = true;
                break;
            };
            seq += 1;
            pending.insert(token, Instant::now());
            if socket.send(Message::text(frame)).await.is_err() {
                return (out, None);
            }
        }
        if pending.is_empty() {
            break;
        }
        let Some(reply) = next_text(&mut socket).await else {
            return (out, None);
        };
        let Some(sent) = token_of(&reply).and_then(|t| pending.remove(t)) else {
            continue; // an event, not a reply
        };
        let now = Instant::now();
        let error = error_code(&reply);
        if let (None, Some(f)) = (&error, &on_reply) {
            // Every success, warm-up included: its effects exist.
            f(&serde_json::from_str(&reply).unwrap_or_default());
        }
        if now < from || now > until {
            continue;
        }
        match error {
            Some(code) => *out.errors.entry(code).or_default() += 1,
            None => {
                out.ok += 1;
                out.latencies
                    .push(now.duration_since(sent).as_micros() as u32);
            }
        }
    }
    (out, Some(socket))
}

/// Collects values from replies across tasks.
pub fn collector() -> (Arc<Mutex<Vec<String>>>, OnReply) {
    let store = Arc::new(Mutex::new(Vec::new()));
    let sink = store.clone();
    let f: OnReply = Arc::new(move |v: &Value| {
        if let Some(k) = v["reply"]["key"].as_str() {
            sink.lock().expect("collector").push(k.to_string());
        }
    });
    (store, f)
}

//! Test harness: a real server on a loopback port with a temporary data
//! directory, and real HTTP and WebSocket clients.
#![allow(dead_code)]

pub mod flood;
pub mod ledger;
pub mod metrics;
pub mod mount;
pub mod process;
pub mod procfs;

use futures_util::{SinkExt, StreamExt};
use keystrate::config::{Config, ServeArgs};
use serde_json::{json, Value};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub struct TestServer {
    pub running: Option<keystrate::Running>,
    pub dir: tempfile::TempDir,
    pub base: String,
    pub addr: std::net::SocketAddr,
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    /// Starts with flags adjusted by `tweak`.
    pub async fn start_with(tweak: impl FnOnce(&mut ServeArgs)) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut serve = ServeArgs {
            listen: "127.0.0.1:0".parse().unwrap(),
            ..ServeArgs::default()
        };
        tweak(&mut serve);
        ledger::capture_in_process_logs();
        let running = keystrate::start(Config {
            data: dir.path().to_path_buf(),
            serve,
        })
        .await
        .expect("server starts");
        let addr = running.addr;
        TestServer {
            base: format!("http://{addr}"),
            running: Some(running),
            dir,
            addr,
        }
    }

    pub fn engine(&self) -> &keystrate::engine::Engine {
        &self.running.as_ref().unwrap().engine
    }

    pub fn hub(&self) -> &keystrate::ws::hub::Hub {
        &self.running.as_ref().unwrap().hub
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A fresh HTTP client (see [`client`]).
    pub fn client(&self) -> reqwest::Client {
        client()
    }

    /// Registers `name` and returns a logged-in client.
    pub async fn user(&self, name: &str) -> User {
        process::register(&self.base, name).await
    }

    pub async fn stop(&mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown().await;
        }
    }
}

/// The password every test account is given.
pub const PASSWORD: &str = "correct horse";

/// A login or registration body for `name` with [`PASSWORD`].
pub fn credentials(name: &str) -> Value {
    json!({"username": name, "password": PASSWORD})
}

/// A fresh HTTP client with its own cookie jar that does not follow
/// redirects (tests assert them).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Sending a request and reading its answer in one step, for the many
/// places that only want the status or the JSON body.
#[allow(async_fn_in_trait)]
pub trait Call {
    /// The answer (the request must reach the server).
    async fn sent(self) -> reqwest::Response;
    /// The answer's status.
    async fn status_code(self) -> u16;
    /// The answer's JSON body, whatever its status.
    async fn value(self) -> Value;
}

impl Call for reqwest::RequestBuilder {
    async fn sent(self) -> reqwest::Response {
        self.send().await.expect("the request reaches the server")
    }

    async fn status_code(self) -> u16 {
        self.sent().await.status().as_u16()
    }

    async fn value(self) -> Value {
        let r = self.sent().await;
        let status = r.status();
        let text = r.text().await.unwrap();
        let value =
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("{status}: not JSON: {text}"));
        // Every secret an answer carries (invite keys, API key secrets,
        // JWTs) must stay out of the server's logs (`ledger.rs`).
        ledger::record_in(&value);
        value
    }
}

/// Polls `condition` every 50 ms until it holds; fails after 30 s. For
/// waiting on a condition rather than sleeping a guessed time.
pub async fn wait_until<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !condition().await {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The `keystrate_session` value an answer sets, if any.
pub fn session_cookie(r: &reqwest::Response) -> Option<String> {
    let cookie = r.headers().get_all("set-cookie").iter().find_map(|v| {
        let v = v.to_str().ok()?;
        v.strip_prefix("keystrate_session=")
            .map(|rest| rest.split(';').next().unwrap().to_string())
    });
    cookie.inspect(|c| ledger::record(c))
}

/// A loopback port nobody listens on (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Records a skipped test where `.ci/run` counts it (`KEYSTRATE_SKIP_LOG`)
/// and prints it; under `CI=true` a skip is a failure.
pub fn skip(test: &str, reason: &str) {
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true forbids skipping {test}: {reason}"
    );
    let line = format!("SKIP: {test}: {reason}");
    eprintln!("{line}");
    if let Ok(path) = std::env::var("KEYSTRATE_SKIP_LOG") {
        use std::io::Write;
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .expect("KEYSTRATE_SKIP_LOG is writable");
        writeln!(log, "{line}").unwrap();
    }
}

pub struct User {
    pub name: String,
    pub http: reqwest::Client,
    pub cookie: String,
    pub base: String,
}

impl User {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// `POST path` with a JSON body, with this user's session.
    pub fn post(&self, path: &str, body: &Value) -> reqwest::RequestBuilder {
        self.http.post(self.url(path)).json(body)
    }

    /// `GET path` with this user's session.
    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.get(self.url(path))
    }

    /// Creates a document owned by this user.
    pub async fn create_doc(&self, id: &str) {
        let status = self
            .post("/api/documents", &json!({"id": id}))
            .status_code()
            .await;
        assert_eq!(status, 201, "create {id}");
    }

    pub async fn ws(&self, doc: &str) -> Ws {
        Ws::connect(&self.base, doc, Some(&self.cookie), None)
            .await
            .expect("ws connects")
    }

    /// Creates an app key of `doc` (`POST /v1/apps/{doc}/keys`): its id
    /// and secret.
    pub async fn app_key(&self, doc: &str, name: &str) -> (String, String) {
        let path = format!("/v1/apps/{doc}/keys");
        key_of(self.post(&path, &json!({"name": name})).value().await)
    }

    /// Creates an account key (`POST /v1/account/keys`): its id and secret.
    pub async fn account_key(&self, name: &str) -> (String, String) {
        key_of(
            self.post("/v1/account/keys", &json!({"name": name}))
                .value()
                .await,
        )
    }
}

/// The id and secret of a key creation's answer.
fn key_of(created: Value) -> (String, String) {
    let field = |name: &str| {
        created["key"][name]
            .as_str()
            .unwrap_or_else(|| panic!("no key.{name} in {created}"))
            .to_string()
    };
    let secret = field("secret");
    ledger::record(&secret);
    (field("_id"), secret)
}

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A WebSocket client that keeps events apart from replies.
pub struct Ws {
    pub socket: Socket,
    pub hello: Value,
    pub events: Vec<Value>,
    next_token: u64,
}

impl Ws {
    /// Connects; the error is the HTTP status when the upgrade is refused.
    pub async fn connect(
        base: &str,
        doc: &str,
        cookie: Option<&str>,
        origin: Option<&str>,
    ) -> Result<Ws, u16> {
        let origin: Vec<(&str, &str)> = origin.map(|o| ("origin", o)).into_iter().collect();
        Self::connect_with(base, doc, cookie, &origin).await
    }

    /// Like `connect`, with extra request headers.
    pub async fn connect_with(
        base: &str,
        doc: &str,
        cookie: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Result<Ws, u16> {
        let url = format!("{}/{doc}/ws", base.replacen("http", "ws", 1));
        let mut req = url.into_client_request().unwrap();
        if let Some(c) = cookie {
            req.headers_mut()
                .insert("cookie", format!("keystrate_session={c}").parse().unwrap());
        }
        for (name, value) in headers {
            req.headers_mut().append(
                tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(name.as_bytes())
                    .unwrap(),
                value.parse().unwrap(),
            );
        }
        let (mut socket, _) = match tokio_tungstenite::connect_async(req).await {
            Ok(ok) => ok,
            Err(tokio_tungstenite::tungstenite::Error::Http(r)) => return Err(r.status().as_u16()),
            Err(e) => panic!("ws connect failed: {e}"),
        };
        let hello = next_json(&mut socket).await.expect("hello frame");
        assert_eq!(hello["wa"], "hello");
        Ok(Ws {
            socket,
            hello,
            events: Vec::new(),
            next_token: 0,
        })
    }

    pub async fn send_raw(&mut self, frame: Message) {
        self.socket.send(frame).await.unwrap();
    }

    /// Sends a request and waits for its reply (events seen meanwhile are
    /// kept in `events`).
    pub async fn request(&mut self, wa: &str, d: Option<&str>, options: Value) -> Value {
        self.try_request(wa, d, options)
            .await
            .expect("reply before close")
    }

    /// Like `request`, but `None` when the socket dies first.
    pub async fn try_request(
        &mut self,
        wa: &str,
        d: Option<&str>,
        options: Value,
    ) -> Option<Value> {
        self.next_token += 1;
        let token = format!("t{}", self.next_token);
        let mut frame = json!({"wa": wa, "token": token, "options": options});
        if let Some(d) = d {
            frame["d"] = json!(d);
        }
        self.socket
            .send(Message::text(frame.to_string()))
            .await
            .ok()?;
        loop {
            let v = next_json(&mut self.socket).await?;
            ledger::record_in(&v);
            if v["wa"] == "reply" && v["token"] == token {
                return Some(v);
            }
            self.events.push(v);
        }
    }

    /// The reply value, panicking with the error otherwise.
    pub async fn ok(&mut self, wa: &str, d: Option<&str>, options: Value) -> Value {
        let r = self.request(wa, d, options).await;
        assert!(r.get("error").is_none(), "{wa} failed: {r}");
        r["reply"].clone()
    }

    /// The error code of a request that must fail.
    pub async fn err(&mut self, wa: &str, d: Option<&str>, options: Value) -> (String, String) {
        let r = self.request(wa, d, options).await;
        assert!(r.get("reply").is_none(), "{wa} should fail: {r}");
        (
            r["code"].as_str().unwrap().to_string(),
            r["error"].as_str().unwrap().to_string(),
        )
    }

    /// Waits for the next event of `kind` (from the backlog first).
    pub async fn event(&mut self, kind: &str) -> Value {
        if let Some(i) = self.events.iter().position(|e| e["wa"] == kind) {
            return self.events.remove(i);
        }
        loop {
            let v = next_json(&mut self.socket)
                .await
                .expect("event before close");
            if v["wa"] == kind {
                return v;
            }
            self.events.push(v);
        }
    }

    /// Whether the server closes this socket within `limit`. A request is
    /// sent now and then to find out: one that crossed the close may still
    /// be answered, so a reply alone proves nothing.
    pub async fn closes_within(&mut self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        while tokio::time::Instant::now() < deadline {
            if self
                .try_request("getInvites", None, json!({}))
                .await
                .is_none()
            {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    /// Collects every frame arriving within `wait`.
    pub async fn drain(&mut self, wait: Duration) -> Vec<Value> {
        let mut out = std::mem::take(&mut self.events);
        while let Ok(Some(v)) = tokio::time::timeout(wait, next_json(&mut self.socket)).await {
            out.push(v);
        }
        out
    }
}

/// The next text frame as JSON; `None` when the socket closed.
pub async fn next_json(socket: &mut Socket) -> Option<Value> {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("frame within 10 s")?;
        match msg {
            Ok(Message::Text(t)) => return Some(serde_json::from_str(&t).expect("JSON frame")),
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => continue,
        }
    }
}

/// Waits (up to `limit`, skipping other frames) for the socket's close
/// frame: its code and reason.
pub async fn close_frame(
    socket: &mut Socket,
    limit: Duration,
) -> (
    tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode,
    String,
) {
    let deadline = std::time::Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match tokio::time::timeout(left, socket.next()).await {
            Ok(Some(Ok(Message::Close(Some(frame))))) => {
                return (frame.code, frame.reason.to_string())
            }
            Ok(Some(Ok(_))) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

/// A WebSocket on `doc` whose receive buffer is a few KiB, with its
/// clientId (its hello is read).
pub async fn never_reading_socket(server: &TestServer, cookie: &str, doc: &str) -> (Socket, Value) {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let tcp = tokio::net::TcpSocket::new_v4().unwrap();
    tcp.set_recv_buffer_size(4096).unwrap();
    let stream = tcp.connect(server.addr).await.unwrap();
    let url = format!("{}/{doc}/ws", server.base.replacen("http", "ws", 1));
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert(
        "cookie",
        format!("keystrate_session={cookie}").parse().unwrap(),
    );
    let stream = tokio_tungstenite::MaybeTlsStream::Plain(stream);
    let (mut socket, _) = tokio_tungstenite::client_async(request, stream)
        .await
        .unwrap();
    let hello = next_json(&mut socket).await.unwrap();
    assert_eq!(hello["wa"], "hello");
    (socket, hello["clientId"].clone())
}

/// Opens and drops sockets of `owner` on `doc`, sixteen at a time (each a
/// join and a part that the never-reading socket `idle` is sent), until
/// `reader` hears `idle` part; then `idle` must get its 1008 close frame.
pub async fn churn_until_evicted(
    owner: &User,
    doc: &str,
    reader: &mut Ws,
    (idle, idle_id): (&mut Socket, &Value),
) {
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    let mut churned = 0;
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "never evicted after {churned} joins"
        );
        // Sixteen at a time: the round trips overlap on a loaded machine.
        let batch = futures_util::future::join_all((0..16).map(|_| owner.ws(doc))).await;
        drop(batch);
        churned += 16;
        let r = reader.request("getPermissions", None, json!({})).await;
        assert_eq!(r["reply"][0]["permissions"], "arw", "{r}");
        let parted = reader
            .events
            .drain(..)
            .any(|e| e["wa"] == "clientPart" && e["clientId"] == *idle_id);
        if parted {
            break;
        }
    }
    let (code, reason) = close_frame(idle, Duration::from_secs(60)).await;
    assert_eq!(
        (code, reason.as_str()),
        (
            tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode::Policy,
            "too slow to read events"
        )
    );
}

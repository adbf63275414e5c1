//! Operating the server: request logs (text or JSON), Prometheus metrics on
//! their own listener, and the route templates both of them use as labels.
//! See `docs/architecture.md` ("Operations") and `docs/deploy.md`.
//!
//! The `metrics` macros are no-ops until a recorder is installed, and one is
//! installed only with `--metrics-listen`: without it metrics cost nothing.

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Instant;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Metric names, in one place so docs and tests can name them.
pub(crate) mod names {
    /// Counter: invite events, labels `event` (created, accepted, removed,
    /// expired) and `outcome` (`ok` or the error code).
    pub const INVITES: &str = "keystrate_invites_total";
    /// Gauge: WebSockets open now.
    pub const SOCKETS_OPEN: &str = "keystrate_websockets_open";
    /// Histogram (seconds): WebSocket requests, label `action`.
    pub const WS_REQUEST_SECONDS: &str = "keystrate_ws_request_seconds";
    /// Histogram (seconds): HTTP requests, labels `method`, `route`, `status`.
    pub const HTTP_REQUEST_SECONDS: &str = "keystrate_http_request_seconds";
    /// Histogram (seconds): one storage flush (group commit).
    pub const STORAGE_FLUSH_SECONDS: &str = "keystrate_storage_flush_seconds";
    /// Counter: requests refused by a limit or guard, label `limit`.
    pub const REFUSALS: &str = "keystrate_refusals_total";
    /// Gauge: password hashes queued or running.
    pub const HASHING_QUEUE: &str = "keystrate_password_hashing_queue";
    /// Counter: Argon2 computations finished (hashing a new password or
    /// checking one). A login for an unknown user counts one too: that is
    /// how it spends the same work as a wrong password for a known user.
    pub const PASSWORD_HASHES: &str = "keystrate_password_hashes_total";
}

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object a line, with the request's span fields.
    Json,
}

/// Sets up logging on standard error (`RUST_LOG` filters, default
/// `keystrate=info`).
pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "keystrate=info".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        // Colour codes only on a terminal: journald and log files get plain text.
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        // `span` is the innermost span (the request); `spans` lists every
        // open one from the connection inward, with their fields.
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .init(),
    }
}

/// Latency buckets in seconds: 100 µs (a cached read) to 10 s (a stalled
/// disk).
const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// The process-wide Prometheus recorder, installed on first use. Several
/// servers in one process (tests) share it.
pub(crate) fn recorder() -> Result<PrometheusHandle, String> {
    static HANDLE: OnceLock<Result<PrometheusHandle, String>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                // Histograms, not the exporter's default summaries: buckets
                // add up across servers and over time.
                .set_buckets(LATENCY_BUCKETS)
                .and_then(|b| b.install_recorder())
                .map_err(|e| format!("cannot install the metrics recorder: {e}"))
        })
        .clone()
}

/// Serves `/metrics` (and nothing else) on `listener` until shutdown.
pub(crate) async fn serve_metrics(
    listener: TcpListener,
    handle: PrometheusHandle,
    mut shutdown: watch::Receiver<bool>,
) {
    use warp::Filter;
    let metrics = warp::path!("metrics").and(warp::get()).map(move || {
        warp::reply::with_header(
            handle.render(),
            "content-type",
            "text/plain; version=0.0.4; charset=utf-8",
        )
    });
    let stop = async move {
        let _ = shutdown.wait_for(|stop| *stop).await;
    };
    warp::serve(metrics)
        .incoming(listener)
        .graceful(stop)
        .run()
        .await;
}

/// Counts one invite event by its outcome and hands the result back.
pub(crate) fn invite_event<T>(
    event: &'static str,
    result: crate::engine::Result<T>,
) -> crate::engine::Result<T> {
    let outcome = match &result {
        Ok(_) => "ok",
        Err(e) => e.code(),
    };
    metrics::counter!(names::INVITES, "event" => event, "outcome" => outcome).increment(1);
    result
}

/// Counts a refusal by a limit or guard.
pub(crate) fn refused(limit: &'static str) {
    metrics::counter!(names::REFUSALS, "limit" => limit).increment(1);
}

/// Measures the time from its creation to [`Timer::seconds`].
pub(crate) struct Timer(Instant);

impl Timer {
    pub(crate) fn start() -> Timer {
        Timer(Instant::now())
    }

    pub(crate) fn seconds(&self) -> f64 {
        self.0.elapsed().as_secs_f64()
    }
}

/// One HTTP request, from its head to its response: a span carrying the
/// fields every log line inside it shows (the session filter records
/// `user`), a log line when it ends, and the latency histogram.
pub(crate) struct RequestSpan {
    span: tracing::Span,
    method: String,
    route: &'static str,
    timer: Timer,
}

impl RequestSpan {
    pub(crate) fn start(method: &str, path: &str, client: SocketAddr) -> RequestSpan {
        let route = route_template(path);
        let span = tracing::info_span!(
            "request",
            method,
            route,
            client = %client.ip(),
            user = tracing::field::Empty,
        );
        RequestSpan {
            span,
            method: method.to_string(),
            route,
            timer: Timer::start(),
        }
    }

    pub(crate) fn span(&self) -> &tracing::Span {
        &self.span
    }

    pub(crate) fn finish(self, status: u16) {
        let latency = self.timer.seconds();
        metrics::histogram!(names::HTTP_REQUEST_SECONDS,
            "method" => self.method, "route" => self.route, "status" => status.to_string())
        .record(latency);
        let _entered = self.span.enter();
        tracing::info!(status, latency_ms = latency * 1000.0, "request");
    }
}

/// One accepted TCP connection, by the peer's address: the parent of the
/// spans of its requests (and of a WebSocket opened on it).
pub(crate) fn connection_span(peer: SocketAddr) -> tracing::Span {
    tracing::info_span!("connection", peer = %peer)
}

/// One upgraded WebSocket on `doc`, made inside the span of the request that
/// opened it (so its lines carry that request's client and user); `id`, the
/// socket's presence id, is recorded once chosen.
pub(crate) fn socket_span(doc: &str) -> tracing::Span {
    tracing::info_span!("socket", doc, id = tracing::field::Empty)
}

/// One WebSocket request: its action and target document.
pub(crate) fn ws_request_span(action: &str, doc: &str) -> tracing::Span {
    tracing::info_span!("ws_request", action, doc)
}

/// The client address behind trusted proxies, for the request span (set
/// once the headers are known).
pub(crate) fn client_of(
    peer: SocketAddr,
    trusted: &[ipnet::IpNet],
    headers: &warp::http::HeaderMap,
) -> SocketAddr {
    SocketAddr::new(
        crate::http::client::client_address(peer.ip(), trusted, headers),
        peer.port(),
    )
}

/// The route a path belongs to, as written in `docs/protocol.md`: a
/// bounded label for logs and metrics (no document ids, keys or names).
pub(crate) fn route_template(path: &str) -> &'static str {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match segments.as_slice() {
        [] => "/",
        ["health"] => "/health",
        ["ready"] => "/ready",
        ["openapi.json"] => "/openapi.json",
        ["new"] => "/new",
        ["auth", "register"] => "/auth/register",
        ["auth", "login"] => "/auth/login",
        ["auth", "logout"] => "/auth/logout",
        ["auth", "me"] => "/auth/me",
        ["auth", "password"] => "/auth/password",
        ["auth", ..] => "/auth/other",
        ["api", "documents"] => "/api/documents",
        ["api", "documents", _] => "/api/documents/{doc}",
        ["invites_api"] => "/invites_api",
        ["identity"] => "/identity",
        ["invite"] => "/invite",
        ["static", _] => "/static/{file}",
        ["v1" | "v1.1", rest @ ..] => v1_template(rest),
        [_] => "/{doc}",
        [_, "ws"] => "/{doc}/ws",
        _ => "other",
    }
}

fn v1_template(rest: &[&str]) -> &'static str {
    match rest {
        ["apps", _, "keys"] => "/v1/apps/{appId}/keys",
        ["apps", _, "keys", _] => "/v1/apps/{appId}/keys/{keyId}",
        ["apps", _, "keys", _, "jwt"] => "/v1/apps/{appId}/keys/{keyId}/jwt",
        ["apps", _, "invites"] => "/v1/apps/{appId}/invites",
        ["apps", _, "invites", _] => "/v1/apps/{appId}/invites/{key}",
        ["account", "keys"] => "/v1/account/keys",
        ["account", "keys", _] => "/v1/account/keys/{keyId}",
        ["account", "keys", _, "jwt"] => "/v1/account/keys/{keyId}/jwt",
        _ => "/v1/other",
    }
}

#[cfg(test)]
mod tests {
    use super::route_template;

    #[test]
    fn route_templates_never_carry_ids_keys_or_names() {
        for (path, template) in [
            ("/", "/"),
            ("/secret-doc", "/{doc}"),
            ("/secret-doc/ws", "/{doc}/ws"),
            ("/api/documents/secret-doc", "/api/documents/{doc}"),
            (
                "/v1/apps/secret-doc/invites/abcdef",
                "/v1/apps/{appId}/invites/{key}",
            ),
            ("/v1.1/account/keys/k1/jwt", "/v1/account/keys/{keyId}/jwt"),
            ("/a/b/c/d", "other"),
        ] {
            assert_eq!(route_template(path), template, "{path}");
        }
    }
}

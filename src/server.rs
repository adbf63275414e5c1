//! Starting and stopping the server: open storage, start the background
//! tasks, accept connections under a cap, and shut down in order (stop
//! accepting, close sockets with 1001, finish requests, flush).

use crate::config::Config;
use crate::directory::Directory;
use crate::engine::{expiry, Engine, EngineConfig};
use crate::http::origins::{origin_of, AllowedOrigins};
use crate::http::{self, App, Conn};
use crate::store::Store;
use crate::ws::hub::Hub;
use crate::ws::SocketPolicy;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tower_service::Service;
use tracing::Instrument;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot open data directory {path}: {cause}")]
    Storage { path: String, cause: String },
    #[error("cannot listen on {addr}: {cause}")]
    Listen {
        addr: SocketAddr,
        cause: std::io::Error,
    },
    #[error("{cause}")]
    Metrics { cause: String },
    #[error("{cause}")]
    Config { cause: String },
}

/// A started server.
pub struct Running {
    pub addr: SocketAddr,
    /// Where `/metrics` is served (`--metrics-listen`).
    pub metrics_addr: Option<SocketAddr>,
    pub public_url: String,
    pub engine: Engine,
    /// Every connected socket.
    pub hub: Arc<Hub>,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Running {
    /// Graceful shutdown: returns once everything is flushed.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
    }

    /// Resolves when the server has stopped (after [`Running::stop_signal`]).
    pub async fn wait(self) {
        let _ = self.task.await;
    }

    /// A handle that starts the graceful shutdown when sent `true`.
    pub fn stop_signal(&self) -> watch::Sender<bool> {
        self.shutdown.clone()
    }
}

/// Counts open connections (HTTP and upgraded WebSockets alike); a slot is
/// released when its last holder drops it.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Opens storage and starts listening. Tests use port 0.
pub async fn start(config: Config) -> Result<Running, StartError> {
    let storage_err = |cause: String| StartError::Storage {
        path: config.data.display().to_string(),
        cause,
    };
    // Listen and check the origins first: a start that fails on a busy
    // port or a bad origin leaves no data directory behind.
    let listener = TcpListener::bind(config.serve.listen)
        .await
        .map_err(|cause| StartError::Listen {
            addr: config.serve.listen,
            cause,
        })?;
    let metrics = match config.serve.metrics_listen {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .map_err(|cause| StartError::Listen { addr, cause })?,
        ),
        None => None,
    };
    let addr = listener.local_addr().map_err(|cause| StartError::Listen {
        addr: config.serve.listen,
        cause,
    })?;
    let public_url = config.public_url(addr);
    let origins = allowed_origins(&config, addr, &public_url)
        .map_err(|cause| StartError::Config { cause })?;
    let store = Store::open_with_cache(&config.data, config.serve.cache_mb)
        .map_err(|e| storage_err(e.to_string()))?;
    let hub = Arc::new(Hub::default());
    let engine = Engine::new(
        store,
        EngineConfig {
            open_registration: !config.serve.no_open_registration,
            create_on_visit: !config.serve.no_create_on_visit,
            max_invites_per_document: config.serve.max_invites_per_document,
            session_ttl: Duration::from_secs(config.serve.session_ttl),
        },
        hub.clone(),
    );
    let directory = Directory::new(engine.store(), &public_url);
    let app = App {
        engine: engine.clone(),
        hub: hub.clone(),
        public_url: public_url.clone().into(),
        origins: Arc::new(origins),
        trusted_proxies: Arc::new(config.serve.trusted_proxies.clone()),
        sockets: Arc::new(http::socket::SocketCounts::new(
            config.serve.max_sockets_per_user,
        )),
        socket_policy: SocketPolicy {
            ping: Duration::from_secs(config.serve.ws_ping_interval.max(1)),
            requests_per_s: config.serve.ws_rate_limit,
        },
        directory: Arc::new(directory),
        directory_writes_per_minute: config.serve.directory_writes_per_minute,
    };
    let (shutdown, shutdown_rx) = watch::channel(false);
    tokio::spawn(expiry::run(engine.clone(), shutdown_rx.clone()));
    let admin = match crate::admin::start(engine.clone(), &config.data, shutdown_rx.clone()) {
        Ok(task) => Some(task),
        Err(e) => {
            tracing::warn!(error = %e, "no admin socket; the CLI cannot reach this server");
            None
        }
    };
    let metrics_addr = match metrics {
        Some(listener) => {
            let handle =
                crate::observe::recorder().map_err(|cause| StartError::Metrics { cause })?;
            let addr = listener.local_addr().map_err(|cause| StartError::Listen {
                addr: config.serve.metrics_listen.unwrap_or(addr),
                cause,
            })?;
            tokio::spawn(crate::observe::serve_metrics(
                listener,
                handle,
                shutdown_rx.clone(),
            ));
            tracing::info!(%addr, "metrics at /metrics");
            Some(addr)
        }
        None => None,
    };
    let limits = config.serve.clone();
    let task = tokio::spawn(async move {
        serve(listener, app, limits, shutdown_rx).await;
        if let Some(admin) = admin {
            let _ = admin.await;
        }
    });
    tracing::info!(%addr, %public_url, data = %config.data.display(), "keystrate listening");
    Ok(Running {
        addr,
        metrics_addr,
        public_url,
        engine,
        hub,
        shutdown,
        task,
    })
}

/// The server's own origin, the operator's extra ones, and — when no public
/// URL was given and the server listens on loopback — the other loopback
/// names of the same port, so `localhost` and `127.0.0.1` both work.
fn allowed_origins(
    config: &Config,
    addr: SocketAddr,
    public_url: &str,
) -> Result<AllowedOrigins, String> {
    let mut texts = vec![public_url.to_string()];
    texts.extend(config.serve.allowed_origins.iter().cloned());
    if config.serve.public_url.is_none() && addr.ip().is_loopback() {
        let port = addr.port();
        for host in ["localhost", "127.0.0.1", "[::1]"] {
            texts.push(format!("http://{host}:{port}"));
        }
    }
    let origins = texts
        .iter()
        .map(|text| origin_of(text))
        .collect::<Result<_, _>>()?;
    Ok(AllowedOrigins::new(origins))
}

async fn serve(
    listener: TcpListener,
    app: App,
    limits: crate::config::ServeArgs,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(limits.header_read_timeout.max(1)));
    let engine = app.engine.clone();
    let hub = app.hub.clone();
    let trusted = app.trusted_proxies.clone();
    let routes = http::routes(app);
    let open = Arc::new(AtomicUsize::new(0));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Usually EMFILE: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        if open.load(Ordering::Relaxed) >= limits.max_connections {
            crate::observe::refused("max_connections");
            tokio::spawn(refuse(stream));
            continue;
        }
        open.fetch_add(1, Ordering::Relaxed);
        let conn = Conn {
            peer,
            slot: Arc::new(Slot(open.clone())),
        };
        let svc = warp::service(routes.clone());
        let trusted = trusted.clone();
        let svc =
            hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                let client = crate::observe::client_of(conn.peer, &trusted, req.headers());
                let request = crate::observe::RequestSpan::start(
                    req.method().as_str(),
                    req.uri().path(),
                    client,
                );
                req.extensions_mut().insert(conn.clone());
                if req.headers().contains_key(hyper::header::UPGRADE) {
                    let upgrade = hyper::upgrade::on(&mut req);
                    req.extensions_mut()
                        .insert(http::PendingUpgrade::new(upgrade));
                }
                let answer = svc.clone().call(req).instrument(request.span().clone());
                async move {
                    let response = answer.await;
                    if let Ok(response) = &response {
                        request.finish(response.status().as_u16());
                    }
                    response
                }
            });
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), svc)
            .into_owned();
        let watched = graceful.watch(connection);
        // Each request's span is made inside this one, so its lines name the
        // connection too.
        tokio::spawn(
            async move {
                if let Err(e) = watched.await {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
            }
            .instrument(crate::observe::connection_span(peer)),
        );
    }
    drop(listener);
    tracing::info!("shutting down: closing sockets");
    hub.close_all();
    if tokio::time::timeout(Duration::from_secs(10), graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after 10 s; closing anyway");
    }
    // Give upgraded sockets a moment to send their close frames.
    for _ in 0..100 {
        if hub.socket_count() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    match engine.store().flush_now() {
        Ok(()) => tracing::info!("storage flushed; bye"),
        Err(e) => tracing::error!(error = %e, "final flush failed"),
    }
}

/// Answers a connection over the cap with 503 after reading its request
/// head, so the client sees the status instead of a reset.
async fn refuse(mut stream: TcpStream) {
    let mut buf = [0u8; 2048];
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let mut seen = Vec::new();
        while let Ok(n) = stream.read(&mut buf).await {
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&buf[..n]);
            if seen.windows(4).any(|w| w == b"\r\n\r\n") || seen.len() > 16 * 1024 {
                break;
            }
        }
    })
    .await;
    let body = "Server is at its connection limit; try again shortly.\n";
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

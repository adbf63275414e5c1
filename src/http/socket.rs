//! `GET /<doc>/ws`: the checks made before a WebSocket upgrade (Origin,
//! document, access), the handshake, then hand-over to the socket loop in
//! `ws`.
//!
//! The handshake is done here rather than with warp's `ws()` filter because
//! warp gives every socket tungstenite's default 128 KiB read buffer, which
//! is most of an idle socket's memory; frames are at most 64 KiB anyway and
//! a 4 KiB buffer grows when a large one arrives.

use super::client::client_ip;
use super::{reply, session, with_app, App, Conn, PendingUpgrade, Session};
use crate::engine::accounts::SessionId;
use crate::engine::documents::validate_doc_id;
use crate::engine::Caller;
use crate::ws::presence::Presence;
use crate::ws::{serve_socket, SocketSession, MAX_FRAME};
use dashmap::DashMap;
use hyper_util::rt::TokioIo;
use std::net::IpAddr;
use std::sync::Arc;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::WebSocketStream;
use tracing::Instrument;
use warp::filters::BoxedFilter;
use warp::http::{header, StatusCode};
use warp::reply::Response;
use warp::Filter;

/// Initial read buffer of a socket.
const READ_BUFFER: usize = 4 * 1024;
/// Queued frames are written once this much has gathered (and at every
/// flush). A socket's write buffer keeps the largest size it ever reached,
/// so tungstenite's 128 KiB default would cost a big room's readers that
/// much each after one burst; small frames still leave many per write.
const WRITE_BUFFER: usize = 1024;

/// The query of `/<doc>/ws`; other parameters are ignored.
#[derive(serde::Deserialize)]
struct SocketQuery {
    /// `batched`: presence in `clients` frames (docs/protocol.md).
    presence: Option<String>,
}

/// The handshake headers of a WebSocket upgrade request.
struct Handshake {
    key: String,
    upgrade: PendingUpgrade,
}

/// Matches only WebSocket upgrade requests, so a plain GET of `/<doc>/ws`
/// falls through to the other routes.
fn handshake() -> impl Filter<Extract = (Handshake,), Error = warp::Rejection> + Clone {
    warp::get()
        .and(warp::header::<String>("upgrade"))
        .and(warp::header::optional::<String>("sec-websocket-version"))
        .and(warp::header::<String>("sec-websocket-key"))
        .and(warp::ext::get::<PendingUpgrade>())
        .and_then(
            |upgrade: String, version: Option<String>, key: String, pending: PendingUpgrade| async move {
                if !upgrade.eq_ignore_ascii_case("websocket") || version.as_deref() != Some("13") {
                    return Err(warp::reject());
                }
                Ok(Handshake { key, upgrade: pending })
            },
        )
}

/// Open sockets per caller — per user, or per client address for
/// logged-out callers — so that no one caller can take every connection
/// slot (`--max-sockets-per-user`).
pub struct SocketCounts {
    max: u32,
    open: DashMap<String, u32>,
}

/// One counted socket; dropping it frees the place.
pub struct SocketPlace {
    counts: Arc<SocketCounts>,
    owner: String,
}

impl SocketCounts {
    pub fn new(max: u32) -> SocketCounts {
        SocketCounts {
            max,
            open: DashMap::new(),
        }
    }

    /// Counts one more socket of `caller`; `None` when it has `max` open.
    fn open(self: &Arc<Self>, caller: &Caller, client: Option<IpAddr>) -> Option<SocketPlace> {
        let owner = match (caller.user(), client) {
            (Some(user), _) => format!("user:{}", user.id()),
            (None, Some(ip)) => format!("ip:{ip}"),
            (None, None) => "ip:unknown".to_string(),
        };
        let mut open = self.open.entry(owner.clone()).or_insert(0);
        if *open >= self.max {
            crate::observe::refused("max_sockets_per_user");
            return None;
        }
        *open += 1;
        drop(open);
        metrics::gauge!(crate::observe::names::SOCKETS_OPEN).increment(1);
        Some(SocketPlace {
            counts: self.clone(),
            owner,
        })
    }
}

impl Drop for SocketPlace {
    fn drop(&mut self) {
        metrics::gauge!(crate::observe::names::SOCKETS_OPEN).decrement(1);
        let open = &self.counts.open;
        if let Some(mut n) = open.get_mut(&self.owner) {
            *n = n.saturating_sub(1);
        }
        // Forget callers without sockets, so the map stays small.
        open.remove_if(&self.owner, |_, n| *n == 0);
    }
}

pub fn route(app: App) -> BoxedFilter<(Response,)> {
    warp::path!(String / "ws")
        .and(warp::query::<SocketQuery>())
        .and(warp::header::optional::<String>("origin"))
        .and(with_app(app.clone()))
        .and(session(app.clone()))
        .and(warp::ext::optional::<Conn>())
        .and(client_ip(&app))
        .and(handshake())
        .map(
            |doc: String,
             query: SocketQuery,
             origin: Option<String>,
             app: App,
             s: Session,
             conn: Option<Conn>,
             client: Option<IpAddr>,
             hs: Handshake| {
                if let Some(origin) = origin {
                    if !app.origin_allowed(&origin) {
                        tracing::info!(origin = %origin, "WebSocket refused: origin not allowed");
                        return reply::text(StatusCode::FORBIDDEN, "Origin not allowed");
                    }
                }
                if validate_doc_id(&doc).is_err() {
                    return reply::text(StatusCode::NOT_FOUND, format!("No such document {doc}"));
                }
                let presence = match Presence::parse(query.presence.as_deref()) {
                    Ok(presence) => presence,
                    Err(message) => {
                        return reply::error(&crate::engine::Error::BadRequest(message))
                    }
                };
                let level = match app.engine.caller_level(&s.caller, &doc) {
                    Ok(level) => level,
                    Err(e) => return reply::error(&e),
                };
                if s.caller == Caller::Anonymous && !level.can_read() {
                    return reply::text(StatusCode::FORBIDDEN, "Log in or get read access first");
                }
                let Some(place) = app.sockets.open(&s.caller, client) else {
                    tracing::info!("WebSocket refused: too many sockets of one caller");
                    return reply::text(
                        StatusCode::TOO_MANY_REQUESTS,
                        "Too many open sockets for this user or address",
                    );
                };
                let Some(upgrade) = hs.upgrade.take() else {
                    return reply::text(StatusCode::BAD_REQUEST, "Upgrade already taken");
                };
                let engine = app.engine.clone();
                let hub = app.hub.clone();
                let policy = app.socket_policy;
                let session = match (&s.token, s.expires_at) {
                    (Some(token), Some(expires_at)) => Some(SocketSession {
                        id: SessionId::of(token),
                        expires_at,
                    }),
                    _ => None,
                };
                let span = crate::observe::socket_span(&doc);
                tokio::spawn(
                    async move {
                        let upgraded = match upgrade.await {
                            Ok(u) => u,
                            Err(e) => {
                                return tracing::debug!(error = %e, "WebSocket upgrade failed")
                            }
                        };
                        let config = WebSocketConfig::default()
                            .read_buffer_size(READ_BUFFER)
                            .write_buffer_size(WRITE_BUFFER)
                            .max_message_size(Some(MAX_FRAME))
                            .max_frame_size(Some(MAX_FRAME));
                        let socket = WebSocketStream::from_raw_socket(
                            TokioIo::new(upgraded),
                            Role::Server,
                            Some(config),
                        )
                        .await;
                        // The connection slot and the caller's place last as long as the socket.
                        let keep = (conn, place);
                        let caller = s.caller;
                        serve_socket(
                            engine, hub, socket, doc, caller, session, level, presence, policy,
                            keep,
                        )
                        .await;
                    }
                    .instrument(span),
                );
                switching_protocols(&hs.key)
            },
        )
        .boxed()
}

fn switching_protocols(key: &str) -> Response {
    let mut r = reply::text(StatusCode::SWITCHING_PROTOCOLS, "");
    let headers = r.headers_mut();
    headers.remove(header::CONTENT_TYPE);
    headers.insert(
        header::CONNECTION,
        header::HeaderValue::from_static("upgrade"),
    );
    headers.insert(
        header::UPGRADE,
        header::HeaderValue::from_static("websocket"),
    );
    if let Ok(accept) = derive_accept_key(key.as_bytes()).parse() {
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    r
}

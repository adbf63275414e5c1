//! HTTP routes. Each route group lives in its own file and turns requests
//! into engine calls; this file assembles them and holds the small pieces
//! they share (the caller from the session cookie, body parsing, responses).

pub mod apps;
pub mod auth;
pub mod directory;
pub mod documents;
pub mod invites_api;
pub mod pages;
pub mod programs;
pub mod reply;
pub mod socket;

use crate::engine::{Caller, Engine, Error};
use bytes::Bytes;
use serde::de::DeserializeOwned;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Rejection};

/// Largest request body accepted (SPEC section 9).
pub const MAX_BODY: u64 = 64 * 1024;
pub const SESSION_COOKIE: &str = "keystrate_session";

/// What every route needs: the engine and how the server is reached.
#[derive(Clone)]
pub struct App {
    pub engine: Engine,
    /// Public URL without a trailing slash.
    pub public_url: Arc<str>,
    /// Origins allowed to open WebSockets.
    pub origins: Arc<Vec<String>>,
    /// Pings and request rate of every WebSocket.
    pub socket_policy: crate::ws::SocketPolicy,
    /// The key directory (SPEC section 8).
    pub directory: Arc<crate::engine::directory::Directory>,
}

impl App {
    pub fn secure_cookies(&self) -> bool {
        self.public_url.starts_with("https://")
    }
}

/// The peer address and connection slot, put on each request by the
/// server's accept loop.
#[derive(Clone)]
pub struct Conn {
    pub peer: SocketAddr,
    pub slot: Arc<dyn Send + Sync>,
}

/// The connection's upgrade, taken out of the request by the accept loop so
/// that the WebSocket route can finish the handshake itself (with a small
/// read buffer: see `socket.rs`).
#[derive(Clone)]
pub struct PendingUpgrade(Arc<std::sync::Mutex<Option<hyper::upgrade::OnUpgrade>>>);

impl PendingUpgrade {
    pub fn new(upgrade: hyper::upgrade::OnUpgrade) -> PendingUpgrade {
        PendingUpgrade(Arc::new(std::sync::Mutex::new(Some(upgrade))))
    }

    pub fn take(&self) -> Option<hyper::upgrade::OnUpgrade> {
        self.0.lock().ok()?.take()
    }
}

/// The caller behind the request's session cookie, with the raw token
/// (needed to log out).
#[derive(Clone)]
pub struct Session {
    pub caller: Caller,
    pub token: Option<String>,
    /// When a live session ends (ms since the epoch); sockets close then.
    pub expires_at: Option<i64>,
}

pub fn with_app(app: App) -> impl Filter<Extract = (App,), Error = Infallible> + Clone {
    warp::any().map(move || app.clone())
}

/// Resolves the session cookie; an unknown or expired token is anonymous.
pub fn session(app: App) -> impl Filter<Extract = (Session,), Error = Infallible> + Clone {
    warp::cookie::optional::<String>(SESSION_COOKIE).map(move |token: Option<String>| {
        let live = token
            .as_deref()
            .and_then(|t| app.engine.session(t).ok().flatten());
        Session {
            expires_at: live.as_ref().map(|s| s.expires_at),
            caller: live
                .map(|s| Caller::User(s.user))
                .unwrap_or(Caller::Anonymous),
            token,
        }
    })
}

/// The client's address (for per-client limits); unknown in unit setups.
pub fn client_addr() -> impl Filter<Extract = (Option<Conn>,), Error = Infallible> + Clone {
    warp::ext::optional::<Conn>()
}

/// The client address every address-based limit keys on.
pub fn client_ip(conn: &Option<Conn>) -> Option<std::net::IpAddr> {
    conn.as_ref().map(|c| c.peer.ip())
}

/// A body larger than [`MAX_BODY`].
#[derive(Debug)]
pub(crate) struct BodyTooLarge;
impl warp::reject::Reject for BodyTooLarge {}

/// A body of at most 64 KiB with its content type. Bodies without a
/// `Content-Length` (chunked, or none at all) are read up to the limit.
pub fn body() -> impl Filter<Extract = (Option<String>, Bytes), Error = Rejection> + Clone {
    warp::header::optional::<u64>("content-length")
        .and(warp::header::optional::<String>("content-type"))
        .and(warp::body::stream())
        .and_then(read_limited)
        .untuple_one()
}

async fn read_limited<S, B>(
    length: Option<u64>,
    content_type: Option<String>,
    stream: S,
) -> Result<(Option<String>, Bytes), Rejection>
where
    S: futures_util::Stream<Item = Result<B, warp::Error>>,
    B: warp::Buf,
{
    use futures_util::TryStreamExt;
    if length.is_some_and(|l| l > MAX_BODY) {
        return Err(warp::reject::custom(BodyTooLarge));
    }
    let mut stream = std::pin::pin!(stream);
    let mut out = Vec::new();
    while let Some(mut chunk) = stream.try_next().await.map_err(|_| warp::reject())? {
        if out.len() + chunk.remaining() > MAX_BODY as usize {
            return Err(warp::reject::custom(BodyTooLarge));
        }
        while chunk.has_remaining() {
            let n = chunk.chunk().len();
            out.extend_from_slice(chunk.chunk());
            chunk.advance(n);
        }
    }
    Ok((content_type, Bytes::from(out)))
}

/// Parses a JSON or form body; an empty body reads as `{}`.
pub fn parse_body<T: DeserializeOwned>(
    content_type: Option<&str>,
    body: &[u8],
) -> Result<T, Error> {
    let form = content_type.is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    if form {
        return serde_urlencoded::from_bytes(body)
            .map_err(|e| Error::bad(format!("invalid form body: {e}")));
    }
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|e| Error::bad(format!("invalid JSON body: {e}")))
}

/// All routes, with errors turned into responses.
pub fn routes(app: App) -> BoxedFilter<(Response,)> {
    let health = warp::path!("health")
        .and(warp::get())
        .map(|| reply::text(StatusCode::OK, "OK"));
    health
        .or(directory::routes(app.clone()))
        .unify()
        .or(auth::routes(app.clone()))
        .unify()
        .or(documents::routes(app.clone()))
        .unify()
        .or(invites_api::routes(app.clone()))
        .unify()
        .or(apps::routes(app.clone()))
        .unify()
        .or(pages::routes(app.clone()))
        .unify()
        .recover(recover)
        .unify()
        .boxed()
}

/// Turns warp's own rejections into plain responses.
async fn recover(rejection: Rejection) -> Result<Response, Infallible> {
    let (status, text) = if rejection.is_not_found() {
        (StatusCode::NOT_FOUND, "Not found".to_string())
    } else if rejection.find::<BodyTooLarge>().is_some() {
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            "Body larger than 64 KiB".to_string(),
        )
    } else if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
        (
            StatusCode::METHOD_NOT_ALLOWED,
            "Method not allowed".to_string(),
        )
    } else {
        (
            StatusCode::BAD_REQUEST,
            format!("Bad request: {rejection:?}"),
        )
    };
    Ok(reply::json_error(status, "bad_request", &text))
}

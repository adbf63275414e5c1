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
    /// The key directory (`docs/directory.md`).
    pub directory: Arc<crate::engine::directory::Directory>,
    /// Directory writes per client address and minute.
    pub directory_writes_per_minute: u32,
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
}

pub fn with_app(app: App) -> impl Filter<Extract = (App,), Error = Infallible> + Clone {
    warp::any().map(move || app.clone())
}

/// Resolves the session cookie; an unknown or expired token is anonymous.
pub fn session(app: App) -> impl Filter<Extract = (Session,), Error = Infallible> + Clone {
    warp::cookie::optional::<String>(SESSION_COOKIE).map(move |token: Option<String>| {
        let user = token
            .as_deref()
            .and_then(|t| app.engine.session_user(t).ok().flatten());
        Session {
            caller: user.map(Caller::User).unwrap_or(Caller::Anonymous),
            token,
        }
    })
}

/// The client's address (for per-client limits); unknown in unit setups.
pub fn client_addr() -> impl Filter<Extract = (Option<Conn>,), Error = Infallible> + Clone {
    warp::ext::optional::<Conn>()
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
    let (status, code, text) = rejection_reason(&rejection);
    Ok(reply::json_error(status, code, &text))
}

/// What one of warp's own rejections means: its status, the error code that
/// names that status, and a message. Each surface renders this in its own
/// error shape, so the code always matches the status.
pub(crate) fn rejection_reason(rejection: &Rejection) -> (StatusCode, &'static str, String) {
    if rejection.is_not_found() {
        (StatusCode::NOT_FOUND, "not_found", "Not found".into())
    } else if rejection.find::<BodyTooLarge>().is_some() {
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("Body larger than {} KiB", MAX_BODY / 1024),
        )
    } else if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
        (
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "Method not allowed".into(),
        )
    } else if rejection.find::<warp::reject::InvalidQuery>().is_some() {
        (
            StatusCode::BAD_REQUEST,
            "bad_request",
            "Invalid query string".into(),
        )
    } else {
        (
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("Bad request: {rejection:?}"),
        )
    }
}

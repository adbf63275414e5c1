//! HTTP routes. Each route group lives in its own file and turns requests
//! into engine calls; this file assembles them and holds the small pieces
//! they share (the caller from the session cookie, body parsing, responses).

pub mod apps;
pub mod auth;
pub mod client;
pub mod directory;
pub mod documents;
pub mod invites_api;
pub mod openapi;
pub mod origins;
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

/// Largest request body accepted (docs/protocol.md, "Limits").
pub const MAX_BODY: u64 = 64 * 1024;
pub const SESSION_COOKIE: &str = "keystrate_session";

/// What every route needs: the engine and how the server is reached.
#[derive(Clone)]
pub struct App {
    pub engine: Engine,
    /// Every connected socket, by document.
    pub hub: Arc<crate::ws::hub::Hub>,
    /// Public URL without a trailing slash.
    pub public_url: Arc<str>,
    /// Origins allowed to open WebSockets and to send cookie-authorized
    /// changes: the public origin and every `--allowed-origin`.
    pub origins: Arc<origins::AllowedOrigins>,
    /// `--trusted-proxy` networks (see `client.rs`).
    pub trusted_proxies: Arc<Vec<ipnet::IpNet>>,
    /// Open WebSockets per caller, under `--max-sockets-per-user`.
    pub sockets: Arc<socket::SocketCounts>,
    /// Pings and request rate of every WebSocket.
    pub socket_policy: crate::ws::SocketPolicy,
    /// The key directory (`docs/directory.md`).
    pub directory: Arc<crate::directory::Directory>,
    /// Directory writes per client address and minute.
    pub directory_writes_per_minute: u32,
}

impl App {
    pub fn secure_cookies(&self) -> bool {
        self.public_url.starts_with("https://")
    }

    pub fn origin_allowed(&self, origin: &str) -> bool {
        self.origins.allows(origin)
    }

    /// A request sent by a page of another site: its `Origin` is not one
    /// of ours or, without an `Origin`, the browser says `cross-site`.
    /// Programs send neither header and pass.
    fn cross_site(&self, origin: Option<&str>, fetch_site: Option<&str>) -> bool {
        match origin {
            Some(origin) => !self.origin_allowed(origin),
            None => fetch_site.is_some_and(|s| s.eq_ignore_ascii_case("cross-site")),
        }
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

/// A request refused because a page of another site sent it.
#[derive(Debug)]
pub(crate) struct CrossSite;
impl warp::reject::Reject for CrossSite {}

/// Whether a page of another site sent the request, with what the log
/// line of a refusal names (the request's span names the client).
#[derive(Debug)]
struct SiteCheck {
    cross_site: bool,
    origin: Option<String>,
}

impl SiteCheck {
    /// Refuses a cross-site request ([`CrossSite`], 403).
    fn enforce(self) -> Result<(), Rejection> {
        if !self.cross_site {
            return Ok(());
        }
        tracing::info!(origin = ?self.origin, "cross-site request refused");
        Err(warp::reject::custom(CrossSite))
    }
}

fn site_check(app: App) -> impl Filter<Extract = (SiteCheck,), Error = Rejection> + Clone {
    warp::header::optional::<String>("origin")
        .and(warp::header::optional::<String>("sec-fetch-site"))
        .map(
            move |origin: Option<String>, site: Option<String>| SiteCheck {
                cross_site: app.cross_site(origin.as_deref(), site.as_deref()),
                origin,
            },
        )
}

/// Refuses (403) a request sent by a page of another site. For routes that
/// change state whoever calls (login, register, logout, `/new`): a
/// cross-site form must not log the victim into the attacker's account.
pub fn same_site(app: App) -> impl Filter<Extract = (), Error = Rejection> + Clone {
    site_check(app)
        .and_then(|check: SiteCheck| async move { check.enforce() })
        .untuple_one()
}

/// Resolves the session cookie; an unknown or expired token is anonymous.
/// A change (any method but GET, HEAD, OPTIONS) authorized by the cookie —
/// it carries one and no `Authorization` — must come from one of our own
/// origins (403 otherwise, see [`same_site`]).
pub fn session(app: App) -> impl Filter<Extract = (Session,), Error = Rejection> + Clone {
    warp::method()
        .and(warp::cookie::optional::<String>(SESSION_COOKIE))
        .and(warp::header::optional::<String>("authorization"))
        .and(site_check(app.clone()))
        .and_then(
            move |method: warp::http::Method,
                  token: Option<String>,
                  authorization: Option<String>,
                  check: SiteCheck| {
                let app = app.clone();
                async move {
                    if !method.is_safe() && token.is_some() && authorization.is_none() {
                        check.enforce()?;
                    }
                    let live = token
                        .as_deref()
                        .and_then(|t| app.engine.session(t).ok().flatten());
                    if let Some(live) = &live {
                        tracing::Span::current().record("user", live.user.username.as_str());
                    }
                    Ok::<_, Rejection>(Session {
                        expires_at: live.as_ref().map(|s| s.expires_at),
                        caller: live
                            .map(|s| Caller::User(s.user))
                            .unwrap_or(Caller::Anonymous),
                        token,
                    })
                }
            },
        )
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

/// Whether a `Content-Type` names `type` (parameters such as `charset`
/// aside).
fn is_media_type(content_type: Option<&str>, media_type: &str) -> bool {
    content_type.is_some_and(|c| {
        c.split(';')
            .next()
            .is_some_and(|t| t.trim().eq_ignore_ascii_case(media_type))
    })
}

/// Refuses (415) a non-empty body that is not `application/json`: a page
/// of another site may send `text/plain` or a form without asking the
/// browser's permission first, but not JSON. An empty body passes.
pub fn require_json(content_type: Option<&str>, body: &[u8]) -> Result<(), Error> {
    if body.iter().all(u8::is_ascii_whitespace) || is_media_type(content_type, "application/json") {
        return Ok(());
    }
    Err(Error::UnsupportedMediaType(
        "The body must be JSON, sent as Content-Type: application/json".into(),
    ))
}

/// Parses a JSON body ([`require_json`]); an empty body reads as `{}`.
pub fn parse_body<T: DeserializeOwned>(
    content_type: Option<&str>,
    body: &[u8],
) -> Result<T, Error> {
    require_json(content_type, body)?;
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|e| Error::bad(format!("invalid JSON body: {e}")))
}

/// Like [`parse_body`], but also takes an `application/x-www-form-urlencoded`
/// body: the login and register forms of our own pages post those.
pub fn parse_form_or_json<T: DeserializeOwned>(
    content_type: Option<&str>,
    body: &[u8],
) -> Result<T, Error> {
    if is_media_type(content_type, "application/x-www-form-urlencoded") {
        return serde_urlencoded::from_bytes(body)
            .map_err(|e| Error::bad(format!("invalid form body: {e}")));
    }
    parse_body(content_type, body)
}

/// All routes, with errors turned into responses.
pub fn routes(app: App) -> BoxedFilter<(Response,)> {
    let health = warp::path!("health")
        .and(warp::get())
        .map(|| reply::text(StatusCode::OK, "OK"));
    // Liveness: the process answers. Readiness: storage answers too.
    let ready = warp::path!("ready")
        .and(warp::get())
        .and(with_app(app.clone()))
        .then(|app: App| async move {
            match app.engine.store().ready().await {
                Ok(()) => reply::text(StatusCode::OK, "OK"),
                Err(e) => {
                    tracing::warn!(error = %e, "not ready: storage does not answer");
                    reply::text(StatusCode::SERVICE_UNAVAILABLE, "storage unavailable")
                }
            }
        });
    // Metrics live on their own listener only (`--metrics-listen`); here
    // the path is no document either.
    let no_metrics = warp::path!("metrics")
        .map(|| reply::json_error(StatusCode::NOT_FOUND, "not_found", "Not found"));
    health
        .or(ready)
        .unify()
        .or(no_metrics)
        .unify()
        .or(openapi::route(app.clone()))
        .unify()
        .or(directory::routes(app.clone()))
        .unify()
        .or(refusing_cross_site(auth::routes(app.clone())))
        .unify()
        .or(refusing_cross_site(documents::routes(app.clone())))
        .unify()
        .or(invites_api::routes(app.clone()))
        .unify()
        .or(refusing_cross_site(apps::routes(app.clone())))
        .unify()
        .or(pages::routes(app.clone()))
        .unify()
        .recover(recover)
        .unify()
        .map(with_security_headers)
        .boxed()
}

/// The policy of every HTML answer: the pages load only their own scripts
/// and styles (none inline), and no other site may frame them. `data:`
/// images are the pages' empty favicon (no request for `/favicon.ico`).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data:; \
     base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'";

/// Headers on every answer: no content is sniffed into another type, and
/// no URL leaks as a referrer (invite keys travel in URLs). HTML answers
/// also carry the content security policy.
fn with_security_headers(mut r: Response) -> Response {
    use warp::http::header::{self, HeaderValue};
    let html = r
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|t| t.to_str().ok())
        .is_some_and(|t| t.starts_with("text/html"));
    let headers = r.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if html {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        );
    }
    r
}

/// Answers a [`CrossSite`] refusal of `routes` at once (403): left as a
/// rejection, a later route group could answer the request instead (`/new`
/// would read as a document).
fn refusing_cross_site(routes: BoxedFilter<(Response,)>) -> BoxedFilter<(Response,)> {
    routes
        .recover(|rejection: Rejection| async move {
            match rejection.find::<CrossSite>() {
                Some(CrossSite) => {
                    let (status, code, text) = rejection_reason(&rejection);
                    Ok(reply::json_error(status, code, &text))
                }
                None => Err(rejection),
            }
        })
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
    if rejection.find::<CrossSite>().is_some() {
        (
            StatusCode::FORBIDDEN,
            "cross_site",
            "Cross-site request refused: send it from this server's own pages".into(),
        )
    } else if rejection.is_not_found() {
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

//! Response builders shared by the routes, and the one place an engine
//! error gets its HTTP status.

use crate::engine::Error;
use serde::Serialize;
use warp::http::{header, Response as HttpResponse, StatusCode};
use warp::reply::Response;

fn build(status: StatusCode, content_type: &str, body: impl Into<Vec<u8>>) -> Response {
    let mut r: Response = HttpResponse::new(body.into().into());
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        content_type.parse().expect("static content type"),
    );
    r
}

pub fn text(status: StatusCode, body: impl Into<String>) -> Response {
    build(status, "text/plain; charset=utf-8", body.into())
}

pub fn html(status: StatusCode, body: impl Into<String>) -> Response {
    let mut r = build(status, "text/html; charset=utf-8", body.into());
    r.headers_mut()
        .insert(header::CACHE_CONTROL, "no-store".parse().expect("static"));
    r
}

pub fn json<T: Serialize>(status: StatusCode, value: &T) -> Response {
    build(
        status,
        "application/json",
        serde_json::to_vec(value).unwrap_or_default(),
    )
}

pub fn json_error(status: StatusCode, code: &str, message: &str) -> Response {
    json(status, &serde_json::json!({"error": message, "code": code}))
}

/// The HTTP status that carries an engine error on HTTP routes.
pub fn status_of(e: &Error) -> StatusCode {
    match e {
        Error::NotLoggedIn(_) | Error::Unauthorized(_) => StatusCode::UNAUTHORIZED,
        Error::NotAdmin { .. } | Error::Forbidden(_) => StatusCode::FORBIDDEN,
        Error::NoSuchDocument(_) | Error::NotFound(_) => StatusCode::NOT_FOUND,
        Error::InvalidKey
        | Error::InviterNotAdmin
        | Error::UsedUp
        | Error::RemoveFailed
        | Error::Conflict(_)
        | Error::LastAdmin
        | Error::TooManyInvites { .. } => StatusCode::CONFLICT,
        Error::BadRequest(_) | Error::UnknownAction => StatusCode::BAD_REQUEST,
        Error::RateLimited | Error::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
        Error::Busy => StatusCode::SERVICE_UNAVAILABLE,
        Error::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        Error::Storage(_) | Error::Encoding(_) | Error::Internal(_) => {
            StatusCode::INTERNAL_SERVER_ERROR
        }
    }
}

/// An engine error as `{"error","code"}` with its HTTP status (and its
/// cause logged, when it is the server's own failure).
pub fn error(e: &Error) -> Response {
    e.log_internal();
    let r = json_error(status_of(e), e.code(), &e.to_string());
    match e.retry_after_s() {
        Some(s) => with_header(r, header::RETRY_AFTER, &s.to_string()),
        None => r,
    }
}

pub fn redirect(status: StatusCode, location: &str) -> Response {
    let mut r = build(status, "text/plain; charset=utf-8", String::new());
    match location.parse() {
        Ok(v) => {
            r.headers_mut().insert(header::LOCATION, v);
        }
        Err(_) => *r.status_mut() = StatusCode::BAD_REQUEST,
    }
    r
}

pub fn no_content() -> Response {
    let mut r: Response = HttpResponse::new(Vec::new().into());
    *r.status_mut() = StatusCode::NO_CONTENT;
    r
}

/// Adds a header to a response.
pub fn with_header(mut r: Response, name: header::HeaderName, value: &str) -> Response {
    if let Ok(v) = value.parse() {
        r.headers_mut().append(name, v);
    }
    r
}

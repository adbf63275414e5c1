//! Pieces shared by the routes programs call (`/invites_api`, `/v1/…`):
//! bodies that may be absent, the `Authorization` header, and option maps
//! merged from the query string and the body.

use super::{body, parse_body, parse_form_or_json};
use crate::engine::{Error, Result};
use bytes::Bytes;
use serde_json::{Map, Value};
use warp::{Filter, Rejection};

/// A body of at most 64 KiB, or none. A request that announces no body (no
/// `Content-Length` and no `Transfer-Encoding`: a bare `GET`, `curl -X POST`)
/// is empty; a chunked body is read up to the limit, as [`super::body`] does.
pub fn optional_body() -> impl Filter<Extract = (Option<String>, Bytes), Error = Rejection> + Clone
{
    // Matches only requests that announce no body at all; otherwise the
    // rejection of `body()` (413) is the more specific and wins.
    let without_body = warp::header::optional::<u64>("content-length")
        .and(warp::header::optional::<String>("transfer-encoding"))
        .and_then(|length: Option<u64>, chunked: Option<String>| async move {
            if length.is_none() && chunked.is_none() {
                Ok(())
            } else {
                Err(warp::reject::not_found())
            }
        })
        .untuple_one()
        .and(warp::header::optional::<String>("content-type"))
        .map(|content_type: Option<String>| (content_type, Bytes::new()))
        .untuple_one();
    body().or(without_body).unify()
}

/// The raw `Authorization` header, if any.
pub fn authorization() -> impl Filter<Extract = (Option<String>,), Error = Rejection> + Clone {
    warp::header::optional::<String>("authorization")
}

/// Options from the query string (strings) overlaid with those of a JSON or
/// form body, so both `GET ?maxAge=60` and `POST {"maxAge": 60}` work.
pub fn request_options(
    query: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Map<String, Value>> {
    let mut options = Map::new();
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query)
        .map_err(|e| Error::bad(format!("invalid query string: {e}")))?;
    for (name, value) in pairs {
        options.insert(name, Value::String(value));
    }
    let form = content_type.is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    if form {
        let pairs: Vec<(String, String)> = parse_form_or_json(content_type, body)?;
        for (name, value) in pairs {
            options.insert(name, Value::String(value));
        }
    } else {
        match parse_body::<Value>(content_type, body)? {
            Value::Object(map) => options.extend(map),
            _ => return Err(Error::bad("the body must be a JSON object")),
        }
    }
    Ok(options)
}

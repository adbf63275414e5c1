//! `GET|POST /invites_api`, compatible with Prosody's `mod_invites_api`: a
//! program holding an app key gets an invite link for the key's document.
//!
//! Answers carry permissive CORS headers so that a web page of another
//! origin can call it with a key; the key, not a cookie, authenticates.

use super::pages::raw_query;
use super::programs::{authorization, optional_body, request_options};
use super::{reply, with_app, App};
use crate::engine::keys::KeyRecord;
use crate::engine::options::{read_options_beside, CreateOptions};
use crate::engine::{Error, Result};
use bytes::Bytes;
use serde_json::Value;
use warp::filters::BoxedFilter;
use warp::http::{header, StatusCode};
use warp::reply::Response;
use warp::Filter;

pub fn routes(app: App) -> BoxedFilter<(Response,)> {
    let preflight = warp::path!("invites_api")
        .and(warp::options())
        .map(|| with_cors(reply::no_content()));
    let create = warp::path!("invites_api")
        .and(warp::get().or(warp::post()).unify())
        .and(with_app(app))
        .and(raw_query())
        .and(authorization())
        .and(optional_body())
        .then(
            |app: App, query: String, auth: Option<String>, ct: Option<String>, body: Bytes| async move {
                with_cors(create_invite(&app, &query, auth.as_deref(), ct.as_deref(), &body).await)
            },
        );
    preflight.or(create).unify().boxed()
}

async fn create_invite(
    app: &App,
    query: &str,
    authorization: Option<&str>,
    content_type: Option<&str>,
    body: &[u8],
) -> Response {
    let options = request_options(query, content_type, body);
    let plain_key = options
        .as_ref()
        .ok()
        .and_then(|o| o.get("key"))
        .and_then(Value::as_str);
    let key = match authenticate(app, plain_key, authorization) {
        Ok(key) => key,
        Err(e) => return unauthorized(&e),
    };
    let result = async {
        let mut options = options?;
        options.remove("key");
        let redirect = options
            .remove("redirect")
            .is_some_and(|v| wants_redirect(&v));
        let options: CreateOptions = read_options_beside(Value::Object(options), &["redirect"])?;
        let doc = key.doc.as_deref().expect("app key");
        let invite = app
            .engine
            .create_invite(&key.caller(), doc, &options)
            .await?;
        Ok::<_, Error>((invite, redirect))
    }
    .await;
    match result {
        Ok((invite, redirect)) => {
            let location = format!(
                "{}/{}/?acceptInvite={}",
                app.public_url, invite.webstrate_id, invite.key
            );
            if redirect {
                reply::redirect(StatusCode::SEE_OTHER, &location)
            } else {
                reply::with_header(
                    reply::json(StatusCode::CREATED, &invite),
                    header::LOCATION,
                    &location,
                )
            }
        }
        Err(e) => reply::error(&e),
    }
}

/// The app key from `?key=` (or a body field `key`), else from the header.
/// Account keys name no document, so they cannot be used here.
fn authenticate(
    app: &App,
    plain_key: Option<&str>,
    authorization: Option<&str>,
) -> Result<KeyRecord> {
    let key = match (plain_key, authorization) {
        (Some(k), _) => app.engine.authenticate_full_key(k)?,
        (None, Some(h)) => app.engine.authenticate_header(h)?,
        (None, None) => return Err(Error::Unauthorized("An API key is required".into())),
    };
    if key.doc.is_none() {
        return Err(Error::Unauthorized(
            "An app key is required, not an account key".into(),
        ));
    }
    Ok(key)
}

/// Any value but `false` / `0` asks for a redirect (as in Prosody).
fn wants_redirect(value: &Value) -> bool {
    !matches!(value, Value::Bool(false) | Value::Null)
        && !matches!(value.as_str(), Some("false" | "0"))
        && value.as_u64() != Some(0)
}

fn unauthorized(e: &Error) -> Response {
    reply::with_header(reply::error(e), header::WWW_AUTHENTICATE, "Bearer")
}

fn with_cors(r: Response) -> Response {
    let r = reply::with_header(r, header::ACCESS_CONTROL_ALLOW_ORIGIN, "*");
    let r = reply::with_header(
        r,
        header::ACCESS_CONTROL_ALLOW_METHODS,
        "GET, POST, OPTIONS",
    );
    let r = reply::with_header(
        r,
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        "Authorization, Content-Type",
    );
    reply::with_header(r, header::ACCESS_CONTROL_EXPOSE_HEADERS, "Location")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn redirect_values() {
        for yes in [json!(true), json!("1"), json!(""), json!("yes"), json!(1)] {
            assert!(wants_redirect(&yes), "{yes}");
        }
        for no in [
            json!(false),
            json!("false"),
            json!("0"),
            json!(0),
            Value::Null,
        ] {
            assert!(!wants_redirect(&no), "{no}");
        }
    }
}

//! The Smooch v1-compatible REST for programs: app keys under
//! `/v1/apps/{appId}/keys` (the app is a document), the caller's account
//! keys under `/v1/account/keys`, and invites under `/v1/apps/{appId}/invites`.
//!
//! Routing is one table over the path segments so every route and its
//! required scope reads on one line. Errors use Smooch's
//! `{"error":{"code","description"}}` with the engine's text.

use super::pages::raw_query;
use super::programs::{authorization, optional_body, request_options};
use super::{parse_body, reply, session, with_app, App, Session};
use crate::engine::key_rules::KeyScope;
use crate::engine::keys::KeyRecord;
use crate::engine::options::{read_options, CreateOptions, ListOptions};
use crate::engine::{Caller, Error, Result, User};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Value};
use warp::filters::BoxedFilter;
use warp::http::{Method, StatusCode};
use warp::reply::Response;
use warp::{Filter, Rejection};

pub fn routes(app: App) -> BoxedFilter<(Response,)> {
    // Smooch served the same API under `/v1` and `/v1.1` (smooch-core 7+
    // calls `/v1.1`), so both prefixes lead to the one dispatch table.
    let version = warp::path("v1")
        .map(|| "v1")
        .or(warp::path("v1.1").map(|| "v1.1"))
        .unify();
    version
        .and(warp::path::tail())
        .and(warp::method())
        .and(with_app(app.clone()))
        .and(session(app))
        .and(authorization())
        .and(raw_query())
        .and(optional_body())
        .then(
            |version: &'static str,
             tail: warp::path::Tail,
             method: Method,
             app: App,
             session: Session,
             auth: Option<String>,
             query: String,
             ct: Option<String>,
             body: Bytes| async move {
                let request = Request {
                    app: &app,
                    session: &session,
                    authorization: auth.as_deref(),
                    query: &query,
                    content_type: ct.as_deref(),
                    body: &body,
                };
                let path: Vec<&str> = tail.as_str().split('/').filter(|s| !s.is_empty()).collect();
                match dispatch(&request, &method, version, &path).await {
                    Ok((status, value)) => reply::json(status, &value),
                    Err(e) => error(&e),
                }
            },
        )
        .recover(rejection_error)
        .unify()
        .boxed()
}

/// Warp's own rejections under `/v1` (an oversized body) in Smooch's error
/// shape; other paths pass through untouched.
async fn rejection_error(rejection: Rejection) -> std::result::Result<Response, Rejection> {
    if rejection.is_not_found() {
        return Err(rejection);
    }
    let (status, code, description) = super::rejection_reason(&rejection);
    Ok(smooch_error(status, code, &description))
}

/// The body of a key creation.
#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct NewKey {
    name: String,
}

/// Everything a handler may need from the request.
struct Request<'a> {
    app: &'a App,
    session: &'a Session,
    authorization: Option<&'a str>,
    query: &'a str,
    content_type: Option<&'a str>,
    body: &'a [u8],
}

type Answer = Result<(StatusCode, Value)>;

/// What an account-scope route says to a caller without credentials.
const ACCOUNT_SCOPE: &str = "This route needs account scope: a logged-in session, \
     Authorization: Basic base64(<act_id>:<secret>) or Authorization: Bearer <account JWT>";

async fn dispatch(r: &Request<'_>, method: &Method, version: &str, path: &[&str]) -> Answer {
    let engine = &r.app.engine;
    match (method.as_str(), path) {
        ("POST", ["apps", doc, "keys"]) => {
            let caller = r.account_caller()?;
            let key = engine.create_app_key(&caller, doc, &r.name()?).await?;
            Ok((
                StatusCode::CREATED,
                json!({"key": key.view_for(&key.owner)}),
            ))
        }
        ("GET", ["apps", doc, "keys"]) => {
            let caller = r.account_caller()?;
            list(engine.keys_for(&caller, KeyScope::App(doc))?, &caller)
        }
        ("GET", ["apps", doc, "keys", id]) => {
            let caller = r.account_caller()?;
            one(engine.key_for(&caller, KeyScope::App(doc), id)?, &caller)
        }
        ("DELETE", ["apps", doc, "keys", id]) => {
            let caller = r.account_caller()?;
            engine
                .delete_key_for(&caller, KeyScope::App(doc), id)
                .await?;
            Ok((StatusCode::OK, json!({})))
        }
        ("GET", ["apps", doc, "keys", id, "jwt"]) => {
            let caller = r.account_caller()?;
            let jwt = engine.jwt_for(&caller, KeyScope::App(doc), id)?;
            Ok((StatusCode::OK, json!({"jwt": jwt})))
        }
        ("POST", ["account", "keys"]) => {
            // Session only: a leaked account key must not mint copies of
            // itself that outlive its deletion.
            let caller = r.session_caller()?;
            let key = engine.create_account_key(&caller, &r.name()?).await?;
            Ok((
                StatusCode::CREATED,
                json!({"key": key.view_for(&key.owner)}),
            ))
        }
        ("GET", ["account", "keys"]) => {
            let caller = r.account_caller()?;
            list(engine.keys_for(&caller, KeyScope::Account)?, &caller)
        }
        ("GET", ["account", "keys", id]) => {
            let caller = r.account_caller()?;
            one(engine.key_for(&caller, KeyScope::Account, id)?, &caller)
        }
        ("DELETE", ["account", "keys", id]) => {
            let caller = r.account_caller()?;
            engine
                .delete_key_for(&caller, KeyScope::Account, id)
                .await?;
            Ok((StatusCode::OK, json!({})))
        }
        ("GET", ["account", "keys", id, "jwt"]) => {
            // Session only: a key must not be able to mint more credentials.
            let caller = r.session_caller()?;
            let jwt = engine.jwt_for(&caller, KeyScope::Account, id)?;
            Ok((StatusCode::OK, json!({"jwt": jwt})))
        }
        ("POST", ["apps", doc, "invites"]) => {
            let caller = r.invite_caller(doc)?;
            // Forms are for `/invites_api` (Prosody's); this route is JSON.
            super::require_json(r.content_type, r.body)?;
            let options = request_options(r.query, r.content_type, r.body)?;
            let options: CreateOptions = read_options(Value::Object(options))?;
            let invite = engine.create_invite(&caller, doc, &options).await?;
            Ok((
                StatusCode::CREATED,
                serde_json::to_value(invite).expect("serialisable"),
            ))
        }
        ("GET", ["apps", doc, "invites"]) => {
            let caller = r.invite_caller(doc)?;
            let options = request_options(r.query, None, b"")?;
            let options: ListOptions = read_options(Value::Object(options))?;
            let page = engine.get_invites(&caller, doc, &options)?;
            let mut body = json!({"invites": page.invites});
            if let Some(next) = page.next {
                body["next"] = json!(next);
            }
            Ok((StatusCode::OK, body))
        }
        ("DELETE", ["apps", doc, "invites", key]) => {
            let caller = r.invite_caller(doc)?;
            engine.remove_invite(&caller, doc, key).await?;
            Ok((StatusCode::OK, json!({})))
        }
        _ => Err(Error::NotFound(format!(
            "No route {method} /{version}/{}",
            path.join("/")
        ))),
    }
}

impl Request<'_> {
    /// Account scope: an account key (JWT or Basic) or else the session.
    fn account_caller(&self) -> Result<Caller> {
        match self.authorization {
            Some(header) => {
                let key = self.app.engine.authenticate_header(header)?;
                if key.doc.is_some() {
                    return Err(Error::Unauthorized(
                        "This route needs account scope, not an app key".into(),
                    ));
                }
                Ok(key.caller())
            }
            None => self.session_or(ACCOUNT_SCOPE),
        }
    }

    fn session_caller(&self) -> Result<Caller> {
        self.session_or("This route needs a logged-in session (an API key cannot mint JWTs)")
    }

    /// The session's user, or 401 saying which credentials the route takes.
    fn session_or(&self, needs: &str) -> Result<Caller> {
        match &self.session.caller {
            Caller::User(_) if self.authorization.is_none() => Ok(self.session.caller.clone()),
            _ => Err(Error::Unauthorized(needs.into())),
        }
    }

    /// Invites accept an app key of this app as well as account scope.
    fn invite_caller(&self, doc: &str) -> Result<Caller> {
        match self.authorization {
            Some(header) => {
                let key = self.app.engine.authenticate_header(header)?;
                match key.doc.as_deref() {
                    Some(key_doc) if key_doc != doc => Err(Error::Unauthorized(format!(
                        "Key {} is not a key of {doc}",
                        key.id
                    ))),
                    _ => Ok(key.caller()),
                }
            }
            None => self.session_or(&format!(
                "This route needs an app key of {doc} (Bearer <id>/<secret>, Bearer <app JWT> \
                 or Basic base64(<id>:<secret>)) or account scope (see docs/programs.md)"
            )),
        }
    }

    /// The `name` of a new key from the JSON or form body.
    fn name(&self) -> Result<String> {
        Ok(parse_body::<NewKey>(self.content_type, self.body)?.name)
    }
}

fn viewer(caller: &Caller) -> &User {
    caller.user().expect("account scope has a user")
}

fn list(keys: Vec<KeyRecord>, caller: &Caller) -> Answer {
    let keys: Vec<_> = keys.iter().map(|k| k.view_for(viewer(caller))).collect();
    Ok((StatusCode::OK, json!({"keys": keys})))
}

fn one(key: KeyRecord, caller: &Caller) -> Answer {
    Ok((StatusCode::OK, json!({"key": key.view_for(viewer(caller))})))
}

/// Smooch's error envelope. Statuses are those of the other HTTP routes,
/// except that a missing invite is a plain 404 here.
fn error(e: &Error) -> Response {
    e.log_internal();
    let status = match e {
        Error::InvalidKey | Error::RemoveFailed => StatusCode::NOT_FOUND,
        e => reply::status_of(e),
    };
    let code = match status.as_u16() {
        400 => "bad_request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        409 => "conflict",
        415 => "unsupported_media_type",
        429 => "too_many_requests",
        _ => "internal_error",
    };
    smooch_error(status, code, &e.to_string())
}

fn smooch_error(status: StatusCode, code: &str, description: &str) -> Response {
    reply::json(
        status,
        &json!({"error": {"code": code, "description": description}}),
    )
}

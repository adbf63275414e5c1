//! The key directory routes (SPEC section 8): `POST/GET/DELETE /identity`
//! and `POST/GET/DELETE /invite`. Every answer, including the ones warp
//! would otherwise produce itself (oversized body, wrong method, bad query
//! string), is the Keys Server envelope `{status, error, value}`.

use super::{body, reply, with_app, App, MAX_BODY};
use crate::engine::directory::cacao::Cacao;
use crate::engine::directory::jwt::Action;
use crate::engine::directory::DirError;
use crate::engine::now_ms;
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use std::convert::Infallible;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Rejection};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegisterIdentity {
    cacao: Cacao,
}

/// The body of the three did-JWT-authorised routes.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IdAuth {
    #[serde(rename = "idAuth")]
    id_auth: String,
}

type Query = HashMap<String, String>;

pub fn routes(app: App) -> BoxedFilter<(Response,)> {
    let app = || with_app(app.clone());
    let register_identity = app().and(warp::post()).and(json_body()).then(
        |app: App, body: Result<RegisterIdentity, DirError>| async move {
            match body {
                Ok(b) => envelope(app.directory.register_identity(b.cacao, now_ms()).await),
                Err(e) => envelope(Err(e)),
            }
        },
    );
    let resolve_identity = app()
        .and(warp::get())
        .and(query())
        .map(|app: App, q: Query| {
            envelope(required(&q, "publicKey").and_then(|key| app.directory.resolve_identity(key)))
        });
    let resolve_invite = app()
        .and(warp::get())
        .and(query())
        .map(|app: App, q: Query| {
            envelope(
                required(&q, "account").and_then(|account| app.directory.resolve_invite(account)),
            )
        });
    let identity = warp::path!("identity").and(
        register_identity
            .or(resolve_identity)
            .unify()
            .or(id_auth_route(
                app(),
                warp::delete(),
                Action::UnregisterIdentity,
            ))
            .unify(),
    );
    let invite = warp::path!("invite").and(
        id_auth_route(app(), warp::post(), Action::RegisterInvite)
            .or(resolve_invite)
            .unify()
            .or(id_auth_route(
                app(),
                warp::delete(),
                Action::UnregisterInvite,
            ))
            .unify(),
    );
    identity
        .or(invite)
        .unify()
        .recover(rejection_envelope)
        .unify()
        .boxed()
}

/// One of the three routes authorised by an `idAuth` did-JWT.
fn id_auth_route(
    app: impl Filter<Extract = (App,), Error = Infallible> + Clone + Send + Sync + 'static,
    method: impl Filter<Extract = (), Error = Rejection> + Clone + Send + Sync + 'static,
    action: Action,
) -> BoxedFilter<(Response,)> {
    app.and(method)
        .and(json_body())
        .then(move |app: App, body: Result<IdAuth, DirError>| async move {
            let id_auth = match body {
                Ok(b) => b.id_auth,
                Err(e) => return envelope(Err(e)),
            };
            let (directory, now) = (&app.directory, now_ms());
            envelope(match action {
                Action::RegisterInvite => directory.register_invite(&id_auth, now).await,
                Action::UnregisterInvite => directory.unregister_invite(&id_auth, now).await,
                Action::UnregisterIdentity => directory.unregister_identity(&id_auth, now).await,
            })
        })
        .boxed()
}

/// A JSON body of type `T`; failures are kept as values so the handler can
/// answer them in the envelope.
fn json_body<T: DeserializeOwned + Send>(
) -> impl Filter<Extract = (Result<T, DirError>,), Error = Rejection> + Clone {
    body().map(|content_type: Option<String>, bytes: Bytes| {
        let is_json = content_type.as_deref().is_some_and(|ct| {
            ct.split(';')
                .next()
                .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
        });
        if !is_json {
            return Err(DirError::http(
                415,
                "validation",
                "Content-Type must be application/json",
            ));
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| DirError::validation(format!("Invalid JSON body: {e}")))
    })
}

fn query() -> impl Filter<Extract = (Query,), Error = Rejection> + Clone {
    warp::query::<Query>()
}

/// A query parameter that must be present and non-empty.
fn required<'q>(query: &'q Query, name: &str) -> Result<&'q str, DirError> {
    query
        .get(name)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| DirError::validation(format!("Missing query parameter {name}")))
}

#[derive(Serialize)]
struct Envelope<'a> {
    status: &'static str,
    error: Option<ErrorBody<'a>>,
    value: Option<Value>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    name: &'a str,
    message: &'a str,
}

/// The Keys Server response envelope for a directory result.
fn envelope(result: Result<Value, DirError>) -> Response {
    match result {
        Ok(value) => reply::json(
            StatusCode::OK,
            &Envelope {
                status: "SUCCESS",
                error: None,
                value: Some(value).filter(|v| !v.is_null()),
            },
        ),
        Err(e) => reply::json(
            StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            &Envelope {
                status: "FAILURE",
                error: Some(ErrorBody {
                    name: &e.name,
                    message: &e.message,
                }),
                value: None,
            },
        ),
    }
}

/// Warp's own rejections on the directory paths, as envelopes; requests for
/// other paths pass through untouched.
async fn rejection_envelope(rejection: Rejection) -> Result<Response, Rejection> {
    if rejection.is_not_found() {
        return Err(rejection);
    }
    let error = if rejection.find::<super::BodyTooLarge>().is_some() {
        DirError::http(
            413,
            "validation",
            format!("Body larger than {MAX_BODY} bytes"),
        )
    } else if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
        DirError::http(405, "validation", "Method not allowed")
    } else if rejection.find::<warp::reject::InvalidQuery>().is_some() {
        DirError::validation("Invalid query string")
    } else {
        DirError::validation(format!("Bad request: {rejection:?}"))
    };
    Ok(envelope(Err(error)))
}

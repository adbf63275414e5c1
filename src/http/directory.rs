//! The key directory routes (`docs/directory.md`): `POST/GET/DELETE /identity`
//! and `POST/GET/DELETE /invite`. Every answer, including the ones warp
//! would otherwise produce itself (oversized body, wrong method, bad query
//! string), is the Keys Server envelope `{status, error, value}`.

use super::client::client_ip;
use super::{body, reply, with_app, App};
use crate::directory::cacao::Cacao;
use crate::directory::jwt::Action;
use crate::directory::DirError;
use crate::engine::limits::KeyedBuckets;
use crate::engine::now_ms;
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Rejection};

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RegisterIdentity {
    cacao: Cacao,
}

/// The body of the three did-JWT-authorised routes.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct IdAuth {
    #[serde(rename = "idAuth")]
    id_auth: String,
}

type Query = HashMap<String, String>;

/// Whether the client address may write now (see [`write_allowance`]).
type Allowed = Result<(), DirError>;

pub fn routes(app: App) -> BoxedFilter<(Response,)> {
    let writes = Arc::new(KeyedBuckets::per_minute(app.directory_writes_per_minute));
    let allowance = write_allowance(&app, writes);
    let app = || with_app(app.clone());
    let register_identity = app()
        .and(warp::post())
        .and(allowance.clone())
        .and(json_body())
        .then(
            |app: App, allowed: Allowed, body: Result<RegisterIdentity, DirError>| async move {
                let cacao = match allowed.and(body) {
                    Ok(b) => b.cacao,
                    Err(e) => return envelope(Err(e)),
                };
                envelope(app.directory.register_identity(cacao, now_ms()).await)
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
                allowance.clone(),
                Action::UnregisterIdentity,
            ))
            .unify(),
    );
    let invite = warp::path!("invite").and(
        id_auth_route(
            app(),
            warp::post(),
            allowance.clone(),
            Action::RegisterInvite,
        )
        .or(resolve_invite)
        .unify()
        .or(id_auth_route(
            app(),
            warp::delete(),
            allowance.clone(),
            Action::UnregisterInvite,
        ))
        .unify(),
    );
    identity
        .or(invite)
        .unify()
        .or(unknown_directory_path())
        .unify()
        .recover(rejection_envelope)
        .unify()
        .boxed()
}

/// Paths below `/identity/` or `/invite/` that name no route: 404 in the
/// envelope. The two routes themselves are left to the method filters
/// above (405 for a wrong method).
fn unknown_directory_path() -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path("identity")
        .or(warp::path("invite"))
        .unify()
        .and(warp::path::tail())
        .and_then(|tail: warp::path::Tail| async move {
            if tail.as_str().is_empty() {
                Err(warp::reject::not_found())
            } else {
                Ok(envelope(Err(DirError::http(404, "not_found", "Not found"))))
            }
        })
}

/// One of the three routes authorised by an `idAuth` did-JWT.
fn id_auth_route(
    app: impl Filter<Extract = (App,), Error = Infallible> + Clone + Send + Sync + 'static,
    method: impl Filter<Extract = (), Error = Rejection> + Clone + Send + Sync + 'static,
    allowance: impl Filter<Extract = (Allowed,), Error = Infallible> + Clone + Send + Sync + 'static,
    action: Action,
) -> BoxedFilter<(Response,)> {
    app.and(method)
        .and(allowance)
        .and(json_body())
        .then(
            move |app: App, allowed: Allowed, body: Result<IdAuth, DirError>| async move {
                let id_auth = match allowed.and(body) {
                    Ok(b) => b.id_auth,
                    Err(e) => return envelope(Err(e)),
                };
                let (directory, now) = (&app.directory, now_ms());
                envelope(match action {
                    Action::RegisterInvite => directory.register_invite(&id_auth, now).await,
                    Action::UnregisterInvite => directory.unregister_invite(&id_auth, now).await,
                    Action::UnregisterIdentity => {
                        directory.unregister_identity(&id_auth, now).await
                    }
                })
            },
        )
        .boxed()
}

/// Takes one of the client address's directory writes (checked before any
/// signature work); `Err` (429) when it has none left this minute.
fn write_allowance(
    app: &App,
    writes: Arc<KeyedBuckets>,
) -> impl Filter<Extract = (Allowed,), Error = Infallible> + Clone {
    client_ip(app).map(move |ip: Option<std::net::IpAddr>| {
        let address = ip.map(|ip| ip.to_string()).unwrap_or_default();
        if writes.take(&address) {
            Ok(())
        } else {
            crate::observe::refused("directory_writes");
            Err(DirError::too_many_writes())
        }
    })
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

/// Every directory answer, success or not.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = DirectoryEnvelope)]
pub(crate) struct Envelope<'a> {
    /// `SUCCESS` or `FAILURE`.
    status: &'static str,
    error: Option<ErrorBody<'a>>,
    value: Option<Value>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = DirectoryError)]
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
/// other paths pass through untouched. 400s keep the directory's own
/// `validation` name; the others are named after their status.
async fn rejection_envelope(rejection: Rejection) -> Result<Response, Rejection> {
    if rejection.is_not_found() {
        return Err(rejection);
    }
    let (status, code, message) = super::rejection_reason(&rejection);
    let name = if status == StatusCode::BAD_REQUEST {
        "validation"
    } else {
        code
    };
    Ok(envelope(Err(DirError::http(
        status.as_u16(),
        name,
        message,
    ))))
}

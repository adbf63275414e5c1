//! `/api/documents` and `/new`.

use super::{body, parse_body, reply, same_site, session, with_app, App, Session};
use crate::engine::Caller;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::Filter;

/// The body of `POST /api/documents`; without an id the server picks one.
#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewDocument {
    id: Option<String>,
}

pub fn routes(app: App) -> BoxedFilter<(Response,)> {
    let create = warp::path!("api" / "documents")
        .and(warp::post())
        .and(with_app(app.clone()))
        .and(session(app.clone()))
        .and(body())
        .then(
            |app: App, s: Session, ct: Option<String>, body: Bytes| async move {
                let result = match parse_body::<NewDocument>(ct.as_deref(), &body) {
                    Ok(req) => {
                        app.engine
                            .create_document(&s.caller, req.id.as_deref())
                            .await
                    }
                    Err(e) => Err(e),
                };
                match result {
                    Ok(id) => reply::json(
                        StatusCode::CREATED,
                        &json!({"id": id, "permissions": "arw"}),
                    ),
                    Err(e) => reply::error(&e),
                }
            },
        );
    let list = warp::path!("api" / "documents")
        .and(warp::get())
        .and(with_app(app.clone()))
        .and(session(app.clone()))
        .map(
            |app: App, s: Session| match app.engine.my_documents(&s.caller) {
                Ok(docs) => reply::json(StatusCode::OK, &docs),
                Err(e) => reply::error(&e),
            },
        );
    let delete = warp::path!("api" / "documents" / String)
        .and(warp::delete())
        .and(with_app(app.clone()))
        .and(session(app.clone()))
        .then(|id: String, app: App, s: Session| async move {
            match app.engine.delete_document(&s.caller, &id).await {
                Ok(()) => reply::no_content(),
                Err(e) => reply::error(&e),
            }
        });
    // A GET that creates: a link on another site must not make documents
    // in the visitor's account.
    let new = warp::path!("new")
        .and(warp::get())
        .and(same_site(app.clone()))
        .and(with_app(app.clone()))
        .and(session(app.clone()))
        .then(|app: App, s: Session| async move {
            if s.caller == Caller::Anonymous {
                return reply::redirect(StatusCode::SEE_OTHER, "/auth/login?next=%2Fnew");
            }
            match app.engine.create_document(&s.caller, None).await {
                Ok(id) => reply::redirect(StatusCode::SEE_OTHER, &format!("/{id}/")),
                Err(e) => reply::error(&e),
            }
        });
    create
        .or(list)
        .unify()
        .or(delete)
        .unify()
        .or(new)
        .unify()
        .boxed()
}

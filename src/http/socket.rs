//! `GET /<doc>/ws`: the checks made before a WebSocket upgrade (Origin,
//! document, access), then hand-over to the socket loop in `ws`.

use super::{client_addr, reply, session, with_app, App, Conn, Session};
use crate::engine::documents::validate_doc_id;
use crate::engine::Caller;
use crate::ws::{serve_socket, MAX_FRAME};
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::{Reply, Response};
use warp::Filter;

pub fn route(app: App) -> BoxedFilter<(Response,)> {
    warp::path!(String / "ws")
        .and(warp::header::optional::<String>("origin"))
        .and(with_app(app.clone()))
        .and(session(app))
        .and(client_addr())
        .and(warp::ws())
        .map(
            |doc: String, origin: Option<String>, app: App, s: Session, conn: Option<Conn>, ws: warp::ws::Ws| {
                if let Some(origin) = origin {
                    if !app.origins.iter().any(|o| o.eq_ignore_ascii_case(&origin)) {
                        tracing::info!(origin = %origin, "WebSocket refused: origin not allowed");
                        return reply::text(StatusCode::FORBIDDEN, "Origin not allowed");
                    }
                }
                if validate_doc_id(&doc).is_err() {
                    return reply::text(StatusCode::NOT_FOUND, format!("No such document {doc}"));
                }
                let level = match app.engine.caller_level(&s.caller, &doc) {
                    Ok(level) => level,
                    Err(e) => return reply::error(&e),
                };
                if s.caller == Caller::Anonymous && !level.can_read() {
                    return reply::text(StatusCode::FORBIDDEN, "Log in or get read access first");
                }
                let engine = app.engine.clone();
                ws.max_message_size(MAX_FRAME)
                    .max_frame_size(MAX_FRAME)
                    .on_upgrade(move |socket| serve_socket(engine, socket, doc, s.caller, level, conn))
                    .into_response()
            },
        )
        .boxed()
}

//! The pages a person sees: the landing page, the static assets, the
//! document page with its access rules, and invite acceptance by URL.

use super::{reply, session, with_app, App, Session};
use crate::engine::documents::validate_doc_id;
use crate::engine::{Caller, Error};
use warp::filters::BoxedFilter;
use warp::http::{header, StatusCode};
use warp::reply::Response;
use warp::Filter;

pub const LOGIN_PAGE: &str = include_str!("../../static/login.html");
const DOCUMENT_PAGE: &str = include_str!("../../static/document.html");
const LANDING_PAGE: &str = include_str!("../../static/index.html");

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// `(name, content type, body)` of a file in `static/`.
macro_rules! asset {
    ($name:literal, $content_type:expr) => {
        (
            $name,
            $content_type,
            include_str!(concat!("../../static/", $name)),
        )
    };
}

/// Files under `/static/`, embedded so the binary runs from anywhere.
const ASSETS: &[(&str, &str, &str)] = &[
    asset!("keystrate.js", JS),
    asset!("page.js", JS),
    asset!("index.js", JS),
    asset!("login.js", JS),
    asset!("document.js", JS),
    asset!("invites-panel.js", JS),
    asset!("permissions-panel.js", JS),
    asset!("keys-panel.js", JS),
    asset!("style.css", CSS),
];

/// The query string, or `""` when there is none.
pub(super) fn raw_query(
) -> impl Filter<Extract = (String,), Error = std::convert::Infallible> + Clone {
    warp::query::raw().or(warp::any().map(String::new)).unify()
}

pub fn routes(app: App) -> BoxedFilter<(Response,)> {
    let landing = warp::path::end()
        .and(warp::get())
        .map(|| reply::html(StatusCode::OK, LANDING_PAGE));
    let assets = warp::path!("static" / String)
        .and(warp::get())
        .map(
            |name: String| match ASSETS.iter().find(|(n, _, _)| *n == name) {
                Some((_, content_type, body)) => {
                    let mut r = reply::text(StatusCode::OK, *body);
                    r.headers_mut()
                        .insert(header::CONTENT_TYPE, content_type.parse().expect("static"));
                    reply::with_header(r, header::CACHE_CONTROL, "no-cache")
                }
                None => reply::text(StatusCode::NOT_FOUND, "Not found"),
            },
        );
    let document = warp::path!(String / ..)
        .and(warp::path::end())
        .and(warp::get())
        .and(warp::path::full())
        .and(raw_query())
        .and_then(
            |doc: String, full: warp::path::FullPath, query: String| async move {
                if full.as_str().ends_with('/') {
                    return Ok(doc);
                }
                // `/<doc>` → `/<doc>/`, query kept.
                let location = if query.is_empty() {
                    format!("/{doc}/")
                } else {
                    format!("/{doc}/?{query}")
                };
                Err(warp::reject::custom(AddSlash(location)))
            },
        )
        .and(with_app(app.clone()))
        .and(session(app.clone()))
        .and(raw_query())
        .then(document_page);
    landing
        .or(assets)
        .unify()
        .or(super::socket::route(app))
        .unify()
        .or(document)
        .unify()
        .recover(|rejection: warp::Rejection| async move {
            match rejection.find::<AddSlash>() {
                Some(AddSlash(location)) => {
                    Ok(reply::redirect(StatusCode::PERMANENT_REDIRECT, location))
                }
                None => Err(rejection),
            }
        })
        .unify()
        .boxed()
}

/// `/<doc>` without the trailing slash: answered with a 308.
#[derive(Debug)]
struct AddSlash(String);
impl warp::reject::Reject for AddSlash {}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A small page with a title and one message, for errors a person sees.
fn message_page(status: StatusCode, title: &str, message: &str) -> Response {
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{t}</title><link rel=\"stylesheet\" href=\"/static/style.css\"></head>\
         <body><main class=\"narrow\"><h1>{t}</h1><p id=\"message\">{m}</p>\
         <p><a href=\"/\">Home</a></p></main></body></html>",
        t = escape(title),
        m = escape(message)
    );
    reply::html(status, body)
}

/// The page for a failure of the server's own (storage): logged here.
fn failure_page(e: &Error) -> Response {
    e.log_internal();
    message_page(StatusCode::INTERNAL_SERVER_ERROR, "Error", &e.to_string())
}

fn login_redirect(path_and_query: &str) -> Response {
    let next = serde_urlencoded::to_string([("next", path_and_query)]).unwrap_or_default();
    reply::redirect(StatusCode::SEE_OTHER, &format!("/auth/login?{next}"))
}

async fn document_page(doc: String, app: App, s: Session, query: String) -> Response {
    if validate_doc_id(&doc).is_err() {
        return message_page(StatusCode::NOT_FOUND, "Not found", "There is no such page.");
    }
    let here = if query.is_empty() {
        format!("/{doc}/")
    } else {
        format!("/{doc}/?{query}")
    };
    let params: Vec<(String, String)> = serde_urlencoded::from_str(&query).unwrap_or_default();
    if let Some((_, key)) = params.iter().find(|(k, _)| k == "acceptInvite") {
        // Logged-out callers learn nothing about the key (it is not looked
        // at before they log in), so they need no guard of their own.
        if s.caller == Caller::Anonymous {
            return login_redirect(&here);
        }
        let rest: Vec<&(String, String)> =
            params.iter().filter(|(k, _)| k != "acceptInvite").collect();
        return accept_by_url(&app, &s.caller, &doc, key, &rest).await;
    }
    let exists = match app.engine.document_exists(&doc) {
        Ok(e) => e,
        Err(e) => return failure_page(&e),
    };
    if !exists {
        if s.caller == Caller::Anonymous {
            return login_redirect(&here);
        }
        if !app.engine.config().create_on_visit {
            return message_page(
                StatusCode::NOT_FOUND,
                "No such document",
                &format!("No such document {doc}"),
            );
        }
        if let Err(e) = app.engine.create_document(&s.caller, Some(&doc)).await {
            // A concurrent visit may have created it first; anything else is real.
            if !matches!(e, Error::Conflict(_)) {
                e.log_internal();
                return message_page(StatusCode::BAD_REQUEST, "Error", &e.to_string());
            }
        }
    }
    match app.engine.effective_level(&doc, s.caller.user()) {
        Ok(level) if level.can_read() => reply::html(StatusCode::OK, DOCUMENT_PAGE),
        Ok(_) if s.caller == Caller::Anonymous => login_redirect(&here),
        Ok(_) => message_page(
            StatusCode::FORBIDDEN,
            "No access",
            &format!("You have no access to {doc}. Ask one of its admins for an invite link."),
        ),
        Err(e) => failure_page(&e),
    }
}

/// `?acceptInvite=<key>` for a logged-in caller: accept, then send the
/// browser to the document without the parameter. Failures count against
/// the user's own guard in the engine (the one the WebSocket uses), never
/// against an address: one user's bad links must not lock out everyone
/// behind the same proxy.
async fn accept_by_url(
    app: &App,
    caller: &Caller,
    doc: &str,
    key: &str,
    rest: &[&(String, String)],
) -> Response {
    match app.engine.accept_invite(caller, doc, key).await {
        Ok(_) => {
            let query = serde_urlencoded::to_string(rest).unwrap_or_default();
            let location = if query.is_empty() {
                format!("/{doc}/")
            } else {
                format!("/{doc}/?{query}")
            };
            reply::redirect(StatusCode::SEE_OTHER, &location)
        }
        Err(e) => {
            e.log_internal();
            let (status, next_step) = match e {
                Error::RateLimited => (
                    StatusCode::TOO_MANY_REQUESTS,
                    "Wait a minute and open the link again.",
                ),
                _ => (
                    StatusCode::CONFLICT,
                    "Ask whoever sent you the link for a new one.",
                ),
            };
            message_page(
                status,
                "This invite cannot be used",
                &format!("Error: {e}. {next_step}"),
            )
        }
    }
}

//! `/auth/*`: register, login, logout, me, password change, and the login page.

use super::client::client_ip;
use super::{
    body, parse_body, parse_form_or_json, reply, same_site, session, with_app, App, Session,
    SESSION_COOKIE,
};
use crate::engine::accounts::NewSession;
use crate::engine::{Caller, Error};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;
use std::net::IpAddr;
use warp::filters::BoxedFilter;
use warp::http::{header, StatusCode};
use warp::reply::Response;
use warp::Filter;

/// The body of register and login (JSON, or a form from our own pages).
#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct Credentials {
    username: String,
    password: String,
}

/// The body of `POST /auth/password`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PasswordChange {
    password: String,
    new_password: String,
}

pub fn routes(app: App) -> BoxedFilter<(Response,)> {
    // Login CSRF: a cross-site form must not log the victim into the
    // attacker's account, so these refuse other sites with or without a cookie.
    let register = warp::path!("auth" / "register")
        .and(warp::post())
        .and(same_site(app.clone()))
        .and(with_app(app.clone()))
        .and(body())
        .then(|app: App, ct: Option<String>, body: Bytes| async move {
            credentials_then(&app, ct, &body, StatusCode::CREATED, |app, c| async move {
                app.engine.register(&c.username, &c.password).await
            })
            .await
        });
    let login = warp::path!("auth" / "login")
        .and(warp::post())
        .and(same_site(app.clone()))
        .and(with_app(app.clone()))
        .and(client_ip(&app))
        .and(body())
        .then(
            |app: App, client: Option<IpAddr>, ct: Option<String>, body: Bytes| async move {
                credentials_then(&app, ct, &body, StatusCode::OK, |app, c| async move {
                    app.engine.login(&c.username, &c.password, client).await
                })
                .await
            },
        );
    let logout = warp::path!("auth" / "logout")
        .and(warp::post())
        .and(same_site(app.clone()))
        .and(with_app(app.clone()))
        .and(session(app.clone()))
        .then(|app: App, s: Session| async move {
            if let Some(token) = &s.token {
                if let Err(e) = app.engine.logout(token).await {
                    return reply::error(&e);
                }
            }
            let cookie = cookie(&app, "", 0);
            reply::with_header(reply::no_content(), header::SET_COOKIE, &cookie)
        });
    let me = warp::path!("auth" / "me")
        .and(warp::get())
        .and(session(app.clone()))
        .map(|s: Session| match s.caller {
            Caller::User(u) => reply::json(StatusCode::OK, &u),
            Caller::Anonymous | Caller::Operator => {
                reply::error(&Error::Unauthorized("Not logged in".into()))
            }
        });
    let password = warp::path!("auth" / "password")
        .and(warp::post())
        .and(with_app(app.clone()))
        .and(session(app.clone()))
        .and(client_ip(&app))
        .and(body())
        .then(
            |app: App, s: Session, client: Option<IpAddr>, ct: Option<String>, body: Bytes| async move {
                change_password(&app, &s, client, ct.as_deref(), &body).await
            },
        );
    let page = warp::path!("auth" / "login")
        .and(warp::get())
        .map(|| reply::html(StatusCode::OK, super::pages::LOGIN_PAGE));
    register
        .or(login)
        .unify()
        .or(logout)
        .unify()
        .or(me)
        .unify()
        .or(password)
        .unify()
        .or(page)
        .unify()
        .boxed()
}

/// `POST /auth/password {"password", "newPassword"}`: a logged-in user's
/// own change. Every other session ends; this one gets a fresh cookie.
async fn change_password(
    app: &App,
    s: &Session,
    client: Option<IpAddr>,
    content_type: Option<&str>,
    body: &[u8],
) -> Response {
    let Caller::User(user) = &s.caller else {
        return reply::error(&Error::Unauthorized("Not logged in".into()));
    };
    let result = match parse_body::<PasswordChange>(content_type, body) {
        Ok(c) => {
            app.engine
                .change_own_password(user, &c.password, &c.new_password, client)
                .await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(new) => {
            let cookie = cookie(app, &new.token, app.engine.config().session_ttl.as_secs());
            let body = json!({"username": new.user.username, "provider": new.user.provider});
            reply::with_header(
                reply::json(StatusCode::OK, &body),
                header::SET_COOKIE,
                &cookie,
            )
        }
        Err(e) => reply::error(&e),
    }
}

/// Parses credentials, runs `f`, and answers with the user and a cookie.
async fn credentials_then<F, Fut>(
    app: &App,
    content_type: Option<String>,
    body: &[u8],
    status: StatusCode,
    f: F,
) -> Response
where
    F: FnOnce(App, Credentials) -> Fut,
    Fut: std::future::Future<Output = crate::engine::Result<NewSession>>,
{
    let result = match parse_form_or_json::<Credentials>(content_type.as_deref(), body) {
        Ok(c) => f(app.clone(), c).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(s) => {
            let cookie = cookie(app, &s.token, app.engine.config().session_ttl.as_secs());
            let body = json!({"username": s.user.username, "provider": s.user.provider});
            reply::with_header(reply::json(status, &body), header::SET_COOKIE, &cookie)
        }
        Err(e) => reply::error(&e),
    }
}

/// The session cookie; `max_age` 0 clears it.
fn cookie(app: &App, token: &str, max_age: u64) -> String {
    let secure = if app.secure_cookies() { "; Secure" } else { "" };
    format!("{SESSION_COOKIE}={token}; HttpOnly; SameSite=Lax; Path=/; Max-Age={max_age}{secure}")
}

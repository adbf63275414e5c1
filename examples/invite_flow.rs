//! A Rust client of a running keystrate: two users, one document, one
//! invite created over the WebSocket by the admin and accepted by the other.
//! The two users get fresh names on every run (`ana-<random>`,
//! `ben-<random>`), so the example never clashes with accounts already there.
//!
//!     keystrate &                                # the server on 127.0.0.1:7007
//!     cargo run --example invite_flow            # or: -- http://host:port

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

type Error = Box<dyn std::error::Error>;

/// Logs `name` in (registering on first use) and returns the session token.
async fn session(base: &str, name: &str) -> Result<String, Error> {
    let http = reqwest::Client::new();
    let creds = json!({"username": name, "password": "correct horse battery"});
    let mut r = http
        .post(format!("{base}/auth/login"))
        .json(&creds)
        .send()
        .await?;
    if r.status() == 401 {
        r = http
            .post(format!("{base}/auth/register"))
            .json(&creds)
            .send()
            .await?;
    }
    if !r.status().is_success() {
        return Err(format!("{name}: {} {}", r.status(), r.text().await?).into());
    }
    let cookie = r.headers()["set-cookie"].to_str()?;
    let token = cookie
        .split(';')
        .next()
        .unwrap_or("")
        .trim_start_matches("keystrate_session=");
    Ok(token.to_string())
}

/// One request over a fresh socket; returns the reply value or the error.
async fn call(
    base: &str,
    doc: &str,
    token: &str,
    wa: &str,
    options: Value,
) -> Result<Value, Error> {
    let mut req = format!("{}/{doc}/ws", base.replacen("http", "ws", 1)).into_client_request()?;
    req.headers_mut()
        .insert("cookie", format!("keystrate_session={token}").parse()?);
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await?;
    let frame = json!({"wa": wa, "token": "1", "options": options});
    ws.send(Message::text(frame.to_string())).await?;
    while let Some(msg) = ws.next().await {
        let Message::Text(text) = msg? else { continue };
        let v: Value = serde_json::from_str(&text)?;
        if v["wa"] == "reply" {
            return match v.get("reply") {
                Some(reply) => Ok(reply.clone()),
                None => Err(format!("{}: {}", v["code"], v["error"]).into()),
            };
        }
    }
    Err("socket closed before the reply".into())
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let base = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "http://127.0.0.1:7007".into());
    let run = hex::encode(rand::random::<[u8; 3]>());
    let (admin_name, guest_name) = (format!("ana-{run}"), format!("ben-{run}"));
    let admin = session(&base, &admin_name).await?;
    let guest = session(&base, &guest_name).await?;

    let doc = reqwest::Client::new()
        .post(format!("{base}/api/documents"))
        .header("cookie", format!("keystrate_session={admin}"))
        .send()
        .await?
        .json::<Value>()
        .await?["id"]
        .as_str()
        .ok_or("no document id")?
        .to_string();
    println!("{admin_name} created document {doc}");

    let invite = call(
        &base,
        &doc,
        &admin,
        "createInvite",
        json!({"permissions": "rw", "maxAge": 300}),
    )
    .await?;
    println!(
        "{admin_name}'s invite: {base}/{doc}/?acceptInvite={}",
        invite["key"].as_str().unwrap_or("")
    );

    let level = call(
        &base,
        &doc,
        &guest,
        "acceptInvite",
        json!({"key": invite["key"]}),
    )
    .await?;
    println!("{guest_name} accepted and now has {level} on {doc}");
    Ok(())
}

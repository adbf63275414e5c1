//! `wa` → engine call: one small function per action. Each reads its
//! options, calls the engine and serialises the reply value; the frame is
//! assembled around that text (`protocol::reply`) without building a
//! `serde_json::Value` tree first.

use crate::engine::invites::{key_option, CreateOptions, ListOptions};
use crate::engine::{Caller, Engine, Error, Level, Result, User};
use serde_json::{json, Value};

/// Actions that only read storage and never wait for a flush.
pub fn reads_only(wa: &str) -> bool {
    matches!(wa, "checkInvite" | "getInvites" | "getPermissions")
}

/// The action's name as a metrics label: one of the known actions, else
/// `unknown` (a client may send any text).
pub fn action_label(wa: &str) -> &'static str {
    const ACTIONS: [&str; 7] = [
        "createInvite",
        "checkInvite",
        "acceptInvite",
        "getInvites",
        "removeInvite",
        "getPermissions",
        "setPermissions",
    ];
    ACTIONS.into_iter().find(|a| *a == wa).unwrap_or("unknown")
}

/// Runs one request against `doc` (already resolved from `d`).
pub async fn dispatch(
    engine: &Engine,
    caller: &Caller,
    doc: &str,
    wa: &str,
    options: &Value,
) -> Result<ReplyJson> {
    // Anonymous callers never handle invites: say so before judging options.
    let handles_invites = matches!(
        wa,
        "createInvite" | "checkInvite" | "acceptInvite" | "getInvites" | "removeInvite"
    );
    if handles_invites {
        caller.require_user()?;
    }
    match wa {
        "createInvite" => create_invite(engine, caller, doc, options).await,
        "checkInvite" => check_invite(engine, caller, doc, options),
        "acceptInvite" => accept_invite(engine, caller, doc, options).await,
        "getInvites" => get_invites(engine, caller, doc, options),
        "removeInvite" => remove_invite(engine, caller, doc, options).await,
        "getPermissions" => get_permissions(engine, caller, doc),
        "setPermissions" => set_permissions(engine, caller, doc, options).await,
        _ => Err(Error::UnknownAction),
    }
}

/// A reply value as JSON text.
pub type ReplyJson = String;

fn to_json<T: serde::Serialize>(v: T) -> Result<ReplyJson> {
    serde_json::to_string(&v).map_err(|e| Error::Internal(e.to_string()))
}

async fn create_invite(
    engine: &Engine,
    caller: &Caller,
    doc: &str,
    options: &Value,
) -> Result<ReplyJson> {
    let options = CreateOptions::from_json(options)?;
    to_json(engine.create_invite(caller, doc, &options).await?)
}

fn check_invite(engine: &Engine, caller: &Caller, doc: &str, options: &Value) -> Result<ReplyJson> {
    to_json(engine.check_invite(caller, doc, &key_option(options)?)?)
}

async fn accept_invite(
    engine: &Engine,
    caller: &Caller,
    doc: &str,
    options: &Value,
) -> Result<ReplyJson> {
    let level = engine
        .accept_invite(caller, doc, &key_option(options)?)
        .await?;
    to_json(level.as_str())
}

fn get_invites(engine: &Engine, caller: &Caller, doc: &str, options: &Value) -> Result<ReplyJson> {
    let options = ListOptions::from_json(options)?;
    // The reply stays a plain array, as Webstrates clients expect: a full
    // page means there may be more, asked for with `after`.
    to_json(engine.get_invites(caller, doc, &options)?.invites)
}

async fn remove_invite(
    engine: &Engine,
    caller: &Caller,
    doc: &str,
    options: &Value,
) -> Result<ReplyJson> {
    engine
        .remove_invite(caller, doc, &key_option(options)?)
        .await?;
    Ok(json!({"acknowledged": true, "deletedCount": 1}).to_string())
}

fn get_permissions(engine: &Engine, caller: &Caller, doc: &str) -> Result<ReplyJson> {
    to_json(engine.get_permissions(caller, doc)?)
}

async fn set_permissions(
    engine: &Engine,
    caller: &Caller,
    doc: &str,
    options: &Value,
) -> Result<ReplyJson> {
    let text = |name: &str| -> Result<Option<&str>> {
        match options.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(Error::bad(format!("{name} must be a string"))),
        }
    };
    let username = text("username")?.ok_or_else(|| Error::bad("username is required"))?;
    let permissions = text("permissions")?
        .ok_or_else(|| Error::bad("permissions is required (\"\" removes the entry)"))?;
    let level = Level::parse(permissions).map_err(Error::BadRequest)?;
    let target = match (username, text("provider")?) {
        ("anonymous", None | Some("")) => User::anonymous(),
        (name, provider) => User {
            username: name.to_string(),
            provider: provider.unwrap_or("local").to_string(),
        },
    };
    to_json(engine.set_permissions(caller, doc, &target, level).await?)
}

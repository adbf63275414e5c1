//! The admin socket: `admin.sock` (mode 0600) inside the data directory,
//! through which the CLI (`keystrate keys …`, `keystrate user …`) reaches a
//! running server. sled locks the data
//! directory while the server runs, so the CLI cannot open the store itself
//! then; it sends one JSON request per line and reads one JSON reply per line.
//!
//! Whoever can connect is the operator: the socket's mode limits that to the
//! server's own user (and root). [`execute`] runs each request as
//! [`Caller::Operator`] through the engine's checks (the operator's bypass
//! is stated in `engine/operator.rs`); the CLI runs the same function on
//! the store directly when no server answers, so both paths share every
//! rule.

use crate::engine::key_rules::KeyScope;
use crate::engine::keys::KeyDetails;
use crate::engine::users::parse_user;
use crate::engine::{Caller, Engine, Error, Result, User};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use tokio::io::AsyncWriteExt;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::codec::{FramedRead, LinesCodec, LinesCodecError};
use tracing::Instrument;

pub(crate) const SOCKET_NAME: &str = "admin.sock";

/// Longest request line accepted.
const MAX_LINE: usize = 64 * 1024;

pub(crate) fn socket_path(data: &Path) -> PathBuf {
    data.join(SOCKET_NAME)
}

/// One operator request.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub(crate) enum Request {
    CreateKey {
        doc: String,
        name: String,
        owner: User,
    },
    ListKeys {
        doc: String,
    },
    DeleteKey {
        doc: String,
        id: String,
    },
    AddUser {
        name: String,
        password: Password,
    },
    ListUsers,
    SetPassword {
        name: String,
        password: Password,
    },
    DeleteUser {
        name: String,
    },
    /// Every record as export lines (`docs/export.md`), in one string.
    Export,
}

/// A password on its way to the engine; `Debug` never shows it.
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub(crate) struct Password(pub(crate) String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(…)")
    }
}

/// One reply line: `{"ok": …}` or `{"error", "code"}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Reply {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) ok: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) code: Option<String>,
}

impl Reply {
    pub(crate) fn from_result(result: Result<Value>) -> Reply {
        match result {
            Ok(v) => Reply {
                ok: Some(v),
                error: None,
                code: None,
            },
            Err(e) => {
                // The operator reads the whole cause; the log keeps it too.
                e.log_internal();
                Reply {
                    ok: None,
                    error: Some(e.detail()),
                    code: Some(e.code().to_string()),
                }
            }
        }
    }
}

/// The created key as the CLI prints it, with its recorded details.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct CreatedKey {
    pub(crate) key: String,
    pub(crate) details: KeyDetails,
}

/// Runs a request as [`Caller::Operator`]: the engine's own checks decide,
/// with the operator's bypass stated in `engine/operator.rs`.
pub(crate) async fn execute(engine: &Engine, request: Request) -> Result<Value> {
    let operator = &Caller::Operator;
    match request {
        Request::CreateKey { doc, name, owner } => {
            let key = engine
                .create_app_key_for(operator, &doc, &name, &owner)
                .await?;
            Ok(to_json(&CreatedKey {
                key: key.full_key(),
                details: key.details(),
            }))
        }
        Request::ListKeys { doc } => {
            let keys: Vec<KeyDetails> = engine
                .keys_for(operator, KeyScope::App(&doc))?
                .iter()
                .map(|k| k.details())
                .collect();
            Ok(to_json(&keys))
        }
        Request::DeleteKey { doc, id } => {
            engine.delete_app_key(operator, &doc, &id).await?;
            Ok(json!({}))
        }
        Request::AddUser { name, password } => {
            engine.create_user(operator, &name, &password.0).await?;
            Ok(json!({}))
        }
        Request::ListUsers => Ok(to_json(&engine.list_users(operator)?)),
        Request::SetPassword { name, password } => {
            engine
                .set_password(operator, &parse_user(&name), &password.0)
                .await?;
            Ok(json!({}))
        }
        Request::DeleteUser { name } => {
            engine.delete_user(operator, &parse_user(&name)).await?;
            Ok(json!({}))
        }
        Request::Export => {
            // Every record, secrets included: the operator's alone.
            operator.require_operator()?;
            let store = engine.store().clone();
            let lines = tokio::task::spawn_blocking(move || {
                let mut lines = Vec::new();
                crate::transfer::export(&store, &mut lines).map(|()| lines)
            })
            .await
            .map_err(|e| Error::Internal(e.to_string()))??;
            Ok(Value::String(
                String::from_utf8(lines).expect("export lines are JSON text"),
            ))
        }
    }
}

fn to_json<T: Serialize>(value: &T) -> Value {
    serde_json::to_value(value).expect("replies serialise")
}

/// Binds the socket and serves it until `shutdown`, then removes the file.
/// The socket is created under a temporary name, restricted to 0600, and
/// only then renamed into place, so it is never reachable with a wider mode.
pub(crate) fn start(
    engine: Engine,
    data: &Path,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<JoinHandle<()>> {
    let path = socket_path(data);
    let staging = data.join(format!(".{SOCKET_NAME}.{}", std::process::id()));
    // Only one server can hold the store, so a leftover file is stale.
    let _ = std::fs::remove_file(&staging);
    let listener = UnixListener::bind(&staging)?;
    std::fs::set_permissions(&staging, std::fs::Permissions::from_mode(0o600))?;
    std::fs::rename(&staging, &path)?;
    tracing::info!(path = %path.display(), "admin socket listening");
    Ok(tokio::spawn(async move {
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        // Lines logged by the engine while serving it name the operator.
                        let span = tracing::info_span!("admin_connection");
                        tokio::spawn(serve_connection(engine.clone(), stream).instrument(span));
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "admin socket accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    }
                },
                _ = shutdown.changed() => break,
            }
        }
        let _ = std::fs::remove_file(&path);
    }))
}

/// Answers one request line after another until the client hangs up. A
/// line is refused as soon as it outgrows [`MAX_LINE`], before its end
/// arrives, so a client cannot make the server buffer an endless line; the
/// connection then closes, since where the next request starts is lost.
async fn serve_connection(engine: Engine, stream: UnixStream) {
    let (read, mut write) = stream.into_split();
    let mut lines = FramedRead::new(read, LinesCodec::new_with_max_length(MAX_LINE));
    while let Some(line) = lines.next().await {
        let (reply, more) = match line {
            Ok(line) => (answer(&engine, &line).await, true),
            Err(LinesCodecError::MaxLineLengthExceeded) => {
                let error = Error::bad(format!("request line longer than {MAX_LINE} bytes"));
                (Reply::from_result(Err(error)), false)
            }
            Err(LinesCodecError::Io(e)) if e.kind() == std::io::ErrorKind::InvalidData => {
                let error = Error::bad("request line is not UTF-8");
                (Reply::from_result(Err(error)), false)
            }
            Err(LinesCodecError::Io(_)) => break,
        };
        let mut out = serde_json::to_vec(&reply).expect("replies serialise");
        out.push(b'\n');
        if write.write_all(&out).await.is_err() || !more {
            break;
        }
    }
}

/// The reply to one request line.
async fn answer(engine: &Engine, line: &str) -> Reply {
    match serde_json::from_str::<Request>(line) {
        Ok(request) => Reply::from_result(execute(engine, request).await),
        Err(e) => Reply::from_result(Err(Error::bad(format!("bad request: {e}")))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show_in_debug_output() {
        let secret = "hunter2 hunter2";
        for request in [
            Request::AddUser {
                name: "alice".into(),
                password: Password(secret.into()),
            },
            Request::SetPassword {
                name: "alice".into(),
                password: Password(secret.into()),
            },
        ] {
            let shown = format!("{request:?}");
            assert!(
                shown.contains("alice") && !shown.contains(secret),
                "{shown}"
            );
            // The wire form still carries it, as a plain string.
            let wire = serde_json::to_string(&request).unwrap();
            assert!(
                wire.contains(&format!("\"password\":\"{secret}\"")),
                "{wire}"
            );
        }
    }
}

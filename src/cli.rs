//! `keystrate keys …`, `user …`, `export` and `import`: operator commands. When a
//! server runs on the data directory, the request goes through its admin
//! socket (the server holds sled's lock); otherwise the CLI opens the store
//! itself. Both paths run [`admin::execute`], so the rules are the same.

use crate::admin::{self, CreatedKey, Password, Reply, Request};
use crate::config::{KeysCommand, UserCommand};
use crate::engine::keys::KeyDetails;
use crate::engine::users::{display_name, parse_user, UserSummary};
use crate::engine::{Engine, NoEvents, User};
use crate::store::Store;
use serde_json::Value;
use std::io::{ErrorKind, Write};
use std::path::Path;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

/// Runs a keys command; `Ok` is what to print on stdout, `Err` the message
/// for stderr.
pub async fn keys(data: &Path, command: KeysCommand) -> Result<String, String> {
    let request = match command {
        KeysCommand::Create { doc, name, owner } => Request::CreateKey {
            doc,
            name,
            owner: parse_user(&owner),
        },
        KeysCommand::List { doc } => Request::ListKeys { doc },
        KeysCommand::Delete { doc, id } => Request::DeleteKey { doc, id },
    };
    let printing = request.clone();
    let value = run(data, request).await?;
    let bad_reply = |e: serde_json::Error| format!("unexpected reply from the server: {e}");
    Ok(match printing {
        Request::CreateKey { .. } => {
            let created: CreatedKey = serde_json::from_value(value).map_err(bad_reply)?;
            format!("{}\n", created.key)
        }
        Request::ListKeys { .. } => {
            let keys: Vec<KeyDetails> = serde_json::from_value(value).map_err(bad_reply)?;
            keys.iter()
                .map(|k| format!("{}\t{}\n", k.id, k.name))
                .collect()
        }
        Request::DeleteKey { .. } => String::new(),
        other => unreachable!("not a keys request: {other:?}"),
    })
}

/// Runs a user command; `password` reads the new password (standard input)
/// for `add` and `passwd`. `Ok` is what to print on stdout.
pub async fn user(
    data: &Path,
    command: UserCommand,
    password: impl FnOnce() -> Result<String, String>,
) -> Result<String, String> {
    match command {
        UserCommand::Add { name } => {
            let password = Password(password()?);
            run(
                data,
                Request::AddUser {
                    name: name.clone(),
                    password,
                },
            )
            .await?;
            Ok(format!("created user {name}\n"))
        }
        UserCommand::List => {
            let value = run(data, Request::ListUsers).await?;
            let users: Vec<UserSummary> = serde_json::from_value(value)
                .map_err(|e| format!("unexpected reply from the server: {e}"))?;
            Ok(users
                .iter()
                .map(|u| {
                    let user = User {
                        username: u.username.clone(),
                        provider: u.provider.clone(),
                    };
                    format!("{}\t{}\n", display_name(&user), u.created_at)
                })
                .collect())
        }
        UserCommand::Passwd { name } => {
            let password = Password(password()?);
            run(
                data,
                Request::SetPassword {
                    name: name.clone(),
                    password,
                },
            )
            .await?;
            Ok(format!(
                "changed the password of {name}; its sessions ended\n"
            ))
        }
        UserCommand::Delete { name } => {
            run(data, Request::DeleteUser { name: name.clone() }).await?;
            Ok(format!("deleted user {name}\n"))
        }
    }
}

/// Sends the request to the running server, or runs it on the store.
async fn run(data: &Path, request: Request) -> Result<Value, String> {
    match UnixStream::connect(admin::socket_path(data)).await {
        Ok(stream) => through_server(stream, &request).await,
        // No socket, or a stale one left by a killed server.
        Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::ConnectionRefused) => {
            on_store(data, request).await
        }
        Err(e) => Err(unreachable_server(data, e)),
    }
}

async fn through_server(stream: UnixStream, request: &Request) -> Result<Value, String> {
    let (read, mut write) = stream.into_split();
    let mut line = serde_json::to_vec(request).expect("requests serialise");
    line.push(b'\n');
    write
        .write_all(&line)
        .await
        .map_err(|e| format!("cannot talk to the server: {e}"))?;
    let mut answer = String::new();
    BufReader::new(read)
        .read_line(&mut answer)
        .await
        .map_err(|e| format!("cannot read the server's reply: {e}"))?;
    let reply: Reply = serde_json::from_str(&answer)
        .map_err(|e| format!("unexpected reply from the server: {e}"))?;
    match (reply.ok, reply.error) {
        (Some(v), _) => Ok(v),
        (None, Some(error)) => Err(error),
        (None, None) => Err("empty reply from the server".into()),
    }
}

async fn on_store(data: &Path, request: Request) -> Result<Value, String> {
    // Only `user add` may start a new data directory (before the first start).
    if !data.is_dir() && !matches!(request, Request::AddUser { .. }) {
        return Err(format!("no data directory at {}", data.display()));
    }
    let store = open(data)?;
    let engine = Engine::new(store, Default::default(), std::sync::Arc::new(NoEvents));
    let result = admin::execute(&engine, request).await;
    engine
        .store()
        .flush_now()
        .map_err(|e| format!("cannot flush {}: {e}", data.display()))?;
    // The operator sees the cause of an internal failure, not only its name.
    result.map_err(|e| e.detail())
}

/// `keystrate export`: through the running server's admin socket, or from
/// the stopped store. Writes to `out` (created 0600: it holds password
/// hashes and key secrets) or standard output, and prints nothing else.
pub async fn export(data: &Path, out: Option<&Path>) -> Result<(), String> {
    let lines = match UnixStream::connect(admin::socket_path(data)).await {
        Ok(stream) => match through_server(stream, &Request::Export).await? {
            Value::String(lines) => lines.into_bytes(),
            other => return Err(format!("unexpected reply from the server: {other}")),
        },
        Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::ConnectionRefused) => {
            if !data.is_dir() {
                return Err(format!("no data directory at {}", data.display()));
            }
            let store = open(data)?;
            let mut lines = Vec::new();
            crate::transfer::export(&store, &mut lines).map_err(|e| e.to_string())?;
            lines
        }
        Err(e) => return Err(unreachable_server(data, e)),
    };
    let written = match out {
        Some(path) => private_file(path).and_then(|mut f| f.write_all(&lines)),
        None => std::io::stdout().write_all(&lines),
    };
    written.map_err(|e| format!("cannot write the export: {e}"))
}

/// A file only its owner can read, created or emptied.
fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    // `mode` applies only to a new file.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    Ok(file)
}

/// `keystrate import`: checks the whole input first (nothing is written
/// from a bad file), then fills the empty, stopped store. `Ok` is what to
/// print on stdout.
pub async fn import(data: &Path, input: Option<&Path>) -> Result<String, String> {
    if UnixStream::connect(admin::socket_path(data)).await.is_ok() {
        return Err(format!(
            "a server is running on {}; import only into a new data directory, with no server on it",
            data.display()
        ));
    }
    let records = match input {
        Some(path) => {
            let file = std::fs::File::open(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            crate::transfer::read(std::io::BufReader::new(file))
        }
        None => crate::transfer::read(std::io::stdin().lock()),
    }
    .map_err(|e| format!("nothing imported: {e}"))?;
    let store = open(data)?;
    crate::transfer::import(&store, &records)?;
    Ok(format!(
        "imported {} records into {}\n",
        records.len(),
        data.display()
    ))
}

fn open(data: &Path) -> Result<Store, String> {
    Store::open(data).map_err(|e| format!("cannot open {}: {e}", data.display()))
}

fn unreachable_server(data: &Path, e: std::io::Error) -> String {
    format!(
        "cannot reach the server's admin socket in {}: {e}",
        data.display()
    )
}

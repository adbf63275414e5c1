//! The one place that pushes events to sockets. Each document has a room of
//! connected clients with the permission they were last told; the engine
//! reports every change through [`Events`] and the hub works out who must
//! hear what:
//! `permissionsChanged` to the affected user's sockets, and presence
//! (`clientJoin` / `clientPart`) only between sockets that can read.

use crate::engine::accounts::SessionId;
use crate::engine::events::Events;
use crate::engine::{Level, User};
use dashmap::DashMap;
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use tokio::sync::{mpsc, Notify};

/// How many frames may wait for a slow socket before it is disconnected.
pub const QUEUE: usize = 256;

/// What the hub asks a socket's writer to do.
#[derive(Debug, Clone)]
pub enum Outgoing {
    Text(String),
    /// A keep-alive ping (the socket loop's, never the hub's).
    Ping,
    Close(u16, &'static str),
}

/// A socket's handle in a room.
pub struct ClientHandle {
    pub user: Option<User>,
    /// The session the socket was opened with (none for anonymous ones).
    pub session: Option<SessionId>,
    pub level: Level,
    pub tx: mpsc::Sender<Outgoing>,
    /// Tells the socket loop to close the socket (1008) and stop reading.
    pub evict: Arc<Eviction>,
}

/// The hub's request that a socket go away, with the reason its close
/// frame gives. The first reason wins.
#[derive(Default)]
pub struct Eviction {
    reason: OnceLock<&'static str>,
    wake: Notify,
}

impl Eviction {
    pub fn evict(&self, reason: &'static str) {
        let _ = self.reason.set(reason);
        // Stores a permit if the loop is not waiting yet: never lost.
        self.wake.notify_one();
    }

    /// Resolves once evicted, with the reason.
    pub async fn evicted(&self) -> &'static str {
        self.wake.notified().await;
        self.reason.get().copied().unwrap_or("evicted")
    }
}

#[derive(Default)]
pub struct Hub {
    rooms: DashMap<String, HashMap<String, ClientHandle>>,
}

fn user_json(user: &Option<User>) -> serde_json::Value {
    match user {
        Some(u) => json!({"username": u.username, "provider": u.provider}),
        None => serde_json::Value::Null,
    }
}

fn presence(kind: &str, doc: &str, id: &str, user: &Option<User>) -> String {
    json!({"wa": kind, "d": doc, "clientId": id, "user": user_json(user)}).to_string()
}

fn deliver(client: &ClientHandle, frame: Outgoing) {
    if client.tx.try_send(frame).is_err() {
        client.evict.evict("too slow to read events");
    }
}

impl Hub {
    /// Adds a socket and queues its `hello` frame first, before any event
    /// can reach it. Readers already present learn of it if it can read.
    pub fn join(&self, doc: &str, client_id: &str, client: ClientHandle) {
        let mut room = self.rooms.entry(doc.to_string()).or_default();
        let visible = client.level.can_read();
        // Readers present, with their users: `clients` (docs/protocol.md, "Events") lists
        // ids; `users` (an extension) lets a page name them at once.
        let present: Vec<(&str, &Option<User>)> = if visible {
            room.iter()
                .filter(|(_, c)| c.level.can_read())
                .map(|(id, c)| (id.as_str(), &c.user))
                .chain(std::iter::once((client_id, &client.user)))
                .collect()
        } else {
            Vec::new()
        };
        let clients: Vec<&str> = present.iter().map(|(id, _)| *id).collect();
        let users: serde_json::Map<String, serde_json::Value> = present
            .iter()
            .map(|(id, user)| (id.to_string(), user_json(user)))
            .collect();
        let hello = json!({
            "wa": "hello",
            "d": doc,
            "clientId": client_id,
            "user": user_json(&client.user),
            "permissions": client.level.as_str(),
            "clients": clients,
            "users": users,
        })
        .to_string();
        if visible {
            let frame = presence("clientJoin", doc, client_id, &client.user);
            for other in room.values().filter(|c| c.level.can_read()) {
                deliver(other, Outgoing::Text(frame.clone()));
            }
        }
        deliver(&client, Outgoing::Text(hello));
        room.insert(client_id.to_string(), client);
    }

    /// Removes a socket; readers hear `clientPart` if it was visible.
    pub fn leave(&self, doc: &str, client_id: &str) {
        let Some(mut room) = self.rooms.get_mut(doc) else {
            return;
        };
        if let Some(gone) = room.remove(client_id) {
            if gone.level.can_read() {
                let frame = presence("clientPart", doc, client_id, &gone.user);
                for other in room.values().filter(|c| c.level.can_read()) {
                    deliver(other, Outgoing::Text(frame.clone()));
                }
            }
        }
        if room.is_empty() {
            drop(room);
            self.rooms.remove_if(doc, |_, r| r.is_empty());
        }
    }

    /// Re-evaluates the permission of every socket on `doc` (or only those
    /// of `only`) and sends what changed.
    fn refresh(&self, doc: &str, only: Option<&User>, level_of: &dyn Fn(Option<&User>) -> Level) {
        let Some(mut room) = self.rooms.get_mut(doc) else {
            return;
        };
        let mut changed = Vec::new();
        for (id, client) in room.iter_mut() {
            if only.is_some() && client.user.as_ref() != only {
                continue;
            }
            let level = level_of(client.user.as_ref());
            if level != client.level {
                changed.push((id.clone(), client.level, level));
                client.level = level;
                let frame =
                    json!({"wa": "permissionsChanged", "d": doc, "permissions": level.as_str()});
                deliver(client, Outgoing::Text(frame.to_string()));
            }
        }
        for (id, before, after) in changed {
            if before.can_read() == after.can_read() {
                continue;
            }
            let user = room[&id].user.clone();
            let kind = if after.can_read() {
                "clientJoin"
            } else {
                "clientPart"
            };
            let frame = presence(kind, doc, &id, &user);
            for (other_id, other) in room.iter() {
                if other_id != &id && other.level.can_read() {
                    deliver(other, Outgoing::Text(frame.clone()));
                    // A socket that just gained read access learns who is here.
                    if after.can_read() {
                        deliver(
                            &room[&id],
                            Outgoing::Text(presence("clientJoin", doc, other_id, &other.user)),
                        );
                    }
                }
            }
        }
    }

    /// Closes every socket of a deleted document.
    fn document_deleted(&self, doc: &str) {
        if let Some(room) = self.rooms.get(doc) {
            for client in room.values() {
                let frame = json!({"wa": "permissionsChanged", "d": doc, "permissions": ""});
                deliver(client, Outgoing::Text(frame.to_string()));
                deliver(client, Outgoing::Close(1000, "document deleted"));
            }
        }
    }

    /// Closes every socket of `user` with 1008 (its sessions ended: a new
    /// password, or the account deleted).
    fn close_user(&self, user: &User, reason: &'static str) {
        self.evict_where(|c| c.user.as_ref() == Some(user), reason);
    }

    /// Closes every socket opened with session `id` (1008), on every
    /// document. Logouts are rare and each needs a session, which costs a
    /// password hash to get, so a scan of the rooms is cheap enough and
    /// keeps no second index to maintain.
    fn close_session(&self, id: &SessionId, reason: &'static str) {
        self.evict_where(|c| c.session.as_ref() == Some(id), reason);
    }

    /// Evicts (1008) every socket that `which` picks, on every document.
    fn evict_where(&self, which: impl Fn(&ClientHandle) -> bool, reason: &'static str) {
        for room in self.rooms.iter() {
            for client in room.values().filter(|c| which(c)) {
                client.evict.evict(reason);
            }
        }
    }

    /// Closes every socket with 1001 (server going away).
    pub fn close_all(&self) {
        for room in self.rooms.iter() {
            for client in room.values() {
                deliver(client, Outgoing::Close(1001, "server shutting down"));
            }
        }
    }

    /// Number of connected sockets (shutdown waits for it to reach zero).
    pub fn socket_count(&self) -> usize {
        self.rooms.iter().map(|r| r.len()).sum()
    }
}

impl Events for Hub {
    fn permissions_changed(
        &self,
        doc: &str,
        only: Option<&User>,
        level_of: &dyn Fn(Option<&User>) -> Level,
    ) {
        self.refresh(doc, only, level_of);
    }

    fn document_deleted(&self, doc: &str) {
        Hub::document_deleted(self, doc);
    }

    fn user_sessions_ended(&self, user: &User, reason: &'static str) {
        self.close_user(user, reason);
    }

    fn session_ended(&self, id: &SessionId, reason: &'static str) {
        self.close_session(id, reason);
    }
}

//! The one place that pushes events to sockets. Each document has a room of
//! connected clients with the permission they were last told; the engine
//! reports every change through [`Events`] and the hub works out who must
//! hear what:
//! `permissionsChanged` to the affected user's sockets, and presence only
//! between sockets that can read, in the format each socket asked for
//! (`super::presence`).

use super::presence::{self, Batch, Change, Frames, Presence};
use crate::engine::accounts::SessionId;
use crate::engine::events::Events;
use crate::engine::{Level, User};
use dashmap::DashMap;
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use tokio::sync::{mpsc, Notify};
use tokio_tungstenite::tungstenite::Utf8Bytes;

/// How many frames may wait for a slow socket before it is disconnected.
pub const QUEUE: usize = 256;

/// What the hub asks a socket's writer to do. Frames are shared bytes: an
/// event serialised once is queued to every recipient without a copy.
#[derive(Debug, Clone)]
pub enum Outgoing {
    Text(Utf8Bytes),
    /// Several frames in one queue slot, written in order (a batched
    /// socket's list of who is here, or a window's changes in pages).
    Frames(Frames),
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
    /// The presence format the socket asked for.
    pub presence: Presence,
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

/// The sockets of one document.
#[derive(Default)]
struct Room {
    clients: HashMap<String, ClientHandle>,
    /// Batched presence, kept while the room has a batched socket.
    batch: Option<Batch>,
    /// How many of `clients` asked for batched presence.
    batched: usize,
}

impl Room {
    /// Tells the room's readers (all but `id` itself) that `id` became
    /// visible (`joined`) or stopped being visible: per-client sockets at
    /// once, batched ones at the next flush.
    fn announce(&mut self, doc: &str, id: &str, user: &Option<User>, joined: bool) {
        if let Some(batch) = &mut self.batch {
            batch.record(id, joined);
        }
        // A room of batched sockets only has nobody to tell at once: no
        // scan of thousands of sockets per join. (`id` itself is counted
        // in both or in neither.)
        if self.batched == self.clients.len() {
            return;
        }
        let kind = if joined { "clientJoin" } else { "clientPart" };
        let mut listeners = self.clients.iter().filter(|(other, c)| {
            *other != id && c.presence == Presence::PerClient && c.level.can_read()
        });
        if let Some((_, first)) = listeners.next() {
            // Serialised once; every listener's queue shares the bytes.
            let frame = presence::per_client(kind, doc, id, user);
            deliver(first, Outgoing::Text(frame.clone()));
            for (_, other) in listeners {
                deliver(other, Outgoing::Text(frame.clone()));
            }
        }
    }

    /// The readers now, as `clients` frames (what a batched socket gets to
    /// learn who is here).
    fn roster(&self, doc: &str) -> Frames {
        let readers: Vec<Change> = self
            .clients
            .iter()
            .filter(|(_, c)| c.level.can_read())
            .map(|(id, c)| Change::Joined(id, &c.user))
            .collect();
        presence::clients_frames(doc, &readers)
    }

    /// Tells batched readers the changes gathered since the last flush.
    fn flush(&mut self, doc: &str) {
        let Some(batch) = &mut self.batch else {
            return;
        };
        batch.due = false;
        if batch.is_empty() {
            return;
        }
        let (joined, parted) = batch.take();
        let mut changes: Vec<Change> = parted.iter().map(|id| Change::Parted(id)).collect();
        // A recorded join is still present and visible: leaving or losing
        // `r` within the window cancelled it.
        changes.extend(
            joined
                .iter()
                .filter_map(|id| Some(Change::Joined(id, &self.clients.get(id)?.user))),
        );
        let frames = presence::clients_frames(doc, &changes);
        let readers = self.clients.values();
        for reader in readers.filter(|c| c.presence == Presence::Batched && c.level.can_read()) {
            deliver(reader, Outgoing::Frames(frames.clone()));
        }
        let roster = self.roster(doc);
        if let Some(batch) = &mut self.batch {
            batch.roster = roster;
        }
    }

    /// A socket that just gained read access learns who is here.
    fn tell_who_is_here(&self, doc: &str, id: &str) {
        let client = &self.clients[id];
        if client.presence == Presence::Batched {
            return self.send_roster(client);
        }
        for (other_id, other) in &self.clients {
            if other_id != id && other.level.can_read() {
                let frame = presence::per_client("clientJoin", doc, other_id, &other.user);
                deliver(client, Outgoing::Text(frame));
            }
        }
    }

    /// Tells `client` (visible now, batched) who is here: the readers at
    /// the last flush; the next flush brings the changes since.
    fn send_roster(&self, client: &ClientHandle) {
        if let Some(batch) = &self.batch {
            if !batch.roster.is_empty() {
                deliver(client, Outgoing::Frames(batch.roster.clone()));
            }
        }
    }
}

/// Rooms by document id, shared with the flush timers.
type Rooms = DashMap<String, Room>;

#[derive(Default)]
pub struct Hub {
    rooms: Arc<Rooms>,
}

fn deliver(client: &ClientHandle, frame: Outgoing) {
    if client.tx.try_send(frame).is_err() {
        client.evict.evict("too slow to read events");
    }
}

/// The `hello` of a per-client socket: every reader present (itself
/// included when it can read) in `clients`, and (an extension) who each is
/// in `users`, so a page can name them at once.
fn hello_with_everyone(room: &Room, doc: &str, client_id: &str, client: &ClientHandle) -> String {
    let present: Vec<(&str, &Option<User>)> = if client.level.can_read() {
        room.clients
            .iter()
            .filter(|(_, c)| c.level.can_read())
            .map(|(id, c)| (id.as_str(), &c.user))
            .chain(std::iter::once((client_id, &client.user)))
            .collect()
    } else {
        Vec::new()
    };
    hello(doc, client_id, client, &present, None)
}

/// The `hello` frame listing `present`; `presence` is set for batched
/// sockets, whose list names only themselves (the others follow as
/// `clients` frames).
fn hello(
    doc: &str,
    client_id: &str,
    client: &ClientHandle,
    present: &[(&str, &Option<User>)],
    presence: Option<&str>,
) -> String {
    let clients: Vec<&str> = present.iter().map(|(id, _)| *id).collect();
    let users: serde_json::Map<String, serde_json::Value> = present
        .iter()
        .map(|(id, user)| (id.to_string(), presence::user_json(user)))
        .collect();
    let mut hello = json!({
        "wa": "hello",
        "d": doc,
        "clientId": client_id,
        "user": presence::user_json(&client.user),
        "permissions": client.level.as_str(),
        "clients": clients,
        "users": users,
    });
    if let Some(presence) = presence {
        hello["presence"] = presence.into();
    }
    hello.to_string()
}

impl Hub {
    /// Adds a socket and queues its `hello` frame first, before any event
    /// can reach it. Readers already present learn of it if it can read.
    pub fn join(&self, doc: &str, client_id: &str, client: ClientHandle) {
        let mut room = self.rooms.entry(doc.to_string()).or_default();
        let visible = client.level.can_read();
        match client.presence {
            Presence::PerClient => {
                let hello = hello_with_everyone(&room, doc, client_id, &client);
                deliver(&client, Outgoing::Text(hello.into()));
            }
            Presence::Batched => {
                if room.batch.is_none() {
                    let roster = room.roster(doc);
                    room.batch = Some(Batch::new(roster));
                }
                let me: &[(&str, &Option<User>)] = &[(client_id, &client.user)];
                let listed = if visible { me } else { &[] };
                let hello = hello(doc, client_id, &client, listed, Some("batched"));
                deliver(&client, Outgoing::Text(hello.into()));
                if visible {
                    room.send_roster(&client);
                }
            }
        }
        if visible {
            room.announce(doc, client_id, &client.user, true);
        }
        if client.presence == Presence::Batched {
            room.batched += 1;
        }
        room.clients.insert(client_id.to_string(), client);
        self.schedule_flush(doc, &mut room);
    }

    /// Removes a socket; readers hear it part if it was visible.
    pub fn leave(&self, doc: &str, client_id: &str) {
        let Some(mut room) = self.rooms.get_mut(doc) else {
            return;
        };
        if let Some(gone) = room.clients.remove(client_id) {
            if gone.presence == Presence::Batched {
                room.batched -= 1;
                if room.batched == 0 {
                    room.batch = None;
                }
            }
            if gone.level.can_read() {
                room.announce(doc, client_id, &gone.user, false);
            }
        }
        self.schedule_flush(doc, &mut room);
        if room.clients.is_empty() {
            drop(room);
            self.rooms.remove_if(doc, |_, r| r.clients.is_empty());
        }
    }

    /// Flushes `doc`'s batched presence one window from now, unless a flush
    /// is already due.
    fn schedule_flush(&self, doc: &str, room: &mut Room) {
        let idle = room.batch.as_ref().is_none_or(|b| b.due || b.is_empty());
        if idle {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            // No timers outside a runtime (never the case while serving).
            return room.flush(doc);
        };
        if let Some(batch) = &mut room.batch {
            batch.due = true;
        }
        let (rooms, doc) = (self.rooms.clone(), doc.to_string());
        runtime.spawn(async move {
            tokio::time::sleep(presence::WINDOW).await;
            if let Some(mut room) = rooms.get_mut(&doc) {
                room.flush(&doc);
            }
        });
    }

    /// Re-evaluates the permission of every socket on `doc` (or only those
    /// of `only`) and sends what changed.
    fn refresh(&self, doc: &str, only: Option<&User>, level_of: &dyn Fn(Option<&User>) -> Level) {
        let Some(mut room) = self.rooms.get_mut(doc) else {
            return;
        };
        let mut changed = Vec::new();
        for (id, client) in room.clients.iter_mut() {
            if only.is_some() && client.user.as_ref() != only {
                continue;
            }
            let level = level_of(client.user.as_ref());
            if level != client.level {
                changed.push((id.clone(), client.level, level));
                client.level = level;
                let frame =
                    json!({"wa": "permissionsChanged", "d": doc, "permissions": level.as_str()});
                deliver(client, Outgoing::Text(frame.to_string().into()));
            }
        }
        for (id, before, after) in changed {
            if before.can_read() == after.can_read() {
                continue;
            }
            let user = room.clients[&id].user.clone();
            room.announce(doc, &id, &user, after.can_read());
            if after.can_read() {
                room.tell_who_is_here(doc, &id);
            }
        }
        self.schedule_flush(doc, &mut room);
    }

    /// Closes every socket of a deleted document.
    fn document_deleted(&self, doc: &str) {
        if let Some(room) = self.rooms.get(doc) {
            for client in room.clients.values() {
                let frame = json!({"wa": "permissionsChanged", "d": doc, "permissions": ""});
                deliver(client, Outgoing::Text(frame.to_string().into()));
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
            for client in room.clients.values().filter(|c| which(c)) {
                client.evict.evict(reason);
            }
        }
    }

    /// Closes every socket with 1001 (server going away).
    pub fn close_all(&self) {
        for room in self.rooms.iter() {
            for client in room.clients.values() {
                deliver(client, Outgoing::Close(1001, "server shutting down"));
            }
        }
    }

    /// Number of connected sockets (shutdown waits for it to reach zero).
    pub fn socket_count(&self) -> usize {
        self.rooms.iter().map(|r| r.clients.len()).sum()
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

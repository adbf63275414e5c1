//! Presence frames: who is on a document, as its readers hear it. Two wire
//! formats:
//!
//! - per client (the default, Webstrates'): one `clientJoin` / `clientPart`
//!   frame for each change, to every reader, and the whole list in `hello`;
//! - batched (`?presence=batched`): the joins and parts of a short window in
//!   one `clients` frame, serialised once and shared by every recipient, and
//!   the list a joining socket needs sent as the same frames, built once per
//!   window for every joiner.
//!
//! With n readers joining one after another the per-client format sends
//! n²/2 frames and `hello`s that grow to the size of the room; the batched
//! one sends a frame per reader per window and keeps every frame a few KiB.
//!
//! A [`Batch`]'s changes (joined ids with their users, parted ids) are also
//! what one node would relay to the others once documents span a cluster:
//! each node flushes its own sockets' changes every window, and a peer merges
//! them into its rooms like local ones.

use crate::engine::User;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Utf8Bytes;

/// How a socket hears presence; chosen when it connects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Presence {
    /// One `clientJoin` / `clientPart` frame per change (the default).
    #[default]
    PerClient,
    /// `clients` frames gathering each window's joins and parts.
    Batched,
}

impl Presence {
    /// Reads the `presence` query parameter of `/<doc>/ws`.
    pub fn parse(value: Option<&str>) -> Result<Presence, String> {
        match value {
            None => Ok(Presence::PerClient),
            Some("batched") => Ok(Presence::Batched),
            Some(other) => Err(format!(
                "presence must be \"batched\" or left out, not {other:?}"
            )),
        }
    }
}

/// How long joins and parts are gathered before a batched frame goes out:
/// short enough for a page's list to follow within a fraction of a second,
/// long enough that a join storm costs each reader ten frames a second.
pub const WINDOW: Duration = Duration::from_millis(100);

/// Most clients one `clients` frame names. A socket's write buffer keeps the
/// size of the largest frame it wrote, so frames stay small however big the
/// room: 32 logged-in clients are under 2 KiB.
pub const PAGE: usize = 32;

/// Frames serialised once and shared by every socket they go to.
pub type Frames = Arc<[Utf8Bytes]>;

/// A client's user as the frames name it (`null`: anonymous).
pub fn user_json(user: &Option<User>) -> Value {
    match user {
        Some(u) => json!({"username": u.username, "provider": u.provider}),
        None => Value::Null,
    }
}

/// A per-client `clientJoin` or `clientPart` frame.
pub fn per_client(kind: &str, doc: &str, id: &str, user: &Option<User>) -> Utf8Bytes {
    json!({"wa": kind, "d": doc, "clientId": id, "user": user_json(user)})
        .to_string()
        .into()
}

/// A client that appears in a `clients` frame.
pub enum Change<'a> {
    Joined(&'a str, &'a Option<User>),
    Parted(&'a str),
}

/// `clients` frames for `changes`, at most [`PAGE`] clients each, in order:
/// `{"wa":"clients","d","joined":{clientId: user|null},"parted":[clientId]}`.
pub fn clients_frames(doc: &str, changes: &[Change]) -> Frames {
    changes
        .chunks(PAGE)
        .map(|page| {
            let mut joined = Map::new();
            let mut parted = Vec::new();
            for change in page {
                match change {
                    Change::Joined(id, user) => {
                        joined.insert(id.to_string(), user_json(user));
                    }
                    Change::Parted(id) => parted.push(Value::from(*id)),
                }
            }
            json!({"wa": "clients", "d": doc, "joined": joined, "parted": parted})
                .to_string()
                .into()
        })
        .collect()
}

/// A room's batched presence, kept while the room has a batched socket: the
/// readers as of the last flush (the frames a joining socket gets) and the
/// changes since. The two together are always the room's readers now.
pub struct Batch {
    /// The readers at the last flush, as `clients` frames.
    pub roster: Frames,
    /// Changes since: client id → joined (true) or parted (false). A change
    /// and its undoing within one window cancel out.
    pending: HashMap<String, bool>,
    /// A flush is scheduled.
    pub due: bool,
}

impl Batch {
    pub fn new(roster: Frames) -> Batch {
        Batch {
            roster,
            pending: HashMap::new(),
            due: false,
        }
    }

    /// Records that `id` became visible (`joined`) or stopped being visible.
    pub fn record(&mut self, id: &str, joined: bool) {
        match self.pending.get(id) {
            // The opposite change is not yet told: neither needs telling.
            Some(before) if *before != joined => {
                self.pending.remove(id);
            }
            _ => {
                self.pending.insert(id.to_string(), joined);
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// The changes since the last flush, emptied: (joined, parted) ids.
    pub fn take(&mut self) -> (Vec<String>, Vec<String>) {
        let (joined, parted): (Vec<_>, Vec<_>) = self.pending.drain().partition(|(_, j)| *j);
        (
            joined.into_iter().map(|(id, _)| id).collect(),
            parted.into_iter().map(|(id, _)| id).collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(frame: &Utf8Bytes) -> Value {
        serde_json::from_str(frame.as_str()).unwrap()
    }

    #[test]
    fn frames_hold_at_most_a_page_parts_first() {
        let alice = Some(User {
            username: "alice".into(),
            provider: "local".into(),
        });
        let ids: Vec<String> = (0..PAGE + 3).map(|i| format!("c{i}")).collect();
        let mut changes = vec![Change::Parted("gone")];
        changes.extend(ids.iter().map(|id| Change::Joined(id, &alice)));
        let frames = clients_frames("doc", &changes);
        assert_eq!(frames.len(), 2);
        let first = parse(&frames[0]);
        assert_eq!(first["wa"], "clients");
        assert_eq!(first["d"], "doc");
        assert_eq!(first["parted"], json!(["gone"]));
        assert_eq!(first["joined"].as_object().unwrap().len(), PAGE - 1);
        assert_eq!(
            first["joined"]["c0"],
            json!({"username": "alice", "provider": "local"})
        );
        let second = parse(&frames[1]);
        assert_eq!(second["parted"], json!([]));
        assert_eq!(second["joined"].as_object().unwrap().len(), 4);
        assert!(clients_frames("doc", &[]).is_empty());
    }

    #[test]
    fn a_change_undone_within_the_window_is_not_told() {
        let mut batch = Batch::new(Arc::from(Vec::new()));
        batch.record("a", true);
        batch.record("a", false);
        batch.record("b", false);
        batch.record("b", true);
        assert!(batch.is_empty());
        batch.record("c", true);
        batch.record("d", false);
        assert_eq!(batch.take(), (vec!["c".to_string()], vec!["d".to_string()]));
        assert!(batch.is_empty());
    }

    #[test]
    fn only_batched_or_nothing_is_a_presence_mode() {
        assert_eq!(Presence::parse(None), Ok(Presence::PerClient));
        assert_eq!(Presence::parse(Some("batched")), Ok(Presence::Batched));
        assert!(Presence::parse(Some("Batched")).is_err());
        assert!(Presence::parse(Some("")).is_err());
    }
}

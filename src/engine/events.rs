//! What the engine reports after a change. The engine decides *what*
//! changed; the live side (the WebSocket hub in `crate::ws::hub`) decides
//! who must hear it. Keeping this a small trait is what keeps the engine
//! free of sockets: the CLI runs it with [`NoEvents`].

use super::accounts::SessionId;
use super::{Level, User};

pub trait Events: Send + Sync + 'static {
    /// Permissions on `doc` changed for `only` (or for everyone, when the
    /// anonymous entry changed); `level_of` tells a user's new level.
    fn permissions_changed(
        &self,
        doc: &str,
        only: Option<&User>,
        level_of: &dyn Fn(Option<&User>) -> Level,
    );

    /// `doc` is gone.
    fn document_deleted(&self, doc: &str);

    /// Every session of `user` ended (a new password, the account deleted).
    fn user_sessions_ended(&self, user: &User, reason: &'static str);

    /// Session `id` ended (a logout).
    fn session_ended(&self, id: &SessionId, reason: &'static str);
}

/// For an engine with no live clients (the CLI on a stopped store).
pub struct NoEvents;

impl Events for NoEvents {
    fn permissions_changed(&self, _: &str, _: Option<&User>, _: &dyn Fn(Option<&User>) -> Level) {}
    fn document_deleted(&self, _: &str) {}
    fn user_sessions_ended(&self, _: &User, _: &'static str) {}
    fn session_ended(&self, _: &SessionId, _: &'static str) {}
}

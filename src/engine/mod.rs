//! The transport-independent core. WebSocket frames, HTTP routes and the CLI
//! all turn their input into calls on [`Engine`] with a [`Caller`], and turn
//! the typed result or [`Error`] into their own wire format. The rules of
//! docs/protocol.md, "Accounts" to "Invites", live here and nowhere else.

pub mod accounts;
pub mod documents;
pub mod error;
pub mod events;
pub mod expiry;
pub mod hashing;
pub mod invites;
pub mod jwt;
pub mod key_rules;
pub mod keys;
pub mod limits;
pub mod operator;
pub mod options;
pub mod quota;
pub mod users;

use crate::store::{AllDocumentsLock, DocumentLock, SharedDocumentLock, Store};
use std::sync::Arc;
use tokio::sync::Notify;

pub use crate::model::{Level, User};
pub use error::{Error, Result, Task};
pub use events::{Events, NoEvents};

/// Who is asking. Anonymous callers may read public documents but never
/// handle invites.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    Anonymous,
    User(User),
    /// Whoever reaches the admin socket or runs the CLI on a stopped store:
    /// no user, so no level on any document; what it may do besides is
    /// written in `operator.rs`.
    Operator,
}

impl Caller {
    pub fn user(&self) -> Option<&User> {
        match self {
            Caller::Anonymous | Caller::Operator => None,
            Caller::User(u) => Some(u),
        }
    }

    /// The user, or `not_logged_in` worded for `task`.
    pub fn require_user(&self, task: Task) -> Result<&User> {
        self.user().ok_or(Error::NotLoggedIn(task))
    }
}

/// Behaviour switches an operator can flip.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub open_registration: bool,
    pub create_on_visit: bool,
    /// Invites one document may hold before creating more is refused.
    pub max_invites_per_document: usize,
    /// How long a session lasts.
    pub session_ttl: std::time::Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            open_registration: true,
            create_on_visit: true,
            max_invites_per_document: quota::DEFAULT_MAX_INVITES,
            session_ttl: accounts::SESSION_TTL,
        }
    }
}

/// A cheap-to-clone handle on the shared state.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    events: Arc<dyn Events>,
    config: EngineConfig,
    failures: limits::FailureLimiter,
    invite_counts: quota::InviteCounts,
    login_failures: accounts::LoginFailures,
    hashing: hashing::HashPool,
    expiry_changed: Notify,
}

impl Engine {
    /// `events` hears every change (the WebSocket hub in the server,
    /// [`NoEvents`] where no socket is connected).
    pub fn new(store: Store, config: EngineConfig, events: Arc<dyn Events>) -> Engine {
        Engine {
            inner: Arc::new(Inner {
                store,
                events,
                failures: limits::FailureLimiter::new(20, std::time::Duration::from_secs(60)),
                invite_counts: quota::InviteCounts::new(config.max_invites_per_document),
                login_failures: accounts::LoginFailures::default(),
                hashing: hashing::HashPool::new(),
                expiry_changed: Notify::new(),
                config,
            }),
        }
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    fn events(&self) -> &dyn Events {
        &*self.inner.events
    }

    /// Failed check/accept attempts per user or client address.
    pub fn failures(&self) -> &limits::FailureLimiter {
        &self.inner.failures
    }

    /// Invites stored per document, against the operator's cap.
    pub(crate) fn invite_counts(&self) -> &quota::InviteCounts {
        &self.inner.invite_counts
    }

    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// Serialises changes to one document. It makes read-then-write rules
    /// such as "exactly k users accept" and "demotion drops every invite of
    /// the demoted admin" hold without retries.
    async fn lock_doc(&self, doc: &str) -> DocumentLock<'_> {
        self.store().lock_document(doc).await
    }

    /// Takes `doc`'s lock for an admin's change. The caller is checked
    /// before waiting, so non-admins never queue behind the lock, and again
    /// once it is held: a demotion may have committed while this waited, and
    /// a demoted admin must not act after it.
    async fn lock_as_admin<'c>(
        &self,
        caller: &'c Caller,
        doc: &str,
        task: Task,
    ) -> Result<(DocumentLock<'_>, &'c User)> {
        self.require_admin(caller, doc, task)?;
        let guard = self.lock_doc(doc).await;
        let user = self.require_admin(caller, doc, task)?;
        Ok((guard, user))
    }

    /// Every document lock: for the rare change that spans all of a user's
    /// documents at once (deleting the user).
    async fn lock_all_docs(&self) -> AllDocumentsLock<'_> {
        self.store().lock_all_documents().await
    }

    /// Shares a document among changes that only add new records (invites),
    /// written together in one combined transaction.
    async fn share_doc(&self, doc: &str) -> SharedDocumentLock<'_> {
        self.store().share_document(doc).await
    }

    /// Waits until the last change is on disk; replies are sent after this.
    async fn durable(&self) -> Result<()> {
        Ok(self.inner.store.durable().await?)
    }
}

/// Current time in milliseconds since the epoch.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// RFC 3339 UTC with milliseconds and `Z`, as every timestamp on the wire.
pub fn timestamp(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// `n` bytes from the OS CSPRNG.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    use rand::RngCore;
    let mut out = [0u8; N];
    rand::rngs::OsRng.fill_bytes(&mut out);
    out
}

//! Local accounts and sessions. Passwords are kept only as Argon2id hashes;
//! session tokens only as SHA-256 digests, so a stolen data directory holds
//! no usable credential.

use super::limits::FailureLimiter;
use super::{now_ms, random_bytes, Caller, Engine, Error, Result, User};
pub use crate::store::SessionId;
use crate::store::{Change, SessionRecord, UserRecord};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::Engine as _;
use std::net::IpAddr;
use std::time::Duration;

/// Sessions last 30 days unless the operator says otherwise.
pub const SESSION_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// Failed logins allowed per username, and per client address, within
/// [`LOGIN_FAILURE_WINDOW`] (to two windows); past them login answers 429
/// without checking the password. An address gets more: several people may
/// share one behind a NAT.
pub const LOGIN_FAILURES_PER_USER: u32 = 10;
pub const LOGIN_FAILURES_PER_ADDRESS: u32 = 100;
pub const LOGIN_FAILURE_WINDOW: Duration = Duration::from_secs(300);

/// Most expired sessions deleted in one transaction.
const PURGE_BATCH: usize = 256;

/// A new session: the token goes to the client once and is never stored.
pub struct NewSession {
    pub user: User,
    pub token: String,
}

/// A session that is live now.
#[derive(Clone)]
pub struct LiveSession {
    pub user: User,
    pub id: SessionId,
    /// Milliseconds since the epoch.
    pub expires_at: i64,
}

/// Failed logins, counted per username and per client address.
pub struct LoginFailures {
    by_user: FailureLimiter,
    by_address: FailureLimiter,
}

impl Default for LoginFailures {
    fn default() -> Self {
        LoginFailures {
            by_user: FailureLimiter::new(LOGIN_FAILURES_PER_USER, LOGIN_FAILURE_WINDOW),
            by_address: FailureLimiter::new(LOGIN_FAILURES_PER_ADDRESS, LOGIN_FAILURE_WINDOW),
        }
    }
}

impl LoginFailures {
    /// `Throttled` while either key is blocked.
    fn check(&self, user: &User, client: Option<IpAddr>) -> Result<()> {
        let by_user = self.by_user.retry_after(&user.id());
        let by_address = client.and_then(|ip| self.by_address.retry_after(&ip.to_string()));
        match by_user.max(by_address) {
            Some(wait) => {
                crate::observe::refused("login_failures");
                Err(Error::Throttled {
                    retry_after_s: wait.as_secs().max(1),
                })
            }
            None => Ok(()),
        }
    }

    fn record(&self, user: &User, client: Option<IpAddr>) {
        self.by_user.record(&user.id());
        if let Some(ip) = client {
            self.by_address.record(&ip.to_string());
        }
    }
}

/// The username rule (docs/protocol.md, "Accounts"): 1–64 of `[A-Za-z0-9._-]`, not `anonymous`.
pub fn validate_username(name: &str) -> Result<()> {
    let ok_chars = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-');
    if name.is_empty() || name.len() > 64 || !ok_chars {
        return Err(Error::bad(
            "username must be 1 to 64 characters of letters, digits, '.', '_' or '-'",
        ));
    }
    if name == "anonymous" {
        return Err(Error::bad("username \"anonymous\" is reserved"));
    }
    Ok(())
}

pub(crate) fn validate_password(password: &str) -> Result<()> {
    if password.len() < 8 || password.len() > 1024 {
        return Err(Error::bad("password must be 8 to 1024 bytes long"));
    }
    Ok(())
}

impl Engine {
    /// An Argon2id hash of `password` with a fresh salt, on the bounded
    /// hashing pool (`Busy` when it is full).
    pub(crate) async fn hash_password(&self, password: &str) -> Result<String> {
        let password = password.to_string();
        self.inner
            .hashing
            .run(move || {
                let salt = SaltString::encode_b64(&random_bytes::<16>())
                    .expect("16 bytes is a valid salt");
                Argon2::default()
                    .hash_password(password.as_bytes(), &salt)
                    .map(|h| h.to_string())
            })
            .await?
            .map_err(|e| Error::Internal(e.to_string()))
    }

    /// Open registration from the web, logged in at once.
    pub async fn register(&self, username: &str, password: &str) -> Result<NewSession> {
        let user = self
            .create_user(&Caller::Anonymous, username, password)
            .await?;
        self.new_session(user).await
    }

    /// Creates a local user: anyone while registration is open, the
    /// operator (`keystrate user add`) also when it is closed.
    pub async fn create_user(
        &self,
        caller: &Caller,
        username: &str,
        password: &str,
    ) -> Result<User> {
        if !self.config().open_registration && !caller.is_operator() {
            return Err(Error::Forbidden("Registration is closed".into()));
        }
        validate_username(username)?;
        validate_password(password)?;
        let user = User::local(username);
        // Cheap early answer; the commit below re-checks atomically.
        if self.user_exists(&user)? {
            return Err(Error::Conflict(format!("username {username} is taken")));
        }
        let hash = self.hash_password(password).await?;
        let record = UserRecord {
            username: user.username.clone(),
            provider: user.provider.clone(),
            password_hash: hash,
            created_at: now_ms(),
        };
        self.store().commit(&[Change::CreateUser(record)])?;
        self.durable().await?;
        tracing::info!(user = %user.id(), "user created");
        Ok(user)
    }

    /// True when `user` has an account here.
    pub fn user_exists(&self, user: &User) -> Result<bool> {
        Ok(self.store().user_exists(user)?)
    }

    /// Checks a password and opens a session. `client` is the caller's
    /// address, for the per-address failure limit.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        client: Option<IpAddr>,
    ) -> Result<NewSession> {
        let denied = || Error::Unauthorized("Wrong username or password".into());
        let user = User::local(username);
        let failures = &self.inner.login_failures;
        failures.check(&user, client)?;
        let record = self.store().user(&user)?;
        // Verify against a fixed hash when the user is unknown, so that timing
        // does not tell which usernames exist.
        let known = record.is_some();
        let stored = record
            .map(|r| r.password_hash)
            .unwrap_or_else(|| DUMMY_HASH.to_string());
        let password = password.to_string();
        let ok = self
            .inner
            .hashing
            .run(move || {
                PasswordHash::new(&stored)
                    .map(|h| {
                        Argon2::default()
                            .verify_password(password.as_bytes(), &h)
                            .is_ok()
                    })
                    .unwrap_or(false)
            })
            .await?;
        if !(ok && known) {
            failures.record(&user, client);
            return Err(denied());
        }
        self.new_session(user).await
    }

    async fn new_session(&self, user: User) -> Result<NewSession> {
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<32>());
        let ttl_ms = i64::try_from(self.config().session_ttl.as_millis()).unwrap_or(i64::MAX);
        let record = SessionRecord {
            user: user.clone(),
            expires_at: now_ms().saturating_add(ttl_ms),
        };
        let id = SessionId::of(&token);
        self.store().commit(&[Change::PutSession { id, record }])?;
        self.durable().await?;
        // The purge task may be idle with no session to wait for.
        self.expiry_changed();
        Ok(NewSession { user, token })
    }

    /// The live session behind a token, if any.
    pub fn session(&self, token: &str) -> Result<Option<LiveSession>> {
        self.session_by_id(SessionId::of(token))
    }

    /// True while the session is stored and not expired.
    pub fn session_is_live(&self, id: &SessionId) -> Result<bool> {
        Ok(self.session_by_id(id.clone())?.is_some())
    }

    fn session_by_id(&self, id: SessionId) -> Result<Option<LiveSession>> {
        match self.store().session(&id)? {
            Some(s) if s.expires_at > now_ms() => Ok(Some(LiveSession {
                user: s.user,
                id,
                expires_at: s.expires_at,
            })),
            // Past its expiry, the purge task's next round removes it.
            Some(_) => Ok(None),
            None => Ok(None),
        }
    }

    /// The user behind a session token, if the session is live.
    pub fn session_user(&self, token: &str) -> Result<Option<User>> {
        Ok(self.session(token)?.map(|s| s.user))
    }

    /// Deletes a session server-side and closes its sockets (1008).
    pub async fn logout(&self, token: &str) -> Result<()> {
        let id = SessionId::of(token);
        if let Some(record) = self.store().session(&id)? {
            self.store().commit(&[Change::DropSession {
                id: id.clone(),
                expires_at: record.expires_at,
            }])?;
        }
        self.durable().await?;
        self.events().session_ended(&id, "logged out");
        Ok(())
    }

    /// Deletes every session past its expiry; returns the next deadline.
    /// Sessions are found through the store's expiry index, so this reads
    /// only what is due.
    pub fn purge_expired_sessions(&self) -> Result<Option<i64>> {
        loop {
            let due = self.store().due_sessions(now_ms(), PURGE_BATCH)?;
            if due.due.is_empty() {
                return Ok(due.next);
            }
            let changes: Vec<Change> = due
                .due
                .into_iter()
                .map(|s| Change::DropSession {
                    id: s.id,
                    expires_at: s.expires_at,
                })
                .collect();
            self.store().commit(&changes)?;
            tracing::debug!(count = changes.len(), "expired sessions purged");
        }
    }
}

/// Argon2id hash of a random password, used only to spend the same time on
/// unknown usernames as on known ones.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$JVtCoRzZTeNpfG/7ZBnYtCgNvpbwoi7sncUT4u+VErI";

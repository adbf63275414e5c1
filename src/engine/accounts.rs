//! Local accounts and sessions. Passwords are kept only as Argon2id hashes;
//! session tokens only as SHA-256 digests, so a stolen data directory holds
//! no usable credential.

use super::{now_ms, random_bytes, Engine, Error, Result, User};
use crate::store::{get_json, tx_put_json};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Sessions last 30 days.
pub const SESSION_TTL_MS: i64 = 30 * 24 * 3600 * 1000;

#[derive(Serialize, Deserialize)]
struct UserRecord {
    username: String,
    provider: String,
    password_hash: String,
    created_at: i64,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct SessionRecord {
    pub(crate) user: User,
    expires_at: i64,
}

/// A new session: the token goes to the client once and is never stored.
pub struct NewSession {
    pub user: User,
    pub token: String,
}

/// Checks SPEC's username rule: 1–64 of `[A-Za-z0-9._-]`, not `anonymous`.
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

/// An Argon2id hash of `password` with a fresh salt, off the async threads.
pub(crate) async fn hash_password(password: &str) -> Result<String> {
    let password = password.to_string();
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::encode_b64(&random_bytes::<16>()).expect("16 bytes is a valid salt");
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
    })
    .await
    .map_err(|e| Error::Internal(e.to_string()))?
    .map_err(|e| Error::Internal(e.to_string()))
}

pub(crate) fn validate_password(password: &str) -> Result<()> {
    if password.len() < 8 || password.len() > 1024 {
        return Err(Error::bad("password must be 8 to 1024 bytes long"));
    }
    Ok(())
}

pub(crate) fn hash_token(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

impl Engine {
    /// Open registration from the web: refused when the operator closed it.
    pub async fn register(&self, username: &str, password: &str) -> Result<NewSession> {
        if !self.config().open_registration {
            return Err(Error::Forbidden("Registration is closed".into()));
        }
        let user = self.create_user(username, password).await?;
        self.new_session(user).await
    }

    /// Creates a local user (the CLI's `user add`, and registration).
    pub async fn create_user(&self, username: &str, password: &str) -> Result<User> {
        validate_username(username)?;
        validate_password(password)?;
        let user = User::local(username);
        // Cheap early answer; the transaction below re-checks atomically.
        if self.store().users.contains_key(user.id())? {
            return Err(Error::Conflict(format!("username {username} is taken")));
        }
        let hash = hash_password(password).await?;
        let record = UserRecord {
            username: user.username.clone(),
            provider: user.provider.clone(),
            password_hash: hash,
            created_at: now_ms(),
        };
        let id = user.id();
        self.store().write(|tx| {
            if tx.users.get(id.as_bytes())?.is_some() {
                return Err(sled::transaction::ConflictableTransactionError::Abort(
                    Error::Conflict(format!("username {} is taken", record.username)),
                ));
            }
            tx_put_json(tx.users, id.as_bytes(), &record)?;
            Ok(())
        })?;
        self.durable().await?;
        tracing::info!(user = %id, "user created");
        Ok(user)
    }

    /// True when `user` has an account here.
    pub fn user_exists(&self, user: &User) -> Result<bool> {
        Ok(self.store().users.contains_key(user.id())?)
    }

    /// Checks a password and opens a session.
    pub async fn login(&self, username: &str, password: &str) -> Result<NewSession> {
        let denied = || Error::Unauthorized("Wrong username or password".into());
        let user = User::local(username);
        let record: Option<UserRecord> = get_json(&self.store().users, user.id().as_bytes())?;
        // Verify against a fixed hash when the user is unknown, so that timing
        // does not tell which usernames exist.
        let known = record.is_some();
        let stored = record
            .map(|r| r.password_hash)
            .unwrap_or_else(|| DUMMY_HASH.to_string());
        let password = password.to_string();
        let ok = tokio::task::spawn_blocking(move || {
            PasswordHash::new(&stored)
                .map(|h| {
                    Argon2::default()
                        .verify_password(password.as_bytes(), &h)
                        .is_ok()
                })
                .unwrap_or(false)
        })
        .await
        .map_err(|e| Error::Internal(e.to_string()))?;
        if !(ok && known) {
            return Err(denied());
        }
        self.new_session(user).await
    }

    async fn new_session(&self, user: User) -> Result<NewSession> {
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<32>());
        let record = SessionRecord {
            user: user.clone(),
            expires_at: now_ms() + SESSION_TTL_MS,
        };
        let key = hash_token(&token);
        self.store().write(|tx| {
            tx_put_json(tx.sessions, &key, &record)?;
            Ok::<_, sled::transaction::ConflictableTransactionError<Error>>(())
        })?;
        self.durable().await?;
        Ok(NewSession { user, token })
    }

    /// The user behind a session token, if the session is live.
    pub fn session_user(&self, token: &str) -> Result<Option<User>> {
        let key = hash_token(token);
        let record: Option<SessionRecord> = get_json(&self.store().sessions, &key)?;
        match record {
            Some(s) if s.expires_at > now_ms() => Ok(Some(s.user)),
            Some(_) => {
                self.store().sessions.remove(&key)?;
                Ok(None)
            }
            None => Ok(None),
        }
    }

    /// Deletes a session server-side.
    pub async fn logout(&self, token: &str) -> Result<()> {
        let key = hash_token(token);
        self.store().write(|tx| {
            tx.sessions.remove(key.as_slice())?;
            Ok::<_, sled::transaction::ConflictableTransactionError<Error>>(())
        })?;
        self.durable().await
    }
}

/// Argon2id hash of a random password, used only to spend the same time on
/// unknown usernames as on known ones.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$JVtCoRzZTeNpfG/7ZBnYtCgNvpbwoi7sncUT4u+VErI";

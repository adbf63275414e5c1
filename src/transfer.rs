//! `keystrate export` and `keystrate import`: every record of a store as
//! versioned JSON Lines (the format is described in `docs/export.md`).
//!
//! The lines speak in the engine's record types and product terms, never in
//! sled keys or bytes, so the same file carries data between storage layouts
//! and backends. Indexes (a user's documents, invite expiry, key listings,
//! directory accounts and counts) are not exported: import rebuilds them.
//! Sessions are left out; logins start afresh.

use crate::directory::cacao::Cacao;
use crate::engine::documents::validate_doc_id;
use crate::engine::keys::{ACCOUNT_PREFIX, APP_PREFIX};
use crate::model::{Level, User};
use crate::store::schema::well_formed_invite_key;
use crate::store::{
    Acceptance, DocRecord, Encoded, IdentityRecord, InviteRecord, KeyRecord, Store, StoreError,
    StoredRecord, UserRecord,
};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::io::{BufRead, Write};

pub const FORMAT: &str = "keystrate-export";
pub const VERSION: u64 = 1;

/// The first line. It carries no time stamp, so that exporting the same
/// data twice gives the same bytes (a file's own time says when it was made).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    format: String,
    version: u64,
}

/// One record line. Times are milliseconds since the Unix epoch, as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "snake_case",
    rename_all_fields = "camelCase",
    deny_unknown_fields
)]
pub enum Record {
    User {
        username: String,
        provider: String,
        password_hash: String,
        created_at: i64,
    },
    Document {
        id: String,
        created_at: i64,
        created_by: User,
    },
    Permission {
        document: String,
        user: User,
        permissions: String,
    },
    Invite {
        document: String,
        key: String,
        permissions: String,
        created_at: i64,
        expires_at: i64,
        created_by: User,
        max_uses: Option<u64>,
        accepted_by: Vec<Acceptance>,
    },
    Key {
        id: String,
        document: Option<String>,
        owner: User,
        name: String,
        secret: String,
        created_at: i64,
        last_used_at: Option<i64>,
    },
    Identity {
        identity_key: String,
        account: String,
        // Boxed: a CACAO is several times the size of any other record.
        cacao: Box<Cacao>,
    },
    InviteKey {
        account: String,
        invite_key: String,
    },
    Revocation {
        identity_key: String,
        revoked_at: i64,
    },
}

/// Writes the header and every record of `store`: by type, then in storage
/// key order, so the same data always gives the same lines.
pub fn export(store: &Store, out: &mut dyn Write) -> Result<(), StoreError> {
    let header = Header {
        format: FORMAT.into(),
        version: VERSION,
    };
    write_line(out, &header)?;
    store.each_record(|record| write_line(out, &Record::from_stored(record)?))?;
    out.flush().map_err(write_failed)
}

impl Record {
    /// The line of a stored record.
    fn from_stored(record: StoredRecord) -> Result<Record, StoreError> {
        Ok(match record {
            StoredRecord::User(user) => Record::User {
                username: user.username,
                provider: user.provider,
                password_hash: user.password_hash,
                created_at: user.created_at,
            },
            StoredRecord::Document { id, record } => Record::Document {
                id,
                created_at: record.created_at,
                created_by: record.created_by,
            },
            StoredRecord::Permission { doc, user, level } => Record::Permission {
                document: doc,
                user,
                permissions: level.as_str().to_string(),
            },
            StoredRecord::Invite(invite) => Record::Invite {
                document: invite.doc,
                key: invite.key,
                permissions: invite.permissions,
                created_at: invite.created_at,
                expires_at: invite.expires_at,
                created_by: invite.created_by,
                max_uses: invite.max_uses,
                accepted_by: invite.accepted_by,
            },
            StoredRecord::Key(key) => Record::Key {
                id: key.id,
                document: key.doc,
                owner: key.owner,
                name: key.name,
                secret: key.secret,
                created_at: key.created_at,
                last_used_at: key.last_used_at,
            },
            StoredRecord::Identity {
                identity_key,
                record,
                ..
            } => {
                let identity: IdentityRecord<Cacao> = record.decode("identity")?;
                Record::Identity {
                    identity_key,
                    account: identity.account,
                    cacao: Box::new(identity.cacao),
                }
            }
            StoredRecord::InviteKey {
                account,
                invite_key,
            } => Record::InviteKey {
                account,
                invite_key,
            },
            StoredRecord::Revocation { identity_key, at } => Record::Revocation {
                identity_key,
                revoked_at: at,
            },
        })
    }

    /// The stored record of a checked line.
    fn into_stored(self) -> StoredRecord {
        match self {
            Record::User {
                username,
                provider,
                password_hash,
                created_at,
            } => StoredRecord::User(UserRecord {
                username,
                provider,
                password_hash,
                created_at,
            }),
            Record::Document {
                id,
                created_at,
                created_by,
            } => StoredRecord::Document {
                id,
                record: DocRecord {
                    created_at,
                    created_by,
                },
            },
            Record::Permission {
                document,
                user,
                permissions,
            } => StoredRecord::Permission {
                doc: document,
                user,
                level: Level::parse(&permissions).expect("checked by read"),
            },
            Record::Invite {
                document,
                key,
                permissions,
                created_at,
                expires_at,
                created_by,
                max_uses,
                accepted_by,
            } => StoredRecord::Invite(InviteRecord {
                key,
                doc: document,
                permissions,
                created_at,
                expires_at,
                created_by,
                max_uses,
                accepted_by,
            }),
            Record::Key {
                id,
                document,
                owner,
                name,
                secret,
                created_at,
                last_used_at,
            } => StoredRecord::Key(KeyRecord {
                id,
                doc: document,
                owner,
                name,
                secret,
                created_at,
                last_used_at,
            }),
            Record::Identity {
                identity_key,
                account,
                cacao,
            } => StoredRecord::Identity {
                identity_key,
                record: Encoded::of(&IdentityRecord {
                    account: account.clone(),
                    cacao: *cacao,
                }),
                account,
            },
            Record::InviteKey {
                account,
                invite_key,
            } => StoredRecord::InviteKey {
                account,
                invite_key,
            },
            Record::Revocation {
                identity_key,
                revoked_at,
            } => StoredRecord::Revocation {
                identity_key,
                at: revoked_at,
            },
        }
    }
}

fn write_line(out: &mut dyn Write, value: &impl Serialize) -> Result<(), StoreError> {
    let mut bytes = serde_json::to_vec(value).expect("records always serialise");
    bytes.push(b'\n');
    out.write_all(&bytes).map_err(write_failed)
}

fn write_failed(e: std::io::Error) -> StoreError {
    StoreError::io("write", std::path::Path::new("the export"), e)
}

/// Reads and checks a whole export: the header, then one record per line.
/// The first problem is reported with its line number; nothing is returned
/// unless every line is good, so an import writes nothing from a bad file.
pub fn read(input: impl BufRead) -> Result<Vec<Record>, String> {
    let mut records = Vec::new();
    let mut seen = HashSet::new();
    let mut header_seen = false;
    for (index, line) in input.lines().enumerate() {
        let number = index + 1;
        let at = |e: String| format!("line {number}: {e}");
        let line = line.map_err(|e| at(format!("cannot read: {e}")))?;
        if !header_seen {
            let header: Header = serde_json::from_str(&line)
                .map_err(|e| at(format!("not a keystrate export header: {e}")))?;
            if header.format != FORMAT {
                return Err(at(format!("format {:?} is not {FORMAT:?}", header.format)));
            }
            if header.version != VERSION {
                return Err(at(format!(
                    "export version {} is not the version {VERSION} this build reads",
                    header.version
                )));
            }
            header_seen = true;
            continue;
        }
        let record: Record = serde_json::from_str(&line).map_err(|e| at(e.to_string()))?;
        check(&record).map_err(at)?;
        if !seen.insert(identity_of(&record)) {
            return Err(at("a record with the same key appears earlier".into()));
        }
        records.push(record);
    }
    if !header_seen {
        return Err("the input is empty: no keystrate export header".into());
    }
    Ok(records)
}

/// What makes two records the same one (the key they would be stored under).
fn identity_of(record: &Record) -> (u8, String, String) {
    match record {
        Record::User {
            username, provider, ..
        } => (0, username.clone(), provider.clone()),
        Record::Document { id, .. } => (1, id.clone(), String::new()),
        Record::Permission { document, user, .. } => (2, document.clone(), user.id()),
        Record::Invite { document, key, .. } => (3, document.clone(), key.clone()),
        Record::Key { id, .. } => (4, id.clone(), String::new()),
        Record::Identity { identity_key, .. } => (5, identity_key.clone(), String::new()),
        Record::InviteKey { account, .. } => (6, account.clone(), String::new()),
        Record::Revocation { identity_key, .. } => (7, identity_key.clone(), String::new()),
    }
}

/// The rules a record must meet to be stored and read back: what the
/// storage keys need (no NUL, a `:`-free username, hex invite keys) and
/// what the engine relies on (levels, key id prefixes).
fn check(record: &Record) -> Result<(), String> {
    let user_ok = |user: &User, what: &str| {
        if user.username.is_empty() || user.username.contains([':', '\0']) {
            Err(format!("{what}: username must be non-empty, without ':'"))
        } else if user.provider.contains('\0') {
            Err(format!("{what}: provider holds a NUL character"))
        } else {
            Ok(())
        }
    };
    let doc_ok = |doc: &str| validate_doc_id(doc).map_err(|e| e.to_string());
    let level_ok = |p: &str| match Level::parse(p) {
        Ok(Level::None) | Err(_) => Err(format!("permissions {p:?} are not r, rw or arw")),
        Ok(_) => Ok(()),
    };
    let did_ok = |k: &str, what: &str| {
        if k.starts_with("did:key:") && !k.contains('\0') {
            Ok(())
        } else {
            Err(format!("{what} {k:?} is not a did:key"))
        }
    };
    let account_ok = |account: &str, what: &str| {
        if account.is_empty() || account.contains('\0') {
            Err(format!("{what}: empty account"))
        } else {
            Ok(())
        }
    };
    match record {
        Record::User {
            username,
            provider,
            password_hash,
            ..
        } => {
            user_ok(
                &User {
                    username: username.clone(),
                    provider: provider.clone(),
                },
                "user",
            )?;
            if password_hash.is_empty() {
                return Err("user: empty password hash".into());
            }
            Ok(())
        }
        Record::Document { id, created_by, .. } => {
            doc_ok(id)?;
            user_ok(created_by, "createdBy")
        }
        Record::Permission {
            document,
            user,
            permissions,
        } => {
            doc_ok(document)?;
            if !user.is_anonymous() {
                user_ok(user, "user")?;
            }
            level_ok(permissions)
        }
        Record::Invite {
            document,
            key,
            permissions,
            created_by,
            accepted_by,
            ..
        } => {
            doc_ok(document)?;
            if !well_formed_invite_key(key) {
                return Err("invite key must be 64 lowercase hex characters".into());
            }
            level_ok(permissions)?;
            user_ok(created_by, "createdBy")?;
            accepted_by
                .iter()
                .try_for_each(|a| user_ok(&a.user, "acceptedBy"))
        }
        Record::Key {
            id,
            document,
            owner,
            ..
        } => {
            let kind_ok = match document {
                Some(doc) => {
                    doc_ok(doc)?;
                    id.starts_with(APP_PREFIX)
                }
                None => id.starts_with(ACCOUNT_PREFIX),
            };
            if !kind_ok || id.contains('\0') {
                return Err(format!(
                    "key id {id:?} must start with {APP_PREFIX} (with a document) or {ACCOUNT_PREFIX} (without)"
                ));
            }
            user_ok(owner, "owner")
        }
        Record::Identity {
            identity_key,
            account,
            ..
        } => {
            did_ok(identity_key, "identityKey")?;
            account_ok(account, "identity")
        }
        Record::InviteKey {
            account,
            invite_key,
        } => {
            did_ok(invite_key, "inviteKey")?;
            account_ok(account, "invite_key")
        }
        Record::Revocation { identity_key, .. } => did_ok(identity_key, "identityKey"),
    }
}

/// Writes checked records (from [`read`]) into an empty store, rebuilding
/// every index, and flushes (see [`Store::import`]: a crash half way leaves
/// a store the server refuses to start on).
pub fn import(store: &Store, records: &[Record]) -> Result<(), String> {
    let stored: Vec<StoredRecord> = records.iter().cloned().map(Record::into_stored).collect();
    store.import(&stored, b"").map_err(|e| match e {
        crate::store::CommitError::Store(StoreError::Unusable(text)) => text,
        e => e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "{\"format\":\"keystrate-export\",\"version\":1}\n";

    fn read_text(text: &str) -> Result<Vec<Record>, String> {
        read(text.as_bytes())
    }

    #[test]
    fn a_record_line_reads_back_to_the_same_line() {
        let line = r#"{"type":"permission","document":"doc1","user":{"username":"anonymous","provider":""},"permissions":"r"}"#;
        let records = read_text(&format!("{HEADER}{line}\n")).unwrap();
        assert_eq!(serde_json::to_string(&records[0]).unwrap(), line);
    }

    #[test]
    fn unknown_fields_and_types_are_refused_with_their_line() {
        for (line, message) in [
            (
                r#"{"type":"invite_key","account":"eip155:1:0xab","inviteKey":"did:key:z6LS","extra":1}"#,
                "unknown field `extra`",
            ),
            (
                r#"{"type":"session","id":"x"}"#,
                "unknown variant `session`",
            ),
            (
                r#"{"type":"permission","document":"doc1","user":{"username":"bob","provider":"local"},"permissions":""}"#,
                "are not r, rw or arw",
            ),
            (
                r#"{"type":"key","id":"act_1","document":"doc1","owner":{"username":"bob","provider":"local"},"name":"n","secret":"s","createdAt":1,"lastUsedAt":null}"#,
                "must start with app_",
            ),
        ] {
            let error = read_text(&format!("{HEADER}{line}\n")).unwrap_err();
            assert!(error.starts_with("line 2: "), "{error}");
            assert!(error.contains(message), "{error}");
        }
    }
}

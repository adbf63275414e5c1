//! `keystrate export` and `keystrate import`: every record of a store as
//! versioned JSON Lines (the format is described in `docs/export.md`).
//!
//! The lines speak in the engine's record types and product terms, never in
//! sled keys or bytes, so the same file carries data between storage layouts
//! and backends. Indexes (a user's documents, invite expiry, key listings,
//! directory accounts and counts) are not exported: import rebuilds them.
//! Sessions are left out; logins start afresh.

use crate::engine::accounts::UserRecord;
use crate::engine::directory::{self, cacao::Cacao, IdentityRecord};
use crate::engine::documents::{tx_set_entry, user_from_id, validate_doc_id, DocRecord};
use crate::engine::invites::{
    read_record, tx_put_invite, well_formed_key, Acceptance, InviteRecord,
};
use crate::engine::keys::{KeyRecord, ACCOUNT_PREFIX, APP_PREFIX};
use crate::engine::{Level, User};
use crate::store::{decode, tx_put_json, Store, StoreError, SEP};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
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
    each_record(&store.db, InviteLayout::BytesUnderDoc, |record| {
        write_line(out, &record)
    })?;
    out.flush().map_err(write_failed)
}

/// Where a storage layout keeps an invite's document and key. Everything
/// else is stored alike in layouts 1 to 3, so one reader serves them all
/// (the layout migration reads old stores with it).
#[derive(Debug, Clone, Copy)]
pub(crate) enum InviteLayout {
    /// Layout 1: `invite key (hex)` → the record, which holds both.
    KeyOnly,
    /// Layout 2: `doc \0 invite key (hex)`.
    HexUnderDoc,
    /// Layout 3: `doc \0 <invite key's 32 bytes>`.
    BytesUnderDoc,
}

/// A layout 1 invite: its key and document inside the stored JSON.
#[derive(Deserialize)]
struct SelfNamedInvite {
    key: String,
    doc: String,
    #[serde(flatten)]
    rest: InviteRecord,
}

fn read_invite(layout: InviteLayout, key: &[u8], bytes: &[u8]) -> Result<InviteRecord, StoreError> {
    match layout {
        InviteLayout::BytesUnderDoc => read_record(key, bytes),
        InviteLayout::HexUnderDoc => {
            let split = key
                .iter()
                .position(|b| *b == SEP)
                .ok_or_else(|| corrupt("invite"))?;
            let mut invite: InviteRecord = decode(bytes)?;
            invite.doc = utf8(&key[..split])?;
            invite.key = utf8(&key[split + 1..])?;
            Ok(invite)
        }
        InviteLayout::KeyOnly => {
            let named: SelfNamedInvite = decode(bytes)?;
            Ok(InviteRecord {
                key: named.key,
                doc: named.doc,
                ..named.rest
            })
        }
    }
}

/// Hands every record of `db` to `emit`: by type, then in storage key order.
pub(crate) fn each_record(
    db: &sled::Db,
    invites: InviteLayout,
    mut emit: impl FnMut(Record) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let tree = |name: &str| db.open_tree(name);
    for item in tree("users")?.iter() {
        let (_, bytes) = item?;
        let user: UserRecord = decode(&bytes)?;
        emit(Record::User {
            username: user.username,
            provider: user.provider,
            password_hash: user.password_hash,
            created_at: user.created_at,
        })?;
    }
    for item in tree("docs")?.iter() {
        let (id, bytes) = item?;
        let doc: DocRecord = decode(&bytes)?;
        emit(Record::Document {
            id: utf8(&id)?,
            created_at: doc.created_at,
            created_by: doc.created_by,
        })?;
    }
    for item in tree("perms")?.iter() {
        let (key, level) = item?;
        let split = key
            .iter()
            .position(|b| *b == SEP)
            .ok_or_else(|| corrupt("permission"))?;
        emit(Record::Permission {
            document: utf8(&key[..split])?,
            user: user_from_id(&key[split + 1..]).ok_or_else(|| corrupt("permission"))?,
            permissions: utf8(&level)?,
        })?;
    }
    for item in tree("invites")?.iter() {
        let (key, bytes) = item?;
        let invite = read_invite(invites, &key, &bytes)?;
        emit(Record::Invite {
            document: invite.doc,
            key: invite.key,
            permissions: invite.permissions,
            created_at: invite.created_at,
            expires_at: invite.expires_at,
            created_by: invite.created_by,
            max_uses: invite.max_uses,
            accepted_by: invite.accepted_by,
        })?;
    }
    for item in tree("keys")?.iter() {
        let (_, bytes) = item?;
        let key: KeyRecord = decode(&bytes)?;
        emit(Record::Key {
            id: key.id,
            document: key.doc,
            owner: key.owner,
            name: key.name,
            secret: key.secret,
            created_at: key.created_at,
            last_used_at: key.last_used_at,
        })?;
    }
    for item in tree(directory::IDENTITIES)?.iter() {
        let (identity_key, bytes) = item?;
        let identity: IdentityRecord = decode(&bytes)?;
        emit(Record::Identity {
            identity_key: utf8(&identity_key)?,
            account: identity.account,
            cacao: Box::new(identity.cacao),
        })?;
    }
    for item in tree(directory::INVITE_KEYS)?.iter() {
        let (account, invite_key) = item?;
        emit(Record::InviteKey {
            account: utf8(&account)?,
            invite_key: utf8(&invite_key)?,
        })?;
    }
    for item in tree(directory::REVOCATIONS)?.iter() {
        let (identity_key, at) = item?;
        let at: [u8; 8] = at.as_ref().try_into().map_err(|_| corrupt("revocation"))?;
        emit(Record::Revocation {
            identity_key: utf8(&identity_key)?,
            revoked_at: i64::from_be_bytes(at),
        })?;
    }
    Ok(())
}

fn write_line(out: &mut dyn Write, value: &impl Serialize) -> Result<(), StoreError> {
    let mut bytes = serde_json::to_vec(value).expect("records always serialise");
    bytes.push(b'\n');
    out.write_all(&bytes).map_err(write_failed)
}

fn write_failed(e: std::io::Error) -> StoreError {
    StoreError(format!("cannot write the export: {e}"))
}

fn utf8(bytes: &[u8]) -> Result<String, StoreError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| StoreError("stored key is not UTF-8".into()))
}

fn corrupt(what: &str) -> StoreError {
    StoreError(format!("corrupt {what} record"))
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
            if !well_formed_key(key) {
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

/// Marks a store whose import has not finished; [`Store::open`] refuses it.
pub const IMPORT_MARK: &[u8] = b"keystrate-import-in-progress";

/// True when nothing but the layout mark is stored.
pub fn is_empty(store: &Store) -> Result<bool, StoreError> {
    for name in store.db.tree_names() {
        let tree = store.db.open_tree(&name)?;
        let empty = if name == b"__sled__default" {
            tree.iter()
                .keys()
                .all(|k| k.is_ok_and(|k| k == crate::store::LAYOUT_KEY))
        } else {
            tree.is_empty()
        };
        if !empty {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Most records written per transaction.
const BATCH: usize = 1000;

/// Writes checked records (from [`read`]) into an empty store, rebuilding
/// every index, and flushes. The store is marked "import in progress" until
/// the last write is flushed, so a crash half way leaves a store the server
/// refuses to start on (and the next import refuses as not empty).
pub fn import(store: &Store, records: &[Record]) -> Result<(), String> {
    import_marked(store, records, b"")
}

/// [`import`], with `note` kept in the mark: what [`Store::open`] adds to
/// its refusal should the import not finish.
pub(crate) fn import_marked(store: &Store, records: &[Record], note: &[u8]) -> Result<(), String> {
    let failed = |e: StoreError| e.to_string();
    if !is_empty(store).map_err(failed)? {
        return Err("the store is not empty; import only into a new data directory".into());
    }
    store
        .db
        .insert(IMPORT_MARK, note)
        .map_err(|e| e.to_string())?;
    store.flush_now().map_err(failed)?;
    for batch in records.chunks(BATCH) {
        store
            .write(|tx| {
                for record in batch {
                    put(tx, record)?;
                }
                Ok::<_, sled::transaction::ConflictableTransactionError<StoreError>>(())
            })
            .map_err(failed)?;
    }
    put_directory(store, records).map_err(failed)?;
    store.flush_now().map_err(failed)?;
    store.db.remove(IMPORT_MARK).map_err(|e| e.to_string())?;
    store.flush_now().map_err(failed)
}

fn put(
    tx: &crate::store::Tx,
    record: &Record,
) -> Result<(), sled::transaction::ConflictableTransactionError<StoreError>> {
    match record.clone() {
        Record::User {
            username,
            provider,
            password_hash,
            created_at,
        } => {
            let id = User {
                username: username.clone(),
                provider: provider.clone(),
            }
            .id();
            let user = UserRecord {
                username,
                provider,
                password_hash,
                created_at,
            };
            tx_put_json(tx.users, id.as_bytes(), &user)?;
        }
        Record::Document {
            id,
            created_at,
            created_by,
        } => {
            let doc = DocRecord {
                created_at,
                created_by,
            };
            tx_put_json(tx.docs, id.as_bytes(), &doc)?;
        }
        Record::Permission {
            document,
            user,
            permissions,
        } => {
            let level = Level::parse(&permissions).expect("checked by read");
            tx_set_entry(tx, &document, &user, level)?;
        }
        Record::Invite {
            document,
            key,
            permissions,
            created_at,
            expires_at,
            created_by,
            max_uses,
            accepted_by,
        } => {
            let invite = InviteRecord {
                key,
                doc: document,
                permissions,
                created_at,
                expires_at,
                created_by,
                max_uses,
                accepted_by,
            };
            tx_put_invite(tx, &invite)?;
        }
        Record::Key {
            id,
            document,
            owner,
            name,
            secret,
            created_at,
            last_used_at,
        } => {
            let key = KeyRecord {
                id,
                doc: document,
                owner,
                name,
                secret,
                created_at,
                last_used_at,
            };
            tx_put_json(tx.keys, key.id.as_bytes(), &key)?;
            tx.key_index.insert(key.index_key(), &[])?;
        }
        Record::Identity { .. } | Record::InviteKey { .. } | Record::Revocation { .. } => {}
    }
    Ok(())
}

/// The directory's trees, with each account's key index and count rebuilt
/// from its identities.
fn put_directory(store: &Store, records: &[Record]) -> Result<(), StoreError> {
    let tree = |name: &str| store.db.open_tree(name);
    let (identities, account_keys, counts, invite_keys, revocations) = (
        tree(directory::IDENTITIES)?,
        tree(directory::ACCOUNT_KEYS)?,
        tree(directory::ACCOUNT_COUNTS)?,
        tree(directory::INVITE_KEYS)?,
        tree(directory::REVOCATIONS)?,
    );
    let mut per_account: BTreeMap<&str, u32> = BTreeMap::new();
    for record in records {
        match record {
            Record::Identity {
                identity_key,
                account,
                cacao,
            } => {
                let identity = IdentityRecord {
                    account: account.clone(),
                    cacao: (**cacao).clone(),
                };
                let bytes = serde_json::to_vec(&identity).expect("records always serialise");
                identities.insert(identity_key.as_bytes(), bytes)?;
                account_keys.insert(directory::index_key(account.as_bytes(), identity_key), &[])?;
                *per_account.entry(account).or_default() += 1;
            }
            Record::InviteKey {
                account,
                invite_key,
            } => {
                invite_keys.insert(account.as_bytes(), invite_key.as_bytes())?;
            }
            Record::Revocation {
                identity_key,
                revoked_at,
            } => {
                revocations.insert(identity_key.as_bytes(), &revoked_at.to_be_bytes())?;
            }
            _ => {}
        }
    }
    for (account, count) in per_account {
        counts.insert(account.as_bytes(), &directory::count_bytes(count))?;
    }
    Ok(())
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

//! Options of the invite and permission requests, read with serde into
//! typed structs where a request enters: a WebSocket frame's `options`, or
//! the query string and body of an HTTP route. Each field carries its own
//! rule and message (`deserialize_with`); [`read_options`] adds the rules for the
//! object as a whole. The engine only ever sees the typed result.
//!
//! Numbers may also be strings of digits: query strings and forms have no
//! other way to send them.

use super::invites::well_formed_key;
use super::{Error, Level, Result, User};
use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

pub const DEFAULT_MAX_AGE: i64 = 604_800;
pub const MAX_MAX_AGE: i64 = 2_592_000;
pub const MAX_MAX_USES: u64 = 1_000_000;
/// Most invites in one `getInvites` reply; more come by paging with `after`.
pub const MAX_LISTED: usize = 1_000;

/// A set of options a request takes.
pub trait OptionSet: DeserializeOwned {
    /// The names it takes, when others are refused; `None` ignores other
    /// names (Webstrates clients may send fields of their own).
    const ONLY: Option<&'static [&'static str]>;
}

/// Reads a request's options: absent or null means none given, anything
/// but an object is refused.
pub fn read_options<T: OptionSet>(options: Value) -> Result<T> {
    read_options_beside(options, &[])
}

/// As [`read_options`], for a route that takes options of its own (`also`, already
/// taken out of `options`): an unknown option's message lists them too.
pub fn read_options_beside<T: OptionSet>(options: Value, also: &[&str]) -> Result<T> {
    let options = match options {
        Value::Null => Map::new(),
        Value::Object(map) => map,
        _ => return Err(Error::bad("options must be an object")),
    };
    if let Some(only) = T::ONLY {
        if let Some(other) = options
            .keys()
            .find(|name| !only.iter().any(|known| known == name))
        {
            let known = only.iter().chain(also).copied().collect::<Vec<_>>();
            return Err(Error::bad(format!(
                "unknown option {other:?}; options are {}",
                known.join(", ")
            )));
        }
    }
    // Deserialising from a `Value` puts no position in the message: it is
    // the field's own sentence.
    T::deserialize(Value::Object(options)).map_err(|e| Error::BadRequest(e.to_string()))
}

/// Options of `createInvite`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct CreateOptions {
    #[serde(deserialize_with = "grant")]
    pub permissions: Level,
    /// Seconds until the invite expires.
    #[serde(deserialize_with = "max_age")]
    pub max_age: i64,
    /// Most users who may accept it; `None` is no limit.
    #[serde(deserialize_with = "max_uses")]
    pub max_uses: Option<u64>,
}

impl Default for CreateOptions {
    fn default() -> Self {
        CreateOptions {
            permissions: Level::Read,
            max_age: DEFAULT_MAX_AGE,
            max_uses: None,
        }
    }
}

impl OptionSet for CreateOptions {
    /// A misspelt option silently falling back to a default would surprise.
    const ONLY: Option<&'static [&'static str]> = Some(&["permissions", "maxAge", "maxUses"]);
}

/// A permission an invite grants: at least one letter.
fn grant<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Level, D::Error> {
    let Value::String(text) = Value::deserialize(d)? else {
        return Err(D::Error::custom(
            "permissions must be a string such as \"r\", \"rw\" or \"arw\"",
        ));
    };
    match Level::parse(&text).map_err(D::Error::custom)? {
        Level::None => Err(D::Error::custom(
            "permissions must grant at least one of \"r\", \"w\", \"a\"",
        )),
        level => Ok(level),
    }
}

fn max_age<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<i64, D::Error> {
    let age = bounded(d, 1..=MAX_MAX_AGE as u64, || {
        format!("maxAge must be an integer from 1 to {MAX_MAX_AGE}")
    })?;
    Ok(age.map_or(DEFAULT_MAX_AGE, |n| n as i64))
}

fn max_uses<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<u64>, D::Error> {
    bounded(d, 1..=MAX_MAX_USES, || {
        format!("maxUses must be null or an integer from 1 to {MAX_MAX_USES}")
    })
}

/// A whole number in `range` (a JSON integer or a string of digits), or
/// `None` for null; anything else is refused with `rule`.
fn bounded<'de, D: Deserializer<'de>>(
    d: D,
    range: std::ops::RangeInclusive<u64>,
    rule: impl Fn() -> String,
) -> std::result::Result<Option<u64>, D::Error> {
    let value = Value::deserialize(d)?;
    if value.is_null() {
        return Ok(None);
    }
    let n = match &value {
        Value::Number(n) => n.as_u64(),
        Value::String(s)
            if !s.is_empty() && s.len() <= 18 && s.bytes().all(|b| b.is_ascii_digit()) =>
        {
            s.parse().ok()
        }
        _ => None,
    };
    n.filter(|n| range.contains(n))
        .map(Some)
        .ok_or_else(|| D::Error::custom(rule()))
}

/// Options of `getInvites`: whose invites, how many, and from where.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct ListOptions {
    /// Every admin's invites, not only the caller's.
    #[serde(deserialize_with = "all")]
    pub all: bool,
    /// Most invites in the reply, 1 to [`MAX_LISTED`].
    #[serde(deserialize_with = "limit")]
    pub limit: usize,
    /// Only invites after this one in the listing's order.
    pub after: Option<Cursor>,
}

impl Default for ListOptions {
    fn default() -> Self {
        ListOptions {
            all: false,
            limit: MAX_LISTED,
            after: None,
        }
    }
}

impl OptionSet for ListOptions {
    /// Webstrates clients may send fields of their own.
    const ONLY: Option<&'static [&'static str]> = None;
}

/// A boolean or, from a query string, `true`/`false`/`1`/`0`.
fn all<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<bool, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(false),
        Value::Bool(b) => Ok(b),
        Value::String(s) if s == "true" || s == "1" => Ok(true),
        Value::String(s) if s == "false" || s == "0" => Ok(false),
        _ => Err(D::Error::custom("all must be true or false")),
    }
}

fn limit<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<usize, D::Error> {
    let limit = bounded(d, 1..=MAX_LISTED as u64, || {
        format!("limit must be an integer from 1 to {MAX_LISTED}")
    })?;
    Ok(limit.map_or(MAX_LISTED, |n| n as usize))
}

/// A place in a listing, which is ordered by creation time, then key. Read
/// from the last invite of the previous page (the object itself, or its
/// `createdAt` and `key`) or from the `next` cursor of an HTTP listing.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cursor(pub(crate) i64, pub(crate) String);

impl Cursor {
    fn from_json(v: &Value) -> Option<Cursor> {
        let (ms, key) = match v {
            Value::Object(o) => {
                let at = o.get("createdAt")?.as_str()?;
                let at = chrono::DateTime::parse_from_rfc3339(at).ok()?;
                (at.timestamp_millis(), o.get("key")?.as_str()?)
            }
            Value::String(s) => {
                let (ms, key) = s.split_once('-')?;
                (ms.parse().ok()?, key)
            }
            _ => return None,
        };
        well_formed_key(key).then(|| Cursor(ms, key.to_string()))
    }
}

impl<'de> Deserialize<'de> for Cursor {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Cursor::from_json(&Value::deserialize(d)?).ok_or_else(|| {
            D::Error::custom(
                "after must be the last invite of the previous page (its createdAt and key) or a next cursor",
            )
        })
    }
}

/// The `next` cursor of an HTTP listing: `<createdAt ms>-<key>`.
impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.0, self.1)
    }
}

/// The `key` option of `checkInvite`, `acceptInvite` and `removeInvite`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "KeyWire")]
pub struct KeyOption {
    pub key: String,
}

/// [`KeyOption`] as sent: a missing key is refused with the same sentence
/// as a key of the wrong type.
#[derive(Deserialize)]
struct KeyWire {
    #[serde(default)]
    key: Value,
}

impl TryFrom<KeyWire> for KeyOption {
    type Error = &'static str;

    fn try_from(wire: KeyWire) -> std::result::Result<Self, Self::Error> {
        match wire.key {
            Value::String(key) => Ok(KeyOption { key }),
            _ => Err("key must be a string"),
        }
    }
}

impl OptionSet for KeyOption {
    const ONLY: Option<&'static [&'static str]> = None;
}

/// The options of `setPermissions`: whose entry becomes what.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "PermissionWire")]
pub struct PermissionChange {
    /// A user, or the anonymous entry.
    pub target: User,
    /// [`Level::None`] removes the entry.
    pub level: Level,
}

/// [`PermissionChange`] as sent.
#[derive(Deserialize)]
struct PermissionWire {
    #[serde(default, deserialize_with = "username")]
    username: Option<String>,
    /// `"local"` when absent; `""` with `anonymous` names the anonymous entry.
    #[serde(default, deserialize_with = "provider")]
    provider: Option<String>,
    /// `""` removes the entry.
    #[serde(default, deserialize_with = "permissions")]
    permissions: Option<String>,
}

impl TryFrom<PermissionWire> for PermissionChange {
    type Error = String;

    fn try_from(wire: PermissionWire) -> std::result::Result<Self, Self::Error> {
        let username = wire.username.ok_or("username is required")?;
        let permissions = wire
            .permissions
            .ok_or("permissions is required (\"\" removes the entry)")?;
        let level = Level::parse(&permissions)?;
        let target = match (username.as_str(), wire.provider.as_deref()) {
            ("anonymous", None | Some("")) => User::anonymous(),
            (_, provider) => User {
                provider: provider.unwrap_or("local").to_string(),
                username,
            },
        };
        Ok(PermissionChange { target, level })
    }
}

impl OptionSet for PermissionChange {
    const ONLY: Option<&'static [&'static str]> = None;
}

fn username<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<String>, D::Error> {
    text(d, "username")
}

fn provider<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<String>, D::Error> {
    text(d, "provider")
}

fn permissions<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<String>, D::Error> {
    text(d, "permissions")
}

/// A string, or `None` for null.
fn text<'de, D: Deserializer<'de>>(
    d: D,
    name: &str,
) -> std::result::Result<Option<String>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s)),
        _ => Err(D::Error::custom(format!("{name} must be a string"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn message<T: OptionSet + std::fmt::Debug>(options: Value) -> String {
        read_options::<T>(options).unwrap_err().to_string()
    }

    #[test]
    fn create_options_default_and_read_digit_strings() {
        assert_eq!(
            read_options::<CreateOptions>(Value::Null).unwrap(),
            CreateOptions::default()
        );
        let read = read_options::<CreateOptions>(
            json!({"permissions": "wr", "maxAge": "60", "maxUses": null}),
        )
        .unwrap();
        assert_eq!(
            read,
            CreateOptions {
                permissions: Level::Write,
                max_age: 60,
                max_uses: None
            }
        );
    }

    #[test]
    fn every_name_a_set_lists_is_one_it_reads() {
        for name in CreateOptions::ONLY.unwrap() {
            let options = json!({ *name: null });
            let result = read_options::<CreateOptions>(options);
            assert!(
                !result.is_err_and(|e| e.to_string().starts_with("unknown option")),
                "{name}"
            );
        }
    }

    #[test]
    fn unknown_create_options_name_every_option_the_route_takes() {
        assert_eq!(
            read_options_beside::<CreateOptions>(json!({"maxage": 5}), &["redirect"])
                .unwrap_err()
                .to_string(),
            "unknown option \"maxage\"; options are permissions, maxAge, maxUses, redirect"
        );
        assert_eq!(
            message::<CreateOptions>(json!([1])),
            "options must be an object"
        );
    }

    #[test]
    fn list_options_ignore_other_names_and_check_their_own() {
        assert_eq!(
            read_options::<ListOptions>(json!({"all": "1", "limit": "5", "extra": true})).unwrap(),
            ListOptions {
                all: true,
                limit: 5,
                after: None
            }
        );
        assert_eq!(
            message::<ListOptions>(json!({"limit": 0})),
            "limit must be an integer from 1 to 1000"
        );
        assert_eq!(
            message::<ListOptions>(json!({"all": "yes"})),
            "all must be true or false"
        );
        let key = "ab".repeat(32);
        let after = read_options::<ListOptions>(json!({"after": format!("17-{key}")}))
            .unwrap()
            .after;
        assert_eq!(after, Some(Cursor(17, key.clone())));
        let after = read_options::<ListOptions>(
            json!({"after": {"createdAt": "1970-01-01T00:00:00.017Z", "key": key}}),
        )
        .unwrap()
        .after;
        assert_eq!(after, Some(Cursor(17, key)));
        assert!(message::<ListOptions>(json!({"after": "17-nothex"})).starts_with("after must"));
    }

    #[test]
    fn key_options_must_be_strings() {
        assert_eq!(
            read_options::<KeyOption>(json!({"key": "k"})).unwrap().key,
            "k".to_string()
        );
        for bad in [Value::Null, json!({}), json!({"key": 5})] {
            assert_eq!(message::<KeyOption>(bad), "key must be a string");
        }
    }

    #[test]
    fn permission_changes_name_their_target() {
        let change: PermissionChange =
            read_options(json!({"username": "anonymous", "permissions": "r"})).unwrap();
        assert_eq!(
            (change.target, change.level),
            (User::anonymous(), Level::Read)
        );
        let change: PermissionChange =
            read_options(json!({"username": "bob", "permissions": ""})).unwrap();
        assert_eq!(
            (change.target, change.level),
            (User::local("bob"), Level::None)
        );
        for (bad, text) in [
            (json!({"username": 5}), "username must be a string"),
            (json!({"permissions": "r"}), "username is required"),
            (
                json!({"username": "bob"}),
                "permissions is required (\"\" removes the entry)",
            ),
            (
                json!({"username": "bob", "permissions": "x"}),
                "permissions must be letters from \"arw\", got \"x\"",
            ),
        ] {
            assert_eq!(message::<PermissionChange>(bad), text);
        }
    }
}

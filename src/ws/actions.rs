//! The actions of the WebSocket RPC: one typed variant per `wa`, read from
//! the frame by serde together with its options, and the engine call each
//! one makes. The reply value is serialised here; the frame is assembled
//! around that text (`protocol::reply`) without building a
//! `serde_json::Value` tree first.

use crate::engine::options::{
    read_options, CreateOptions, KeyOption, ListOptions, OptionSet, PermissionChange,
};
use crate::engine::{Caller, Engine, Error, Result, Task};
use serde::{Deserialize, Deserializer};
use serde_json::{json, Value};

/// A request's action, named by the frame's `wa`.
#[derive(Debug, Deserialize)]
#[serde(tag = "wa", rename_all = "camelCase")]
pub enum Action {
    CreateInvite {
        #[serde(default)]
        options: Options<CreateOptions>,
    },
    CheckInvite {
        #[serde(default)]
        options: Options<KeyOption>,
    },
    AcceptInvite {
        #[serde(default)]
        options: Options<KeyOption>,
    },
    GetInvites {
        #[serde(default)]
        options: Options<ListOptions>,
    },
    RemoveInvite {
        #[serde(default)]
        options: Options<KeyOption>,
    },
    GetPermissions,
    SetPermissions {
        #[serde(default)]
        options: Options<PermissionChange>,
    },
    /// Any other name: answered `unknown_action`, not as a malformed frame.
    #[serde(other)]
    Unknown,
}

impl Action {
    /// The `wa` of a known action, else `unknown` (a client may send any
    /// text): the metrics label.
    pub fn name(&self) -> &'static str {
        match self {
            Action::CreateInvite { .. } => "createInvite",
            Action::CheckInvite { .. } => "checkInvite",
            Action::AcceptInvite { .. } => "acceptInvite",
            Action::GetInvites { .. } => "getInvites",
            Action::RemoveInvite { .. } => "removeInvite",
            Action::GetPermissions => "getPermissions",
            Action::SetPermissions { .. } => "setPermissions",
            Action::Unknown => "unknown",
        }
    }

    /// Actions that only read storage and never wait for a flush.
    pub fn reads_only(&self) -> bool {
        matches!(
            self,
            Action::CheckInvite { .. } | Action::GetInvites { .. } | Action::GetPermissions
        )
    }

    fn handles_invites(&self) -> bool {
        matches!(
            self,
            Action::CreateInvite { .. }
                | Action::CheckInvite { .. }
                | Action::AcceptInvite { .. }
                | Action::GetInvites { .. }
                | Action::RemoveInvite { .. }
        )
    }
}

/// An action's options as read: the typed set, or why they are not one.
/// Reading never fails the frame; a bad option is answered after the
/// caller's standing is checked, so an anonymous caller hears
/// `not_logged_in` whatever options it sent.
#[derive(Debug)]
pub struct Options<T>(Result<T>);

impl<'de, T: OptionSet> Deserialize<'de> for Options<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Ok(Options(read_options(Value::deserialize(d)?)))
    }
}

/// No `options` in the frame reads as none given.
impl<T: OptionSet> Default for Options<T> {
    fn default() -> Self {
        Options(read_options(Value::Null))
    }
}

impl<T> Options<T> {
    pub fn get(self) -> Result<T> {
        self.0
    }
}

/// A reply value as JSON text.
pub type ReplyJson = String;

fn to_json<T: serde::Serialize>(v: T) -> Result<ReplyJson> {
    serde_json::to_string(&v).map_err(Error::Encoding)
}

/// Runs one action against `doc` (already resolved from `d`).
pub async fn dispatch(
    engine: &Engine,
    caller: &Caller,
    doc: &str,
    action: Action,
) -> Result<ReplyJson> {
    if action.handles_invites() {
        caller.require_user(Task::Invites)?;
    }
    match action {
        Action::CreateInvite { options } => {
            to_json(engine.create_invite(caller, doc, &options.get()?).await?)
        }
        Action::CheckInvite { options } => {
            to_json(engine.check_invite(caller, doc, &options.get()?.key)?)
        }
        Action::AcceptInvite { options } => {
            let level = engine
                .accept_invite(caller, doc, &options.get()?.key)
                .await?;
            to_json(level.as_str())
        }
        Action::GetInvites { options } => {
            // The reply stays a plain array, as Webstrates clients expect:
            // a full page means there may be more, asked for with `after`.
            to_json(engine.get_invites(caller, doc, &options.get()?)?.invites)
        }
        Action::RemoveInvite { options } => {
            engine
                .remove_invite(caller, doc, &options.get()?.key)
                .await?;
            Ok(json!({"acknowledged": true, "deletedCount": 1}).to_string())
        }
        Action::GetPermissions => to_json(engine.get_permissions(caller, doc)?),
        Action::SetPermissions { options } => {
            let change = options.get()?;
            to_json(
                engine
                    .set_permissions(caller, doc, &change.target, change.level)
                    .await?,
            )
        }
        Action::Unknown => Err(Error::UnknownAction),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn action(frame: Value) -> Action {
        serde_json::from_value(frame).unwrap()
    }

    #[test]
    fn every_known_name_reads_as_its_action() {
        for name in [
            "createInvite",
            "checkInvite",
            "acceptInvite",
            "getInvites",
            "removeInvite",
            "getPermissions",
            "setPermissions",
        ] {
            assert_eq!(action(json!({"wa": name})).name(), name);
        }
        assert_eq!(action(json!({"wa": "flyToTheMoon"})).name(), "unknown");
        assert_eq!(action(json!({"wa": "unknown"})).name(), "unknown");
    }

    #[test]
    fn options_are_read_with_the_action_and_judged_later() {
        let Action::CreateInvite { options } =
            action(json!({"wa": "createInvite", "options": {"maxAge": "60"}}))
        else {
            panic!("not a createInvite");
        };
        assert_eq!(options.get().unwrap().max_age, 60);
        let Action::CheckInvite { options } = action(json!({"wa": "checkInvite", "options": 5}))
        else {
            panic!("not a checkInvite");
        };
        assert_eq!(
            options.get().unwrap_err().to_string(),
            "options must be an object"
        );
        // Options are ignored where an action takes none.
        assert!(matches!(
            action(json!({"wa": "getPermissions", "options": {"x": 1}})),
            Action::GetPermissions
        ));
    }
}

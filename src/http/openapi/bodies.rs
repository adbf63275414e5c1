//! Schemas of the bodies that the routes build as JSON values rather than
//! from a type of their own: the error shapes, the small envelopes of the
//! `/v1` answers, and the invite options that the engine reads from a JSON
//! map. schemathesis checks every answer against them in CI, so a change of
//! shape on either side fails there.
//!
//! The types are described, never built: hence `dead_code`.
#![allow(dead_code)]

use crate::engine::invites::Invite;
use crate::engine::keys::KeyView;
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

/// The error body of every route outside `/v1` and the directory
/// (`reply::json_error`).
#[derive(Serialize, ToSchema)]
pub struct ApiError {
    /// What went wrong, for a person.
    pub error: String,
    /// A stable code for programs: `bad_request`, `unauthorized`,
    /// `not_found`, `conflict`, `rate_limited`, …
    pub code: String,
}

/// Smooch's error envelope, on every `/v1` route.
#[derive(Serialize, ToSchema)]
pub struct SmoochError {
    pub error: SmoochErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct SmoochErrorDetail {
    pub code: String,
    pub description: String,
}

/// One key: the secret is shown to its owner only (null otherwise).
#[derive(Serialize, ToSchema)]
pub struct KeyAnswer {
    pub key: KeyView,
}

#[derive(Serialize, ToSchema)]
pub struct KeysAnswer {
    pub keys: Vec<KeyView>,
}

/// A JWT signed with the key's secret: as good as the key itself.
#[derive(Serialize, ToSchema)]
pub struct JwtAnswer {
    pub jwt: String,
}

/// `{}`: the change is done.
#[derive(Serialize, ToSchema)]
pub struct Done {}

/// One page of invites; `next` is there when more follow (pass it back as
/// `after`).
#[derive(Serialize, ToSchema)]
pub struct InvitesPage {
    pub invites: Vec<Invite>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// What a new invite grants and for how long (docs/protocol.md, "Invites").
/// Numbers may also be strings of digits.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InviteOptions {
    /// Any non-repeating combination of `r`, `w`, `a` (`w` implies `r`,
    /// `a` implies both); default `r`. Answers say `r`, `rw` or `arw`.
    #[schema(pattern = "^[arw]{1,3}$")]
    pub permissions: Option<String>,
    /// Seconds until the invite expires, 1 to 2592000 (30 days); default
    /// 604800 (7 days).
    #[schema(minimum = 1, maximum = 2_592_000)]
    pub max_age: Option<u64>,
    /// How many users may accept it, 1 to 1000000; null or absent: no limit.
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub max_uses: Option<u64>,
}

/// The options of `/invites_api`, in the query string or the body (JSON or
/// a form): Prosody's names.
#[derive(Serialize, ToSchema, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct InvitesApiOptions {
    /// The app key as `<id>/<secret>`, when not sent in `Authorization`.
    pub key: Option<String>,
    /// Answer 303 to the invite link instead of 201 with the invite.
    pub redirect: Option<bool>,
    #[schema(pattern = "^[arw]{1,3}$")]
    #[param(pattern = "^[arw]{1,3}$")]
    pub permissions: Option<String>,
    #[schema(minimum = 1, maximum = 2_592_000)]
    #[param(minimum = 1, maximum = 2_592_000)]
    pub max_age: Option<u64>,
    #[schema(minimum = 1, maximum = 1_000_000)]
    #[param(minimum = 1, maximum = 1_000_000)]
    pub max_uses: Option<u64>,
}

/// Which invites a listing shows (docs/programs.md).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InviteListQuery {
    /// Every admin's invites, not only the caller's.
    pub all: Option<bool>,
    /// Most invites on the page, 1 to 1000.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u64>,
    /// The `next` of the previous page.
    pub after: Option<String>,
}

/// The app of `/v1/apps/{appId}/…`: a document id.
#[derive(Serialize, IntoParams)]
#[into_params(parameter_in = Path)]
#[serde(rename_all = "camelCase")]
pub struct AppPath {
    /// Document id.
    #[param(example = "notes")]
    pub app_id: String,
}

/// One key of an app.
#[derive(Serialize, IntoParams)]
#[into_params(parameter_in = Path)]
#[serde(rename_all = "camelCase")]
pub struct AppKeyPath {
    /// Document id.
    #[param(example = "notes")]
    pub app_id: String,
    /// Key id (`app_…`).
    pub key_id: String,
}

//! Who is signed in and what they may do, API tokens and the audit log, as the API and
//! the pages exchange them; and the one rule of what a role on which engines allows, used
//! by the server to decide and by the pages to show only the actions a user may take.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What a person may do, each role including the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads everything it is allowed to see.
    Viewer,
    /// Also pauses, resumes, cancels, retries, clones, terminates and starts runs.
    Operator,
    /// Also manages accounts, role bindings, API tokens and settings.
    Admin,
}

impl Role {
    pub const ALL: [Self; 3] = [Self::Viewer, Self::Operator, Self::Admin];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Operator => "operator",
            Self::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|role| role.as_str() == text)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Every engine.
pub const ALL_ENGINES: &str = "*";

/// Longest engine pattern of a binding.
pub const MAX_ENGINE_PATTERN_LEN: usize = 256;

/// Whether `pattern` names `engine`: `*` names every engine, `temporal:prod:*` every engine
/// whose id starts with `temporal:prod:`, anything else the one engine of that id.
pub fn engine_matches(pattern: &str, engine: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => engine.starts_with(prefix),
        None => pattern == engine,
    }
}

/// Whether `pattern` is one a binding may hold: `*`, an engine id, or an id prefix ending
/// in `*`, in printable ASCII without spaces.
pub fn is_valid_engine_pattern(pattern: &str) -> bool {
    !pattern.is_empty()
        && pattern.len() <= MAX_ENGINE_PATTERN_LEN
        && pattern.bytes().all(|b| b.is_ascii_graphic())
        && !pattern[..pattern.len() - 1].contains('*')
}

/// A role on the engines a pattern names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct RoleBinding {
    pub role: Role,
    /// `*` for every engine, else an engine id or an id prefix ending in `*`.
    #[serde(default = "all_engines")]
    pub engines: String,
}

fn all_engines() -> String {
    ALL_ENGINES.to_owned()
}

impl RoleBinding {
    pub fn everywhere(role: Role) -> Self {
        Self {
            role,
            engines: all_engines(),
        }
    }
}

/// What a set of bindings allows.
pub trait Grants {
    fn bindings(&self) -> &[RoleBinding];

    /// Whether `role` (or more) is held on `engine`.
    fn holds_on(&self, role: Role, engine: &str) -> bool {
        self.bindings()
            .iter()
            .any(|binding| binding.role >= role && engine_matches(&binding.engines, engine))
    }

    /// Whether `role` (or more) is held on every engine.
    fn holds_everywhere(&self, role: Role) -> bool {
        self.bindings()
            .iter()
            .any(|binding| binding.role >= role && binding.engines == ALL_ENGINES)
    }

    /// Whether `role` (or more) is held on some engine.
    fn holds_somewhere(&self, role: Role) -> bool {
        self.bindings().iter().any(|binding| binding.role >= role)
    }

    /// The engines whose runs these bindings may read.
    fn sight(&self) -> Sight {
        if self.holds_everywhere(Role::Viewer) {
            return Sight::Everything;
        }
        let mut patterns: Vec<String> = self
            .bindings()
            .iter()
            .map(|binding| binding.engines.clone())
            .collect();
        patterns.sort();
        patterns.dedup();
        Sight::Engines(patterns)
    }
}

/// Which engines' runs a caller may read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sight {
    Everything,
    /// Only the engines these patterns name (see [`engine_matches`]).
    Engines(Vec<String>),
}

impl Sight {
    pub fn sees(&self, engine: &str) -> bool {
        match self {
            Self::Everything => true,
            Self::Engines(patterns) => patterns
                .iter()
                .any(|pattern| engine_matches(pattern, engine)),
        }
    }

    /// The patterns, or `None` for every engine.
    pub fn patterns(&self) -> Option<&[String]> {
        match self {
            Self::Everything => None,
            Self::Engines(patterns) => Some(patterns),
        }
    }
}

impl Grants for Vec<RoleBinding> {
    fn bindings(&self) -> &[RoleBinding] {
        self
    }
}

/// The signed-in person (or token), as `GET /api/auth/me` and the pages see them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Me {
    /// An account's login, or `token:<name>`.
    pub actor: String,
    pub display_name: Option<String>,
    /// `password`, `oidc:<provider>` or `token`.
    pub via: String,
    pub bindings: Vec<RoleBinding>,
}

impl Grants for Me {
    fn bindings(&self) -> &[RoleBinding] {
        &self.bindings
    }
}

/// What an API token may do.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// Read everything.
    Read,
    /// Read, and act on every run (pause, resume, cancel, retry, clone, terminate, start).
    Operate,
    /// Push events as the source of this name.
    Ingest(String),
}

impl Scope {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "read" => Some(Self::Read),
            "operate" => Some(Self::Operate),
            _ => text
                .strip_prefix("ingest:")
                .filter(|source| is_valid_engine_pattern(source) && !source.contains('*'))
                .map(|source| Self::Ingest(source.to_owned())),
        }
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Read => f.write_str("read"),
            Self::Operate => f.write_str("operate"),
            Self::Ingest(source) => write!(f, "ingest:{source}"),
        }
    }
}

/// A scope is written as text: `read`, `operate` or `ingest:<source>`.
#[cfg(feature = "ssr")]
impl utoipa::PartialSchema for Scope {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some("^(read|operate|ingest:[a-z0-9_-]+)$"))
            .description(Some(
                "read (everything), operate (read, and act on every run) or ingest:<source> (push events as that source)",
            ))
            .into()
    }
}

#[cfg(feature = "ssr")]
impl utoipa::ToSchema for Scope {}

impl Serialize for Scope {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "{text:?} is not a scope (read, operate, or ingest:<source>)"
            ))
        })
    }
}

/// An API token as admins see it; its value is shown once, when it is created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct TokenInfo {
    pub id: i64,
    pub name: String,
    pub scopes: Vec<Scope>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A request for a new token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct NewToken {
    pub name: String,
    pub scopes: Vec<Scope>,
    /// Days until it stops working; none for a token that does not expire.
    #[serde(default)]
    pub expires_in_days: Option<u32>,
}

/// A token just created: its value, which is never shown again, and what it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct CreatedToken {
    pub token: String,
    #[serde(flatten)]
    pub info: TokenInfo,
}

/// An account as admins see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct UserInfo {
    pub id: i64,
    pub login: String,
    pub display_name: Option<String>,
    /// `local`, or the sign-in provider the account came from.
    pub provider: String,
    pub disabled: bool,
    pub bindings: Vec<RoleBinding>,
    pub created_at: DateTime<Utc>,
}

/// A request for a new local account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct NewUser {
    pub login: String,
    #[serde(default)]
    pub display_name: Option<String>,
    pub password: String,
    pub bindings: Vec<RoleBinding>,
}

/// A change to an account: any of its password, bindings and whether it may sign in.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct UserChange {
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub bindings: Option<Vec<RoleBinding>>,
    #[serde(default)]
    pub disabled: Option<bool>,
}

/// Shortest password a local account may have.
pub const MIN_PASSWORD_LEN: usize = 12;
/// Longest password taken (hashing cost is bounded whatever a client sends).
pub const MAX_PASSWORD_LEN: usize = 256;
/// Longest login, token name, display name or audit reason kept.
pub const MAX_NAME_LEN: usize = 256;

/// One entry of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct AuditEntry {
    pub id: i64,
    pub at: DateTime<Utc>,
    /// An account's login, or `token:<name>`.
    pub actor: String,
    /// `session`, `token` or `system`.
    pub via: String,
    /// `cancel`, `sign_in`, `token_created`, ...
    pub action: String,
    pub workflow_id: Option<String>,
    pub reason: Option<String>,
    /// `ok`, `refused` or `failed`.
    pub outcome: String,
    /// What the outcome said (a refusal's message, a token's name, ...).
    pub detail: Option<String>,
}

/// A search of the audit log, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "ssr",
    derive(utoipa::IntoParams),
    into_params(parameter_in = Query)
)]
pub struct AuditQuery {
    #[serde(default)]
    pub actor: Option<String>,
    #[serde(default)]
    pub workflow_id: Option<String>,
    #[serde(default)]
    pub action: Option<String>,
    #[serde(default)]
    pub since: Option<DateTime<Utc>>,
    #[serde(default)]
    pub until: Option<DateTime<Utc>>,
    /// Entries older than this id (the previous page's `next_before`).
    #[serde(default)]
    pub before: Option<i64>,
    #[serde(default)]
    pub limit: Option<u32>,
}

/// Most audit entries in one answer.
pub const MAX_AUDIT_LIMIT: u32 = 500;
pub const DEFAULT_AUDIT_LIMIT: u32 = 100;

impl AuditQuery {
    /// What is wrong with the search, if anything (a field too long to be a name).
    pub fn invalid(&self) -> Option<String> {
        [
            ("actor", &self.actor),
            ("workflow_id", &self.workflow_id),
            ("action", &self.action),
        ]
        .into_iter()
        .find(|(_, value)| {
            value
                .as_ref()
                .is_some_and(|value| value.len() > MAX_NAME_LEN)
        })
        .map(|(what, _)| format!("{what} may be at most {MAX_NAME_LEN} bytes"))
    }

    pub fn effective_limit(&self) -> u32 {
        self.limit
            .unwrap_or(DEFAULT_AUDIT_LIMIT)
            .clamp(1, MAX_AUDIT_LIMIT)
    }
}

/// A page of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    /// Pass as `before` for the next (older) page.
    pub next_before: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pattern_names_every_engine_a_prefix_or_one_engine() {
        assert!(engine_matches("*", "temporal:prod:billing"));
        assert!(engine_matches("temporal:prod:*", "temporal:prod:billing"));
        assert!(!engine_matches(
            "temporal:prod:*",
            "temporal:staging:billing"
        ));
        assert!(engine_matches("builtin", "builtin"));
        assert!(!engine_matches("builtin", "builtin2"));
        assert!(is_valid_engine_pattern("temporal:prod:*"));
        assert!(!is_valid_engine_pattern("temp*oral"));
        assert!(!is_valid_engine_pattern("a b"));
        assert!(!is_valid_engine_pattern(""));
    }

    #[test]
    fn a_role_includes_the_ones_before_it_on_the_engines_it_is_bound_to() {
        let grants = vec![
            RoleBinding::everywhere(Role::Viewer),
            RoleBinding {
                role: Role::Operator,
                engines: "temporal:prod:billing".into(),
            },
        ];
        assert!(grants.holds_on(Role::Operator, "temporal:prod:billing"));
        assert!(grants.holds_on(Role::Viewer, "temporal:prod:billing"));
        assert!(!grants.holds_on(Role::Operator, "builtin"));
        assert!(grants.holds_on(Role::Viewer, "builtin"));
        assert!(grants.holds_everywhere(Role::Viewer));
        assert!(!grants.holds_everywhere(Role::Operator));
        assert!(grants.holds_somewhere(Role::Operator));
        assert!(!grants.holds_somewhere(Role::Admin));
    }

    #[test]
    fn scopes_read_and_write_as_their_names() {
        for text in ["read", "operate", "ingest:billing"] {
            let scope = Scope::parse(text).unwrap();
            assert_eq!(scope.to_string(), text);
            let json = serde_json::to_string(&scope).unwrap();
            assert_eq!(serde_json::from_str::<Scope>(&json).unwrap(), scope);
        }
        assert_eq!(Scope::parse("ingest:"), None);
        assert_eq!(Scope::parse("ingest:*"), None);
        assert_eq!(Scope::parse("admin"), None);
        assert!(serde_json::from_str::<Scope>("\"write\"").is_err());
    }
}

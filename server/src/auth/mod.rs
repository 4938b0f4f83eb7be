//! Who is calling and what they may do. A request is identified once, by its session
//! cookie or its API token ([`Caller`]); what each route needs ([`Need`]) is checked
//! before its handler runs, and what depends on the run (its engine) by the handler, with
//! the one rule of [`Grants`]. Secrets are random from the operating system and stored
//! only as their SHA-256; passwords as Argon2id.

pub mod first_admin;
pub mod oidc;
pub mod password;
pub mod secret;
mod throttle;

pub use throttle::SignInThrottle;

use crate::source::Millis;
use crate::store::identity::{SessionRow, TokenRow};
use app::model::identity::{Grants, Me, Role, RoleBinding, Scope};
use std::time::Duration;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "stepline_session";

/// How sessions live and how the cookie is sent.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// A session unused this long ends.
    pub idle: Duration,
    /// A session ends this long after sign-in, however used.
    pub absolute: Duration,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            idle: Duration::from_secs(12 * 3_600),
            absolute: Duration::from_secs(7 * 86_400),
        }
    }
}

impl AuthSettings {
    /// When a session used at `now`, opened at `created`, ends.
    pub fn session_end(&self, created: Millis, now: Millis) -> Millis {
        let idle_end = now.saturating_add(millis(self.idle));
        let absolute_end = created.saturating_add(millis(self.absolute));
        idle_end.min(absolute_end)
    }
}

fn millis(duration: Duration) -> Millis {
    Millis::try_from(duration.as_millis()).unwrap_or(Millis::MAX)
}

/// How a caller proved who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    /// A browser session; `method` is `password` or `oidc:<provider>`.
    Session { token_hash: String, method: String },
    /// An API token.
    Token { id: i64 },
}

/// Who is calling, and what their roles and scopes allow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// An account's login, or `token:<name>`.
    pub actor: String,
    pub display_name: Option<String>,
    pub via: Via,
    /// Roles, on which engines. A token's `read` and `operate` scopes are a viewer's and
    /// an operator's role on every engine.
    pub bindings: Vec<RoleBinding>,
    /// The sources a token may push events as.
    pub ingest: Vec<String>,
}

impl Grants for Caller {
    fn bindings(&self) -> &[RoleBinding] {
        &self.bindings
    }
}

impl Caller {
    /// A signed-in account, by its session.
    pub fn from_session(session: &SessionRow, token_hash: &str) -> Self {
        let mut bindings = session.user.bindings.clone();
        bindings.extend(session.granted.iter().cloned());
        Self {
            actor: session.user.login.clone(),
            display_name: session.user.display_name.clone(),
            via: Via::Session {
                token_hash: token_hash.to_owned(),
                method: session.via.clone(),
            },
            bindings,
            ingest: Vec::new(),
        }
    }

    /// A machine, by its API token.
    pub fn from_token(token: &TokenRow) -> Self {
        let mut bindings = Vec::new();
        let mut ingest = Vec::new();
        for scope in &token.scopes {
            match scope {
                Scope::Read => bindings.push(RoleBinding::everywhere(Role::Viewer)),
                Scope::Operate => bindings.push(RoleBinding::everywhere(Role::Operator)),
                Scope::Ingest(source) => ingest.push(source.clone()),
            }
        }
        Self {
            actor: format!("token:{}", token.name),
            display_name: None,
            via: Via::Token { id: token.id },
            bindings,
            ingest,
        }
    }

    /// `session` or `token`, as the audit log records it.
    pub fn via_name(&self) -> &'static str {
        match self.via {
            Via::Session { .. } => "session",
            Via::Token { .. } => "token",
        }
    }

    /// Whether this caller came with a browser's session cookie (so cross-site requests
    /// must be refused).
    pub fn by_cookie(&self) -> bool {
        matches!(self.via, Via::Session { .. })
    }

    /// Whether the caller may push events as `source` (the name in the batch).
    pub fn may_ingest(&self, source: &str) -> bool {
        self.ingest.iter().any(|allowed| allowed == source)
    }

    pub fn me(&self) -> Me {
        Me {
            actor: self.actor.clone(),
            display_name: self.display_name.clone(),
            via: match &self.via {
                Via::Session { method, .. } => method.clone(),
                Via::Token { .. } => "token".to_owned(),
            },
            bindings: self.bindings.clone(),
        }
    }
}

/// What a route needs of its caller before its handler runs. Whatever depends on the
/// run (the engine a binding is limited to) the handler checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Anyone: health, sign-in, static files.
    Nobody,
    /// Anyone signed in (who am I, sign out).
    SignedIn,
    /// A viewer's role on some engine.
    Read,
    /// An operator's role on some engine.
    Operate,
    /// An admin's role on every engine.
    Admin,
    /// A token that may push events as some source.
    Ingest,
}

/// Why a caller was turned away.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// Not signed in: 401.
    NotSignedIn,
    /// Signed in without what is needed: 403, saying what is missing.
    Missing(String),
}

impl Need {
    /// Whether `caller` may pass, or why not.
    pub fn check(self, caller: Option<&Caller>) -> Result<(), Denied> {
        let Some(caller) = caller else {
            return match self {
                Self::Nobody => Ok(()),
                _ => Err(Denied::NotSignedIn),
            };
        };
        let allowed = match self {
            Self::Nobody | Self::SignedIn => true,
            Self::Read => caller.holds_somewhere(Role::Viewer),
            Self::Operate => caller.holds_somewhere(Role::Operator),
            Self::Admin => caller.holds_everywhere(Role::Admin),
            Self::Ingest => !caller.ingest.is_empty(),
        };
        if allowed {
            return Ok(());
        }
        Err(Denied::Missing(match self {
            Self::Read => format!("{} has no role: the viewer role is needed", caller.actor),
            Self::Operate => format!(
                "{} is not an operator: the operator role is needed",
                caller.actor
            ),
            Self::Admin => format!(
                "{} is not an admin: the admin role on every engine is needed",
                caller.actor
            ),
            Self::Ingest => format!(
                "{} may not push events: a token with an ingest:<source> scope is needed",
                caller.actor
            ),
            Self::Nobody | Self::SignedIn => unreachable!("always allowed"),
        }))
    }
}

/// Why `caller` may not act with `role` on a run of `engine`, or `None` when it may.
pub fn refusal_on_engine(caller: &Caller, role: Role, engine: &str) -> Option<String> {
    (!caller.holds_on(role, engine))
        .then(|| format!("{} does not hold the {role} role on {engine}", caller.actor))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(bindings: Vec<RoleBinding>, ingest: Vec<&str>) -> Caller {
        Caller {
            actor: "ana@example.com".into(),
            display_name: None,
            via: Via::Token { id: 1 },
            bindings,
            ingest: ingest.into_iter().map(str::to_owned).collect(),
        }
    }

    #[test]
    fn each_need_is_met_by_its_role_and_no_less() {
        let viewer = caller(vec![RoleBinding::everywhere(Role::Viewer)], vec![]);
        let limited_operator = caller(
            vec![
                RoleBinding::everywhere(Role::Viewer),
                RoleBinding {
                    role: Role::Operator,
                    engines: "temporal:prod:*".into(),
                },
            ],
            vec![],
        );
        let admin = caller(vec![RoleBinding::everywhere(Role::Admin)], vec![]);
        let pusher = caller(vec![], vec!["billing"]);
        assert_eq!(Need::Read.check(None), Err(Denied::NotSignedIn));
        assert_eq!(Need::Nobody.check(None), Ok(()));
        assert_eq!(Need::Read.check(Some(&viewer)), Ok(()));
        assert!(
            matches!(Need::Operate.check(Some(&viewer)), Err(Denied::Missing(m)) if m.contains("operator role"))
        );
        assert_eq!(Need::Operate.check(Some(&limited_operator)), Ok(()));
        assert!(Need::Admin.check(Some(&limited_operator)).is_err());
        assert_eq!(Need::Admin.check(Some(&admin)), Ok(()));
        assert_eq!(Need::Operate.check(Some(&admin)), Ok(()));
        assert!(Need::Read.check(Some(&pusher)).is_err());
        assert_eq!(Need::Ingest.check(Some(&pusher)), Ok(()));
        assert!(Need::Ingest.check(Some(&admin)).is_err());
        assert!(pusher.may_ingest("billing") && !pusher.may_ingest("etl"));
        assert_eq!(
            refusal_on_engine(&limited_operator, Role::Operator, "temporal:prod:billing"),
            None
        );
        assert!(refusal_on_engine(&limited_operator, Role::Operator, "builtin").is_some());
    }

    #[test]
    fn a_session_ends_when_idle_or_at_its_absolute_end() {
        let settings = AuthSettings {
            idle: Duration::from_secs(60),
            absolute: Duration::from_secs(3_600),
        };
        assert_eq!(settings.session_end(0, 1_000), 61_000);
        assert_eq!(settings.session_end(0, 3_590_000), 3_600_000);
    }
}

//! Accounts, their role bindings, sessions and API tokens as stored, and the audit log:
//! what signing in, authorizing a request and answering "who did this" read and write.
//! Secrets arrive here already hashed; nothing here ever sees a password or a token.

use super::rows::{to_datetime, Millis};
use super::{json_text, Dialect, Store, StoreError, WriteTransaction};
use app::model::identity::{
    AuditEntry, AuditPage, AuditQuery, Role, RoleBinding, Scope, TokenInfo, UserInfo,
};
use sqlx::QueryBuilder;

/// An account as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    pub id: i64,
    pub login: String,
    pub display_name: Option<String>,
    pub password_hash: Option<String>,
    pub provider: String,
    pub disabled: bool,
    pub created_ms: Millis,
    pub bindings: Vec<RoleBinding>,
}

impl UserRow {
    pub fn to_wire(&self) -> UserInfo {
        UserInfo {
            id: self.id,
            login: self.login.clone(),
            display_name: self.display_name.clone(),
            provider: self.provider.clone(),
            disabled: self.disabled,
            bindings: self.bindings.clone(),
            created_at: to_datetime(self.created_ms),
        }
    }
}

/// A new account: its password already hashed (none for one from a provider).
#[derive(Debug, Clone)]
pub struct NewAccount<'a> {
    pub login: &'a str,
    pub display_name: Option<&'a str>,
    pub password_hash: Option<&'a str>,
    pub provider: &'a str,
    pub bindings: &'a [RoleBinding],
}

/// A session as stored, with its account.
#[derive(Debug, Clone)]
pub struct SessionRow {
    pub user: UserRow,
    pub via: String,
    /// Bindings a provider's claims gave at sign-in, on top of the account's own.
    pub granted: Vec<RoleBinding>,
    pub last_seen_ms: Millis,
    pub expires_ms: Millis,
    pub created_ms: Millis,
}

/// An API token as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    pub id: i64,
    pub name: String,
    pub scopes: Vec<Scope>,
    pub created_by: String,
    pub created_ms: Millis,
    pub expires_ms: Option<Millis>,
    pub last_used_ms: Option<Millis>,
    pub revoked_ms: Option<Millis>,
}

impl TokenRow {
    pub fn to_wire(&self) -> TokenInfo {
        TokenInfo {
            id: self.id,
            name: self.name.clone(),
            scopes: self.scopes.clone(),
            created_by: self.created_by.clone(),
            created_at: to_datetime(self.created_ms),
            expires_at: self.expires_ms.map(to_datetime),
            last_used_at: self.last_used_ms.map(to_datetime),
            revoked_at: self.revoked_ms.map(to_datetime),
        }
    }

    /// Whether the token works at `now`.
    pub fn is_live(&self, now: Millis) -> bool {
        self.revoked_ms.is_none() && self.expires_ms.is_none_or(|expires| now < expires)
    }
}

/// An entry for the audit log.
#[derive(Debug, Clone, Default)]
pub struct NewAuditEntry {
    pub at_ms: Millis,
    pub actor: String,
    pub via: String,
    pub action: String,
    pub workflow_id: Option<String>,
    pub reason: Option<String>,
    pub outcome: String,
    pub detail: Option<String>,
}

type UserColumns = (
    i64,
    String,
    Option<String>,
    Option<String>,
    String,
    bool,
    Millis,
);

fn bindings_from(rows: Vec<(String, String)>) -> Vec<RoleBinding> {
    rows.into_iter()
        .filter_map(|(role, engines)| {
            Some(RoleBinding {
                role: Role::parse(&role)?,
                engines,
            })
        })
        .collect()
}

/// Stored JSON read back; what does not read (it never should) counts as nothing.
fn from_json<T: serde::de::DeserializeOwned + Default>(text: &str) -> T {
    serde_json::from_str(text).unwrap_or_default()
}

impl Store {
    /// How many accounts exist.
    pub async fn count_users(&self) -> Result<i64, StoreError> {
        Ok(on_backend!(&self.pool, pool => {
            sqlx::query_scalar("SELECT COUNT(*) FROM users")
                .fetch_one(pool)
                .await?
        }))
    }

    /// Creates an account with its bindings; `None` when the login is taken.
    pub async fn create_user(
        &self,
        account: NewAccount<'_>,
        now: Millis,
    ) -> Result<Option<i64>, StoreError> {
        let mut tx = self.write_transaction().await?;
        let id: Option<i64> = on_backend!(&mut tx, tx => {
            sqlx::query_scalar(
                "INSERT INTO users (login, display_name, password_hash, provider, created_ms)
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (login) DO NOTHING RETURNING id",
            )
            .bind(account.login)
            .bind(account.display_name)
            .bind(account.password_hash)
            .bind(account.provider)
            .bind(now)
            .fetch_optional(&mut **tx)
            .await?
        });
        let Some(id) = id else {
            return Ok(None);
        };
        replace_bindings(&mut tx, id, account.bindings).await?;
        tx.commit().await?;
        Ok(Some(id))
    }

    /// The account a sign-in provider vouched for, known by the provider's id for the
    /// person (`subject`): made at the first sign-in with `login`, its display name
    /// kept up to date. `None` when `login` is another account's.
    pub async fn provider_account(
        &self,
        provider: &str,
        subject: &str,
        login: &str,
        display_name: Option<&str>,
        now: Millis,
    ) -> Result<Option<UserRow>, StoreError> {
        let mut tx = self.write_transaction().await?;
        let known: Option<i64> = on_backend!(&mut tx, tx => {
            sqlx::query_scalar("SELECT id FROM users WHERE provider = $1 AND subject = $2")
                .bind(provider)
                .bind(subject)
                .fetch_optional(&mut **tx)
                .await?
        });
        let id = match known {
            Some(id) => {
                on_backend!(&mut tx, tx => {
                    sqlx::query(
                        "UPDATE users SET display_name = COALESCE($1, display_name) WHERE id = $2",
                    )
                    .bind(display_name)
                    .bind(id)
                    .execute(&mut **tx)
                    .await?
                    .rows_affected()
                });
                id
            }
            None => {
                let made: Option<i64> = on_backend!(&mut tx, tx => {
                    sqlx::query_scalar(
                        "INSERT INTO users (login, display_name, provider, subject, created_ms)
                         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (login) DO NOTHING RETURNING id",
                    )
                    .bind(login)
                    .bind(display_name)
                    .bind(provider)
                    .bind(subject)
                    .bind(now)
                    .fetch_optional(&mut **tx)
                    .await?
                });
                let Some(id) = made else {
                    return Ok(None);
                };
                id
            }
        };
        tx.commit().await?;
        self.user(id).await
    }

    /// The account of `login` (case aside), with its bindings.
    pub async fn user_by_login(&self, login: &str) -> Result<Option<UserRow>, StoreError> {
        // The column compares case aside (NOCASE, on both backends).
        let columns: Option<UserColumns> = on_backend!(&self.pool, pool => {
            sqlx::query_as(
                "SELECT id, login, display_name, password_hash, provider, disabled, created_ms
                 FROM users WHERE login = $1",
            )
            .bind(login)
            .fetch_optional(pool)
            .await?
        });
        match columns {
            Some(columns) => Ok(Some(self.with_bindings(columns).await?)),
            None => Ok(None),
        }
    }

    /// The account of `id`, with its bindings.
    pub async fn user(&self, id: i64) -> Result<Option<UserRow>, StoreError> {
        let columns: Option<UserColumns> = on_backend!(&self.pool, pool => {
            sqlx::query_as(
                "SELECT id, login, display_name, password_hash, provider, disabled, created_ms
                 FROM users WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await?
        });
        match columns {
            Some(columns) => Ok(Some(self.with_bindings(columns).await?)),
            None => Ok(None),
        }
    }

    /// Every account, by login.
    pub async fn users(&self) -> Result<Vec<UserRow>, StoreError> {
        let rows: Vec<UserColumns> = on_backend!(&self.pool, pool => {
            sqlx::query_as(
                "SELECT id, login, display_name, password_hash, provider, disabled, created_ms
                 FROM users ORDER BY login",
            )
            .fetch_all(pool)
            .await?
        });
        let bindings: Vec<(i64, String, String)> = on_backend!(&self.pool, pool => {
            sqlx::query_as("SELECT user_id, role, engines FROM role_bindings ORDER BY role")
                .fetch_all(pool)
                .await?
        });
        Ok(rows
            .into_iter()
            .map(|columns| {
                let id = columns.0;
                let own = bindings
                    .iter()
                    .filter(|(user, _, _)| *user == id)
                    .map(|(_, role, engines)| (role.clone(), engines.clone()))
                    .collect();
                user_row(columns, bindings_from(own))
            })
            .collect())
    }

    async fn with_bindings(&self, columns: UserColumns) -> Result<UserRow, StoreError> {
        let bindings: Vec<(String, String)> = on_backend!(&self.pool, pool => {
            sqlx::query_as(
                "SELECT role, engines FROM role_bindings WHERE user_id = $1 ORDER BY role",
            )
            .bind(columns.0)
            .fetch_all(pool)
            .await?
        });
        Ok(user_row(columns, bindings_from(bindings)))
    }

    /// Changes an account: a new password hash, new bindings, disabled or not. A password
    /// change or disabling also ends the account's sessions. `false` for an unknown id.
    pub async fn update_user(
        &self,
        id: i64,
        password_hash: Option<&str>,
        bindings: Option<&[RoleBinding]>,
        disabled: Option<bool>,
        now: Millis,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write_transaction().await?;
        let found: Option<i64> = on_backend!(&mut tx, tx => {
            sqlx::query_scalar("SELECT id FROM users WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut **tx)
                .await?
        });
        if found.is_none() {
            return Ok(false);
        }
        if let Some(hash) = password_hash {
            on_backend!(&mut tx, tx => {
                sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
                    .bind(hash)
                    .bind(id)
                    .execute(&mut **tx)
                    .await?
                .rows_affected()
            });
        }
        if let Some(disabled) = disabled {
            on_backend!(&mut tx, tx => {
                sqlx::query("UPDATE users SET disabled = $1 WHERE id = $2")
                    .bind(disabled)
                    .bind(id)
                    .execute(&mut **tx)
                    .await?
                .rows_affected()
            });
        }
        if let Some(bindings) = bindings {
            replace_bindings(&mut tx, id, bindings).await?;
        }
        if password_hash.is_some() || disabled == Some(true) {
            on_backend!(&mut tx, tx => {
                sqlx::query(
                    "UPDATE sessions SET revoked_ms = $1 WHERE user_id = $2 AND revoked_ms IS NULL",
                )
                .bind(now)
                .bind(id)
                .execute(&mut **tx)
                .await?
                .rows_affected()
            });
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Records a new session under the hash of its secret.
    pub async fn open_session(
        &self,
        token_hash: &str,
        user_id: i64,
        via: &str,
        granted: &[RoleBinding],
        now: Millis,
        expires_ms: Millis,
    ) -> Result<(), StoreError> {
        let mut tx = self.write_transaction().await?;
        on_backend!(&mut tx, tx => {
            sqlx::query(
                "INSERT INTO sessions (token_hash, user_id, via, granted, created_ms, last_seen_ms,
                                       expires_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(token_hash)
            .bind(user_id)
            .bind(via)
            .bind(json_text(granted))
            .bind(now)
            .bind(now)
            .bind(expires_ms)
            .execute(&mut **tx)
            .await?
            .rows_affected()
        });
        // Sessions long over are forgotten as new ones open.
        on_backend!(&mut tx, tx => {
            sqlx::query("DELETE FROM sessions WHERE expires_ms < $1 OR revoked_ms < $2")
                .bind(now - SESSIONS_KEPT_MS)
                .bind(now - SESSIONS_KEPT_MS)
                .execute(&mut **tx)
                .await?
            .rows_affected()
        });
        tx.commit().await?;
        Ok(())
    }

    /// The session of `token_hash` if it is still open at `now` (not revoked, not past
    /// its end), with its account, which must not be disabled.
    pub async fn live_session(
        &self,
        token_hash: &str,
        now: Millis,
    ) -> Result<Option<SessionRow>, StoreError> {
        let found: Option<(i64, String, String, Millis, Millis, Millis)> = on_backend!(&self.pool, pool => {
            sqlx::query_as(
                "SELECT user_id, via, granted, last_seen_ms, expires_ms, created_ms FROM sessions
                 WHERE token_hash = $1 AND revoked_ms IS NULL AND expires_ms > $2",
            )
            .bind(token_hash)
            .bind(now)
            .fetch_optional(pool)
            .await?
        });
        let Some((user_id, via, granted, last_seen_ms, expires_ms, created_ms)) = found else {
            return Ok(None);
        };
        let Some(user) = self.user(user_id).await? else {
            return Ok(None);
        };
        if user.disabled {
            return Ok(None);
        }
        Ok(Some(SessionRow {
            user,
            via,
            granted: from_json(&granted),
            last_seen_ms,
            expires_ms,
            created_ms,
        }))
    }

    /// Moves a session's last use (and so its idle end) on.
    pub async fn touch_session(
        &self,
        token_hash: &str,
        now: Millis,
        expires_ms: Millis,
    ) -> Result<(), StoreError> {
        let mut tx = self.write_transaction().await?;
        on_backend!(&mut tx, tx => {
            sqlx::query("UPDATE sessions SET last_seen_ms = $1, expires_ms = $2 WHERE token_hash = $3")
                .bind(now)
                .bind(expires_ms)
                .bind(token_hash)
                .execute(&mut **tx)
                .await?
            .rows_affected()
        });
        tx.commit().await?;
        Ok(())
    }

    /// Ends a session (signing out): its cookie no longer works.
    pub async fn revoke_session(&self, token_hash: &str, now: Millis) -> Result<(), StoreError> {
        let mut tx = self.write_transaction().await?;
        on_backend!(&mut tx, tx => {
            sqlx::query(
                "UPDATE sessions SET revoked_ms = $1 WHERE token_hash = $2 AND revoked_ms IS NULL",
            )
            .bind(now)
            .bind(token_hash)
            .execute(&mut **tx)
            .await?
            .rows_affected()
        });
        tx.commit().await?;
        Ok(())
    }

    /// Records a new API token under the hash of its secret; returns its id.
    pub async fn create_token(
        &self,
        name: &str,
        token_hash: &str,
        scopes: &[Scope],
        created_by: &str,
        now: Millis,
        expires_ms: Option<Millis>,
    ) -> Result<i64, StoreError> {
        let mut tx = self.write_transaction().await?;
        let id: i64 = on_backend!(&mut tx, tx => {
            sqlx::query_scalar(
                "INSERT INTO api_tokens (name, token_hash, scopes, created_by, created_ms, expires_ms)
                 VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            )
            .bind(name)
            .bind(token_hash)
            .bind(json_text(scopes))
            .bind(created_by)
            .bind(now)
            .bind(expires_ms)
            .fetch_one(&mut **tx)
            .await?
        });
        tx.commit().await?;
        Ok(id)
    }

    /// The token stored under `token_hash`, live or not.
    pub async fn token_by_hash(&self, token_hash: &str) -> Result<Option<TokenRow>, StoreError> {
        Ok(self.tokens_where(Which::Hash(token_hash)).await?.pop())
    }

    /// The token of `id`.
    pub async fn token(&self, id: i64) -> Result<Option<TokenRow>, StoreError> {
        Ok(self.tokens_where(Which::Id(id)).await?.pop())
    }

    /// Every token, newest first.
    pub async fn tokens(&self) -> Result<Vec<TokenRow>, StoreError> {
        self.tokens_where(Which::All).await
    }

    async fn tokens_where(&self, which: Which<'_>) -> Result<Vec<TokenRow>, StoreError> {
        type Columns = (
            i64,
            String,
            String,
            String,
            Millis,
            Option<Millis>,
            Option<Millis>,
            Option<Millis>,
        );
        let rows: Vec<Columns> = on_backend!(&self.pool, pool => {
            let mut select = QueryBuilder::new(
                "SELECT id, name, scopes, created_by, created_ms, expires_ms, last_used_ms,
                        revoked_ms
                 FROM api_tokens",
            );
            match which {
                Which::Hash(hash) => select
                    .push(" WHERE token_hash = ")
                    .push_bind(hash.to_owned()),
                Which::Id(id) => select.push(" WHERE id = ").push_bind(id),
                Which::All => &mut select,
            };
            select.push(" ORDER BY id DESC");
            select.build_query_as().fetch_all(pool).await?
        });
        Ok(rows
            .into_iter()
            .map(
                |(
                    id,
                    name,
                    scopes,
                    created_by,
                    created_ms,
                    expires_ms,
                    last_used_ms,
                    revoked_ms,
                )| {
                    TokenRow {
                        id,
                        name,
                        scopes: from_json(&scopes),
                        created_by,
                        created_ms,
                        expires_ms,
                        last_used_ms,
                        revoked_ms,
                    }
                },
            )
            .collect())
    }

    /// Revokes a token; `false` when there is no such token.
    pub async fn revoke_token(&self, id: i64, now: Millis) -> Result<bool, StoreError> {
        let mut tx = self.write_transaction().await?;
        let changed = on_backend!(&mut tx, tx => {
            sqlx::query(
                "UPDATE api_tokens SET revoked_ms = COALESCE(revoked_ms, $1) WHERE id = $2",
            )
            .bind(now)
            .bind(id)
            .execute(&mut **tx)
            .await?
            .rows_affected()
        });
        tx.commit().await?;
        Ok(changed > 0)
    }

    /// Records that a token was used at `now`.
    pub async fn touch_token(&self, id: i64, now: Millis) -> Result<(), StoreError> {
        let mut tx = self.write_transaction().await?;
        on_backend!(&mut tx, tx => {
            sqlx::query("UPDATE api_tokens SET last_used_ms = $1 WHERE id = $2")
                .bind(now)
                .bind(id)
                .execute(&mut **tx)
                .await?
            .rows_affected()
        });
        tx.commit().await?;
        Ok(())
    }

    /// Appends an entry to the audit log (which takes no change and no deletion).
    pub async fn append_audit(&self, entry: &NewAuditEntry) -> Result<(), StoreError> {
        let mut tx = self.write_transaction().await?;
        on_backend!(&mut tx, tx => {
            sqlx::query(
                "INSERT INTO audit_log (at_ms, actor, via, action, workflow_id, reason, outcome, detail)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(entry.at_ms)
            .bind(&entry.actor)
            .bind(&entry.via)
            .bind(&entry.action)
            .bind(&entry.workflow_id)
            .bind(&entry.reason)
            .bind(&entry.outcome)
            .bind(&entry.detail)
            .execute(&mut **tx)
            .await?
            .rows_affected()
        });
        tx.commit().await?;
        Ok(())
    }

    /// A page of the audit log, newest first, filtered as `query` says; each filter is
    /// served by an index, and a page reads only what it shows.
    pub async fn audit(&self, query: &AuditQuery) -> Result<AuditPage, StoreError> {
        let limit = query.effective_limit();
        type Columns = (
            i64,
            Millis,
            String,
            String,
            String,
            Option<String>,
            Option<String>,
            String,
            Option<String>,
        );
        let dialect = self.dialect();
        let mut rows: Vec<Columns> = on_backend!(&self.pool, pool => {
            let mut select = QueryBuilder::new(
                "SELECT id, at_ms, actor, via, action, workflow_id, reason, outcome, detail
                 FROM audit_log WHERE 1 = 1",
            );
            if let Some(actor) = &query.actor {
                // Logins are told apart case aside.
                match dialect {
                    Dialect::Sqlite => select
                        .push(" AND actor = ")
                        .push_bind(actor.clone())
                        .push(" COLLATE NOCASE"),
                    Dialect::Postgres => select
                        .push(" AND lower(actor) = lower(")
                        .push_bind(actor.clone())
                        .push(")"),
                };
            }
            if let Some(workflow_id) = &query.workflow_id {
                select
                    .push(" AND workflow_id = ")
                    .push_bind(workflow_id.clone());
            }
            if let Some(action) = &query.action {
                select.push(" AND action = ").push_bind(action.clone());
            }
            if let Some(since) = query.since {
                select
                    .push(" AND at_ms >= ")
                    .push_bind(since.timestamp_millis());
            }
            if let Some(until) = query.until {
                select
                    .push(" AND at_ms < ")
                    .push_bind(until.timestamp_millis());
            }
            if let Some(before) = query.before {
                select.push(" AND id < ").push_bind(before);
            }
            select
                .push(" ORDER BY id DESC LIMIT ")
                .push_bind(i64::from(limit) + 1);
            select.build_query_as().fetch_all(pool).await?
        });
        let next_before = super::next_before(&mut rows, limit, |row| row.0);
        Ok(AuditPage {
            entries: rows
                .into_iter()
                .map(
                    |(id, at_ms, actor, via, action, workflow_id, reason, outcome, detail)| {
                        AuditEntry {
                            id,
                            at: to_datetime(at_ms),
                            actor,
                            via,
                            action,
                            workflow_id,
                            reason,
                            outcome,
                            detail,
                        }
                    },
                )
                .collect(),
            next_before,
        })
    }
}

/// Which tokens a read is after.
enum Which<'a> {
    Hash(&'a str),
    Id(i64),
    All,
}

/// How long an ended session is kept (for the record) before it is forgotten.
const SESSIONS_KEPT_MS: Millis = 30 * 86_400_000;

fn user_row(
    (id, login, display_name, password_hash, provider, disabled, created_ms): UserColumns,
    bindings: Vec<RoleBinding>,
) -> UserRow {
    UserRow {
        id,
        login,
        display_name,
        password_hash,
        provider,
        disabled,
        created_ms,
        bindings,
    }
}

async fn replace_bindings(
    tx: &mut WriteTransaction,
    user_id: i64,
    bindings: &[RoleBinding],
) -> Result<(), StoreError> {
    on_backend!(tx, tx => {
        sqlx::query("DELETE FROM role_bindings WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut **tx)
            .await?
        .rows_affected()
    });
    for binding in bindings {
        on_backend!(tx, tx => {
            sqlx::query(
                "INSERT INTO role_bindings (user_id, role, engines) VALUES ($1, $2, $3)
                 ON CONFLICT DO NOTHING",
            )
            .bind(user_id)
            .bind(binding.role.as_str())
            .bind(&binding.engines)
            .execute(&mut **tx)
            .await?
            .rows_affected()
        });
    }
    Ok(())
}

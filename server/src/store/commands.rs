//! The command outbox as stored (see `source::outbox`): written when an operator asks,
//! read by the webhook deliverers and by engines that pull, settled by the engine's
//! answer. A command stays due until its engine has answered it, restarts included.

use super::rows::Millis;
use super::{Store, StoreError};
use crate::source::{Answer, CommandOutbox, NewCommand, OutboxCommand, OutboxError};
use app::model::WorkflowStatus;
use async_trait::async_trait;

/// A row of `engine_commands`, as read.
#[derive(sqlx::FromRow)]
struct CommandColumns {
    id: i64,
    source: String,
    workflow_id: String,
    action: String,
    from_step: Option<i64>,
    reason: Option<String>,
    requested_by: String,
    requested_ms: Millis,
    idempotency_key: String,
    state: String,
    attempts: i64,
    next_attempt_ms: Millis,
    said: Option<String>,
    delivered_ms: Option<Millis>,
    answered_ms: Option<Millis>,
}

impl From<CommandColumns> for OutboxCommand {
    fn from(row: CommandColumns) -> Self {
        Self {
            id: row.id,
            source: row.source,
            workflow_id: row.workflow_id,
            action: row.action,
            from_step: row.from_step,
            reason: row.reason,
            requested_by: row.requested_by,
            requested_ms: row.requested_ms,
            idempotency_key: row.idempotency_key,
            state: row.state,
            attempts: row.attempts,
            next_attempt_ms: row.next_attempt_ms,
            said: row.said,
            delivered_ms: row.delivered_ms,
            answered_ms: row.answered_ms,
        }
    }
}

fn commands(rows: Vec<CommandColumns>) -> Vec<OutboxCommand> {
    rows.into_iter().map(OutboxCommand::from).collect()
}

fn outbox_error(error: impl Into<StoreError>) -> OutboxError {
    OutboxError(Box::new(error.into()))
}

impl Store {
    /// The commands asked of run `workflow_id`, newest first.
    pub async fn commands_of(&self, workflow_id: &str) -> Result<Vec<OutboxCommand>, StoreError> {
        let rows: Vec<CommandColumns> = on_backend!(&self.pool, pool => {
            sqlx::query_as(
                "SELECT * FROM engine_commands WHERE workflow_id = $1 ORDER BY id DESC LIMIT 50",
            )
            .bind(workflow_id)
            .fetch_all(pool)
            .await?
        });
        Ok(commands(rows))
    }
}

#[async_trait]
impl CommandOutbox for Store {
    async fn request(
        &self,
        command: NewCommand<'_>,
        now: Millis,
    ) -> Result<Option<(OutboxCommand, WorkflowStatus)>, OutboxError> {
        let mut tx = self.write_transaction().await.map_err(outbox_error)?;
        let (row, status): (CommandColumns, _) = on_backend!(&mut tx, tx => {
            let status: Option<String> =
                sqlx::query_scalar("SELECT status FROM workflows WHERE id = $1")
                    .bind(command.workflow_id)
                    .fetch_optional(&mut **tx)
                    .await
                    .map_err(outbox_error)?;
            let Some(status) = status.as_deref().and_then(WorkflowStatus::parse) else {
                return Ok(None);
            };
            let row = sqlx::query_as(
                "INSERT INTO engine_commands (source, workflow_id, action, from_step, reason,
                     requested_by, requested_ms, idempotency_key, next_attempt_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING *",
            )
            .bind(command.source)
            .bind(command.workflow_id)
            .bind(command.action)
            .bind(command.from_step.map(i64::from))
            .bind(command.reason)
            .bind(command.requested_by)
            .bind(now)
            .bind(command.idempotency_key)
            .bind(now)
            .fetch_one(&mut **tx)
            .await
            .map_err(outbox_error)?;
            (row, status)
        });
        tx.commit().await.map_err(outbox_error)?;
        Ok(Some((row.into(), status)))
    }

    async fn due(
        &self,
        source: &str,
        now: Millis,
        limit: i64,
    ) -> Result<Vec<OutboxCommand>, OutboxError> {
        let rows: Vec<CommandColumns> = on_backend!(&self.pool, pool => {
            sqlx::query_as(
                "SELECT * FROM engine_commands
                 WHERE source = $1 AND state IN ('requested', 'delivered')
                   AND next_attempt_ms <= $2
                 ORDER BY id LIMIT $3",
            )
            .bind(source)
            .bind(now)
            .bind(limit)
            .fetch_all(pool)
            .await
            .map_err(outbox_error)?
        });
        Ok(commands(rows))
    }

    async fn next_due(&self, source: &str) -> Result<Option<Millis>, OutboxError> {
        on_backend!(&self.pool, pool => {
            sqlx::query_scalar(
                "SELECT min(next_attempt_ms) FROM engine_commands
                 WHERE source = $1 AND state IN ('requested', 'delivered')",
            )
            .bind(source)
            .fetch_one(pool)
            .await
            .map_err(outbox_error)
        })
    }

    async fn delivered(
        &self,
        id: i64,
        now: Millis,
        next_attempt_ms: Millis,
        failure: Option<&str>,
    ) -> Result<(), OutboxError> {
        let mut tx = self.write_transaction().await.map_err(outbox_error)?;
        on_backend!(&mut tx, tx => {
            sqlx::query(
                "UPDATE engine_commands SET attempts = attempts + 1, next_attempt_ms = $1,
                     said = $2,
                     state = CASE WHEN $2 IS NULL THEN 'delivered' ELSE state END,
                     delivered_ms = CASE WHEN $2 IS NULL THEN COALESCE(delivered_ms, $3)
                                         ELSE delivered_ms END
                 WHERE id = $4 AND state IN ('requested', 'delivered')",
            )
            .bind(next_attempt_ms)
            .bind(failure)
            .bind(now)
            .bind(id)
            .execute(&mut **tx)
            .await
            .map_err(outbox_error)?
            .rows_affected()
        });
        tx.commit().await.map_err(outbox_error)?;
        Ok(())
    }

    async fn answer(
        &self,
        source: &str,
        id: i64,
        answer: &Answer,
        now: Millis,
    ) -> Result<Option<String>, OutboxError> {
        let (state, said) = match answer {
            Answer::Accepted => ("accepted", None),
            Answer::Refused(reason) => ("refused", Some(reason.as_str())),
        };
        let mut tx = self.write_transaction().await.map_err(outbox_error)?;
        let answered: Option<String> = on_backend!(&mut tx, tx => {
            sqlx::query_scalar(
                // An answer to a command still `requested` came back from the delivery
                // itself (a webhook's reply): that delivery counts too.
                "UPDATE engine_commands SET state = $1, said = $2, answered_ms = $3,
                     delivered_ms = COALESCE(delivered_ms, $3),
                     attempts = attempts + CASE WHEN state = 'requested' THEN 1 ELSE 0 END
                 WHERE id = $4 AND source = $5 AND state IN ('requested', 'delivered')
                 RETURNING workflow_id",
            )
            .bind(state)
            .bind(said)
            .bind(now)
            .bind(id)
            .bind(source)
            .fetch_optional(&mut **tx)
            .await
            .map_err(outbox_error)?
        });
        tx.commit().await.map_err(outbox_error)?;
        Ok(answered)
    }
}

/// A pushing source an admin declared through the API, as kept.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct KeptDeclaration {
    pub name: String,
    /// The declaration as given (JSON).
    pub declaration: String,
}

impl Store {
    /// The pushing sources admins declared through the API, by name.
    pub async fn declared_sources(&self) -> Result<Vec<KeptDeclaration>, StoreError> {
        Ok(on_backend!(&self.pool, pool => {
            sqlx::query_as("SELECT name, declaration FROM push_sources ORDER BY name")
                .fetch_all(pool)
                .await?
        }))
    }

    /// Keeps the `declaration` (JSON) of source `name`, declared by `by`; `false` when one
    /// of that name is kept already.
    pub async fn declare_source(
        &self,
        name: &str,
        declaration: &str,
        by: &str,
        now: Millis,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write_transaction().await?;
        let added = on_backend!(&mut tx, tx => {
            sqlx::query(
                "INSERT INTO push_sources (name, declaration, declared_by, declared_ms)
                 VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO NOTHING",
            )
            .bind(name)
            .bind(declaration)
            .bind(by)
            .bind(now)
            .execute(&mut **tx)
            .await?
            .rows_affected()
        });
        tx.commit().await?;
        Ok(added > 0)
    }

    /// Forgets the declaration of source `name`; whether one was kept.
    pub async fn forget_source(&self, name: &str) -> Result<bool, StoreError> {
        let mut tx = self.write_transaction().await?;
        let removed = on_backend!(&mut tx, tx => {
            sqlx::query("DELETE FROM push_sources WHERE name = $1")
                .bind(name)
                .execute(&mut **tx)
                .await?
                .rows_affected()
        });
        tx.commit().await?;
        Ok(removed > 0)
    }
}

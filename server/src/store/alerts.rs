//! Alerts as stored: fired and resolved in the write transaction of the change that
//! caused them (see `crate::alerts`), read by the inbox and its badge, acknowledged and
//! muted by operators.

use super::rows::Millis;
use super::{push_sight, Store, StoreError, Writer};
use crate::alerts::AlertMoves;
use crate::source::clock::to_datetime;
use app::model::alert::{
    Alert, AlertCondition, AlertPage, AlertQuery, AlertState, OPEN_ALERTS_COUNTED_AT_MOST,
};
use sqlx::QueryBuilder;

/// An alert's row, with the end of the mute that covers it (if one does).
#[derive(sqlx::FromRow)]
struct AlertColumns {
    id: i64,
    condition: String,
    engine: String,
    workflow_id: Option<String>,
    workflow_type: Option<String>,
    summary: String,
    fired_ms: Millis,
    resolved_ms: Option<Millis>,
    acknowledged_by: Option<String>,
    acknowledged_ms: Option<Millis>,
    muted_until_ms: Option<Millis>,
}

impl AlertColumns {
    /// As shown; a condition this version does not know (written by a newer one) is
    /// left out.
    fn to_wire(self) -> Option<Alert> {
        Some(Alert {
            id: self.id,
            condition: AlertCondition::parse(&self.condition)?,
            engine: self.engine,
            workflow_id: self.workflow_id,
            workflow_type: self.workflow_type,
            summary: self.summary,
            fired_at: to_datetime(self.fired_ms),
            resolved_at: self.resolved_ms.map(to_datetime),
            acknowledged_by: self.acknowledged_by,
            acknowledged_at: self.acknowledged_ms.map(to_datetime),
            muted_until: self.muted_until_ms.map(to_datetime),
        })
    }
}

/// What a mute covers: an alert's workflow type, or for an alert about no run its engine.
const MUTE_SCOPE_SQL: &str = "COALESCE(a.workflow_type, 'engine:' || a.engine)";

/// The mute scope of `alert`, as [`MUTE_SCOPE_SQL`] says it.
pub fn mute_scope(alert: &Alert) -> String {
    match &alert.workflow_type {
        Some(workflow_type) => workflow_type.clone(),
        None => format!("engine:{}", alert.engine),
    }
}

/// Alerts with the mute covering each at a moment the caller puts last (a bind), then
/// its `WHERE ...`.
fn select_alerts_muted_after() -> String {
    format!(
        "SELECT a.id, a.condition, a.engine, a.workflow_id, a.workflow_type, a.summary,
                a.fired_ms, a.resolved_ms, a.acknowledged_by, a.acknowledged_ms,
                m.until_ms AS muted_until_ms
         FROM alerts a LEFT JOIN alert_mutes m
           ON m.scope = {MUTE_SCOPE_SQL} AND m.condition = a.condition AND m.until_ms > "
    )
}

/// One alert by id (`$2`) with the mute covering it at `$1`.
static ALERT_BY_ID: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| format!("{}$1 WHERE a.id = $2", select_alerts_muted_after()));

const FIRE: &str = "INSERT INTO alerts
       (subject, condition, engine, workflow_id, workflow_type, summary, fired_ms)
     VALUES ($1, $2, $3, $4, $5, $6, $7)
     ON CONFLICT (subject, condition) WHERE resolved_ms IS NULL DO NOTHING
     RETURNING id";

const RESOLVE: &str = "UPDATE alerts SET resolved_ms = $1
     WHERE subject = $2 AND condition = $3 AND resolved_ms IS NULL RETURNING id";

const ENQUEUE: &str =
    "INSERT INTO alert_deliveries (alert_id, channel, news, created_ms, next_attempt_ms)
     VALUES ($1, $2, 'fired', $3, $3)";

/// A resolved alert is told to the channels that were told it fired (and not muted).
const ENQUEUE_RESOLVED: &str =
    "INSERT INTO alert_deliveries (alert_id, channel, news, created_ms, next_attempt_ms)
     SELECT DISTINCT alert_id, channel, 'resolved', $2, $2 FROM alert_deliveries
     WHERE alert_id = $1 AND news = 'fired' AND state <> 'muted'";

impl Writer {
    /// Fires and resolves what `moves` says, in this transaction: an alert already
    /// holding does not fire again, one not holding is not resolved, one a rule of the
    /// alerts file turns off is not raised. Each alert that fires (unmuted) is written to
    /// the outbox of every channel that takes it, and one that resolves to the channels
    /// told it fired. Returns the alerts that changed, as they now are.
    pub async fn move_alerts(
        &mut self,
        moves: &AlertMoves,
        now: Millis,
    ) -> Result<Vec<Alert>, StoreError> {
        if moves.is_empty() {
            return Ok(Vec::new());
        }
        // Resolutions first: a condition that clears and holds again at once (another
        // step stuck) is a new alert.
        let mut resolved: Vec<i64> = Vec::new();
        for (subject, condition) in &moves.resolve {
            let ids: Vec<i64> = on_backend!(&mut self.tx, tx => {
                sqlx::query_scalar(RESOLVE)
                    .bind(now)
                    .bind(subject)
                    .bind(condition.as_str())
                    .fetch_all(&mut **tx)
                    .await?
            });
            resolved.extend(ids);
        }
        // Each changed alert with the channels to tell it fired (none for a resolution).
        let mut changed: Vec<(i64, Vec<String>)> = Vec::new();
        for alert in &moves.fire {
            if self.alerting.silences(alert) {
                continue;
            }
            let fired: Option<i64> = on_backend!(&mut self.tx, tx => {
                sqlx::query_scalar(FIRE)
                    .bind(&alert.subject)
                    .bind(alert.condition.as_str())
                    .bind(&alert.engine)
                    .bind(&alert.workflow_id)
                    .bind(&alert.workflow_type)
                    .bind(&alert.summary)
                    .bind(now)
                    .fetch_optional(&mut **tx)
                    .await?
            });
            if let Some(id) = fired {
                let to = self
                    .alerting
                    .channels
                    .iter()
                    .filter(|channel| channel.takes(alert))
                    .map(|channel| channel.name.clone())
                    .collect();
                changed.push((id, to));
            }
        }
        let mut alerts = Vec::with_capacity(changed.len() + resolved.len());
        for (id, to) in changed
            .into_iter()
            .chain(resolved.into_iter().map(|id| (id, Vec::new())))
        {
            let row: Option<AlertColumns> = on_backend!(&mut self.tx, tx => {
                sqlx::query_as(&ALERT_BY_ID)
                    .bind(now)
                    .bind(id)
                    .fetch_optional(&mut **tx)
                    .await?
            });
            let Some(alert) = row.and_then(AlertColumns::to_wire) else {
                continue;
            };
            if alert.resolved_at.is_some() {
                on_backend!(&mut self.tx, tx => {
                    sqlx::query(ENQUEUE_RESOLVED).bind(id).bind(now).execute(&mut **tx).await?.rows_affected()
                });
            } else if alert.muted_until.is_none() {
                for channel in &to {
                    on_backend!(&mut self.tx, tx => {
                        sqlx::query(ENQUEUE).bind(id).bind(channel).bind(now).execute(&mut **tx).await?.rows_affected()
                    });
                }
            }
            alerts.push(alert);
        }
        Ok(alerts)
    }
}

/// A delivery the outbox holds for a channel, with its alert as it now is.
#[derive(Debug, Clone)]
pub struct DueDelivery {
    pub id: i64,
    pub channel: String,
    /// `fired` or `resolved`.
    pub news: String,
    pub attempts: i64,
    pub alert: Alert,
}

/// How a delivery left the outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    /// The channel took it, alone.
    Sent,
    /// The channel took it within a digest.
    Digested,
    /// Its alert was muted before it could be sent.
    Muted,
    /// No channel of that name is declared any more.
    Unrouted,
}

impl Settled {
    fn as_str(self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::Digested => "digested",
            Self::Muted => "muted",
            Self::Unrouted => "unrouted",
        }
    }
}

#[derive(sqlx::FromRow)]
struct DueColumns {
    delivery_id: i64,
    channel: String,
    news: String,
    attempts: i64,
    #[sqlx(flatten)]
    alert: AlertColumns,
}

/// The deliveries due at `$1` (which is also the mutes' moment), oldest first, `$2` at most.
static DUE: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "{}$1 JOIN (SELECT id AS delivery_id, alert_id, channel, news, attempts
                    FROM alert_deliveries WHERE state = 'due' AND next_attempt_ms <= $1
                    ORDER BY next_attempt_ms, id LIMIT $2) d ON d.alert_id = a.id
         ORDER BY d.delivery_id",
        select_alerts_muted_after().replace(
            "SELECT a.id,",
            "SELECT d.delivery_id, d.channel, d.news, d.attempts, a.id,"
        )
    )
});

/// Deliveries given as a JSON array of ids (`$1`), as each backend lists one.
fn listed(dialect: super::Dialect) -> &'static str {
    dialect.pick(
        "(SELECT value FROM json_each($1))",
        "(SELECT CAST(value AS BIGINT) FROM jsonb_array_elements_text(CAST($1 AS jsonb)))",
    )
}

impl Store {
    /// A page of the alerts of the engines `sight` names (all for `None`), newest first.
    pub async fn alerts(
        &self,
        query: &AlertQuery,
        sight: Option<&[String]>,
        now: Millis,
    ) -> Result<AlertPage, StoreError> {
        let limit = query.effective_limit();
        let mut rows: Vec<AlertColumns> = on_backend!(&self.pool, pool => {
            let mut select = QueryBuilder::new(select_alerts_muted_after());
            select.push_bind(now).push(" WHERE 1 = 1");
            match query.state {
                AlertState::Firing => select.push(" AND a.resolved_ms IS NULL"),
                AlertState::Resolved => select.push(" AND a.resolved_ms IS NOT NULL"),
                AlertState::All => &mut select,
            };
            if let Some(workflow_id) = &query.workflow_id {
                select.push(" AND a.workflow_id = ").push_bind(workflow_id.clone());
            }
            if let Some(before) = query.before {
                select.push(" AND a.id < ").push_bind(before);
            }
            push_sight(&mut select, sight);
            select
                .push(" ORDER BY a.id DESC LIMIT ")
                .push_bind(i64::from(limit) + 1);
            select.build_query_as().fetch_all(pool).await?
        });
        let next_before = super::next_before(&mut rows, limit, |row| row.id);
        Ok(AlertPage {
            alerts: rows.into_iter().filter_map(AlertColumns::to_wire).collect(),
            next_before,
            open: self.open_alerts(sight, now).await?,
        })
    }

    /// How many alerts of the engines `sight` names are open (holding, not acknowledged,
    /// not muted), up to [`OPEN_ALERTS_COUNTED_AT_MOST`].
    pub async fn open_alerts(
        &self,
        sight: Option<&[String]>,
        now: Millis,
    ) -> Result<u64, StoreError> {
        let count: i64 = on_backend!(&self.pool, pool => {
            let mut select = QueryBuilder::new(format!(
                "SELECT COUNT(*) FROM (SELECT 1 FROM alerts a
                 WHERE a.resolved_ms IS NULL AND a.acknowledged_ms IS NULL
                   AND NOT EXISTS (SELECT 1 FROM alert_mutes m
                     WHERE m.scope = {MUTE_SCOPE_SQL} AND m.condition = a.condition
                       AND m.until_ms > "
            ));
            select.push_bind(now).push(")");
            push_sight(&mut select, sight);
            select
                .push(" LIMIT ")
                .push_bind(OPEN_ALERTS_COUNTED_AT_MOST as i64)
                .push(") counted");
            select.build_query_scalar().fetch_one(pool).await?
        });
        Ok(count.max(0) as u64)
    }

    /// The subjects of the holding alerts of `condition`.
    pub async fn holding_alerts(
        &self,
        condition: AlertCondition,
    ) -> Result<Vec<String>, StoreError> {
        let subjects: Vec<String> = on_backend!(&self.pool, pool => {
            sqlx::query_scalar("SELECT subject FROM alerts WHERE condition = $1 AND resolved_ms IS NULL")
                .bind(condition.as_str())
                .fetch_all(pool)
                .await?
        });
        Ok(subjects)
    }

    /// When run `workflow_id`'s step `step_number` last logged, if it ever did.
    pub async fn last_log_ms(
        &self,
        workflow_id: &str,
        step_number: u32,
    ) -> Result<Option<Millis>, StoreError> {
        let at: Option<Millis> = on_backend!(&self.pool, pool => {
            sqlx::query_scalar(
                "SELECT at_ms FROM step_logs WHERE workflow_id = $1 AND step_number = $2
                 ORDER BY id DESC LIMIT 1",
            )
            .bind(workflow_id)
            .bind(i64::from(step_number))
            .fetch_optional(pool)
            .await?
        });
        Ok(at)
    }

    /// Which of the runs `ids` still run (or are held mid-run).
    pub async fn still_running(
        &self,
        ids: &[String],
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        let rows = self.workflows_by_id(ids, 0).await?;
        Ok(rows
            .into_iter()
            .filter(|row| !row.status.is_terminal())
            .map(|row| row.id)
            .collect())
    }

    /// Raises and sends alerts as `settings` say from now on.
    pub fn alert_by(&self, settings: crate::alerts::settings::SharedSettings) {
        *self
            .alerting
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = settings;
    }

    /// The alerts file in force.
    pub fn alert_settings(&self) -> crate::alerts::settings::SharedSettings {
        self.alerting
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// At most `limit` deliveries due at `now`, oldest first.
    pub async fn due_deliveries(
        &self,
        now: Millis,
        limit: i64,
    ) -> Result<Vec<DueDelivery>, StoreError> {
        let rows: Vec<DueColumns> = on_backend!(&self.pool, pool => {
            sqlx::query_as(&DUE).bind(now).bind(limit).fetch_all(pool).await?
        });
        Ok(rows
            .into_iter()
            .filter_map(|row| {
                Some(DueDelivery {
                    id: row.delivery_id,
                    channel: row.channel,
                    news: row.news,
                    attempts: row.attempts,
                    alert: row.alert.to_wire()?,
                })
            })
            .collect())
    }

    /// When the next delivery is due, if one is.
    pub async fn next_delivery_due(&self) -> Result<Option<Millis>, StoreError> {
        let next: Option<Millis> = on_backend!(&self.pool, pool => {
            sqlx::query_scalar("SELECT MIN(next_attempt_ms) FROM alert_deliveries WHERE state = 'due'")
                .fetch_one(pool)
                .await?
        });
        Ok(next)
    }

    /// Takes deliveries `ids` out of the outbox, `how` they left it.
    pub async fn settle_deliveries(
        &self,
        ids: &[i64],
        how: Settled,
        now: Millis,
    ) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let sql = format!(
            "UPDATE alert_deliveries SET state = $2, sent_ms = $3, last_error = NULL
             WHERE state = 'due' AND id IN {}",
            listed(self.dialect())
        );
        write_alone!(self, &sql, super::json_text(ids), how.as_str(), now);
        Ok(())
    }

    /// Leaves deliveries `ids` due again at `next`, one try more, with why this one failed.
    pub async fn retry_deliveries(
        &self,
        ids: &[i64],
        next: Millis,
        error: &str,
    ) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let sql = format!(
            "UPDATE alert_deliveries SET attempts = attempts + 1, next_attempt_ms = $2,
                 last_error = $3
             WHERE state = 'due' AND id IN {}",
            listed(self.dialect())
        );
        let error: String = error.chars().take(500).collect();
        write_alone!(self, &sql, super::json_text(ids), next, error);
        Ok(())
    }

    /// Alert `id` as it is now, if there is one.
    pub async fn alert(&self, id: i64, now: Millis) -> Result<Option<Alert>, StoreError> {
        let row: Option<AlertColumns> = on_backend!(&self.pool, pool => {
            sqlx::query_as(&ALERT_BY_ID).bind(now).bind(id).fetch_optional(pool).await?
        });
        Ok(row.and_then(AlertColumns::to_wire))
    }

    /// Records that `actor` acknowledged alert `id`; whether it was not already.
    pub async fn acknowledge_alert(
        &self,
        id: i64,
        actor: &str,
        now: Millis,
    ) -> Result<bool, StoreError> {
        let changed = write_alone!(
            self,
            "UPDATE alerts SET acknowledged_by = $1, acknowledged_ms = $2
             WHERE id = $3 AND acknowledged_ms IS NULL",
            actor,
            now,
            id,
        );
        Ok(changed > 0)
    }

    /// Mutes `condition` for `scope` (see [`mute_scope`]) until `until` (by `actor`), or
    /// unmutes it with `None`.
    pub async fn mute_alerts(
        &self,
        scope: &str,
        condition: AlertCondition,
        until: Option<Millis>,
        actor: &str,
    ) -> Result<(), StoreError> {
        match until {
            Some(until) => write_alone!(
                self,
                "INSERT INTO alert_mutes (scope, condition, until_ms, muted_by)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (scope, condition)
                 DO UPDATE SET until_ms = excluded.until_ms, muted_by = excluded.muted_by",
                scope,
                condition.as_str(),
                until,
                actor,
            ),
            None => write_alone!(
                self,
                "DELETE FROM alert_mutes WHERE scope = $1 AND condition = $2",
                scope,
                condition.as_str(),
            ),
        };
        Ok(())
    }
}

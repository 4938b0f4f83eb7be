//! The shared log of live events, on PostgreSQL: several instances of Stepline on one
//! database send their clients the same events under the same `seq` by reading them from
//! here (see `live::shared`). On SQLite there is one instance, whose hub numbers its own.

use super::rows::Millis;
use super::{json_text, Backend, Dialect, Store, StoreError, Writer};
use app::model::LiveEvent;
use sqlx::QueryBuilder;

/// The channel every instance is told on that live events were committed.
pub const LIVE_CHANNEL: &str = "stepline_live";
/// How many of the newest live events the log keeps for clients that reconnect (past
/// them a client gets a snapshot, as past one instance's ring), and how often the older
/// ones are forgotten (every this many events).
const LIVE_EVENTS_KEPT: i64 = 100_000;
const FORGOTTEN_EVERY: i64 = 1_000;
/// Rows one insert of live events writes (4 bound values each).
const EVENTS_PER_STATEMENT: usize = 1_000;

/// A live event as the log keeps it.
#[derive(Debug, sqlx::FromRow)]
pub struct LoggedEvent {
    pub seq: i64,
    pub engine: Option<String>,
    /// The event's JSON ([`LiveEvent`]), without its seq.
    pub event: String,
}

impl Store {
    /// Whether this store keeps the live events for every instance on it (PostgreSQL).
    pub fn shares_live_events(&self) -> bool {
        self.dialect() == Dialect::Postgres
    }

    /// Appends `events` about runs of `engine` to the shared log, in a transaction of
    /// their own (for events that no other write carries).
    pub async fn append_live(
        &self,
        engine: Option<&str>,
        events: &[LiveEvent],
        now: Millis,
    ) -> Result<(), StoreError> {
        let mut writer = self.begin().await?;
        writer.record_live(engine, events, now).await?;
        writer.commit().await
    }

    /// Up to `limit` logged events after `seq`, in order.
    pub async fn live_events_after(
        &self,
        seq: u64,
        limit: i64,
    ) -> Result<Vec<LoggedEvent>, StoreError> {
        let Backend::Postgres(pool) = &self.pool else {
            return Ok(Vec::new());
        };
        Ok(sqlx::query_as(
            "SELECT seq, engine, event FROM live_events WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(i64::try_from(seq).unwrap_or(i64::MAX))
        .bind(limit)
        .fetch_all(pool)
        .await?)
    }

    /// The seq of the newest logged event (0 when there is none).
    pub async fn last_live_seq(&self) -> Result<u64, StoreError> {
        let Backend::Postgres(pool) = &self.pool else {
            return Ok(0);
        };
        let last: i64 = sqlx::query_scalar("SELECT COALESCE(max(seq), 0) FROM live_events")
            .fetch_one(pool)
            .await?;
        Ok(u64::try_from(last).unwrap_or(0))
    }

    /// A connection that hears of each commit of live events ([`LIVE_CHANNEL`]); `None`
    /// on SQLite.
    pub async fn live_listener(&self) -> Result<Option<sqlx::postgres::PgListener>, StoreError> {
        let Backend::Postgres(pool) = &self.pool else {
            return Ok(None);
        };
        let mut listener = sqlx::postgres::PgListener::connect_with(pool).await?;
        listener.listen(LIVE_CHANNEL).await?;
        Ok(Some(listener))
    }
}

impl Writer {
    /// Appends `events` about runs of `engine` to the shared log (PostgreSQL), numbered
    /// after the last one, and tells every instance at commit; `false` on SQLite, where
    /// nothing is logged and the caller's hub numbers the events itself.
    pub async fn record_live(
        &mut self,
        engine: Option<&str>,
        events: &[LiveEvent],
        now: Millis,
    ) -> Result<bool, StoreError> {
        let Backend::Postgres(tx) = &mut self.tx else {
            return Ok(false);
        };
        if events.is_empty() {
            return Ok(true);
        }
        // The write lock is held (see `Store::write_transaction`): no other transaction
        // numbers events until this one ends.
        let last: i64 = sqlx::query_scalar("SELECT COALESCE(max(seq), 0) FROM live_events")
            .fetch_one(&mut **tx)
            .await?;
        let mut seq = last;
        for chunk in events.chunks(EVENTS_PER_STATEMENT) {
            let mut insert =
                QueryBuilder::new("INSERT INTO live_events (seq, at_ms, engine, event) ");
            insert.push_values(chunk, |mut values, event| {
                seq += 1;
                values
                    .push_bind(seq)
                    .push_bind(now)
                    .push_bind(engine.map(str::to_owned))
                    .push_bind(json_text(event));
            });
            insert.build().execute(&mut **tx).await?;
        }
        if seq / FORGOTTEN_EVERY > last / FORGOTTEN_EVERY {
            sqlx::query("DELETE FROM live_events WHERE seq <= $1")
                .bind(seq - LIVE_EVENTS_KEPT)
                .execute(&mut **tx)
                .await?;
        }
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(LIVE_CHANNEL)
            .execute(&mut **tx)
            .await?;
        Ok(true)
    }
}

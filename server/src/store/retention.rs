//! Forgetting what is past its age, a small batch at a time: closed runs (with their
//! steps, log lines and engine positions), analytics rollups, and the free pages the
//! deletions leave. Each batch is its own short transaction, so the projector's writes
//! and the pages' reads go on between them.

use super::rows::Millis;
use super::{sql_list, Backend, Store, StoreError};
use app::model::WorkflowStatus;
use std::sync::LazyLock;

/// Runs that have ended and will not change again by themselves.
static CLOSED_SQL: LazyLock<String> = LazyLock::new(|| {
    sql_list(
        WorkflowStatus::ALL
            .into_iter()
            .filter(|status| status.is_terminal()),
    )
});

/// The share of the file that may stay free (reused by the next writes) before the
/// rest is given back to the file system.
const FREE_PAGES_KEPT_PERCENT: i64 = 10;

impl Store {
    /// Deletes at most `batch` of the runs that closed before `before`, oldest first,
    /// with everything stored under them; returns how many went. Open runs are kept
    /// however old they are.
    pub async fn delete_closed_runs(&self, before: Millis, batch: u32) -> Result<u64, StoreError> {
        let mut tx = self.write_transaction().await?;
        let dialect = self.dialect();
        let doomed = format!(
            "SELECT id, engine FROM workflows {}
             WHERE completed_ms < $1 AND status IN {} ORDER BY completed_ms LIMIT $2",
            // SQLite would rather walk the status index over every closed run.
            dialect.pick("INDEXED BY workflows_by_completed", ""),
            *CLOSED_SQL
        );
        let listed = dialect.pick("json_each($1)", "jsonb_array_elements(CAST($1 AS jsonb))");
        // Steps and log lines go with their run (ON DELETE CASCADE); the counters and
        // the text index by the tables' triggers.
        let positions = format!(
            "DELETE FROM engine_positions WHERE (engine, key) IN
             (SELECT value ->> 1, value ->> 0 FROM {listed})"
        );
        let runs = format!("DELETE FROM workflows WHERE id IN (SELECT value ->> 0 FROM {listed})");
        let deleted = on_backend!(&mut tx, tx => {
            let doomed: Vec<(String, String)> = sqlx::query_as(&doomed)
                .bind(before)
                .bind(i64::from(batch))
                .fetch_all(&mut **tx)
                .await?;
            if doomed.is_empty() {
                return Ok(0);
            }
            let pairs = super::json_text(&doomed);
            sqlx::query(&positions).bind(&pairs).execute(&mut **tx).await?;
            sqlx::query(&runs)
                .bind(&pairs)
                .execute(&mut **tx)
                .await?
                .rows_affected()
        });
        tx.commit().await?;
        self.stats.counters_changed();
        Ok(deleted)
    }

    /// Deletes at most `batch` rows of each analytics rollup (runs' and steps') that began
    /// before `before`; returns how many rows went.
    pub async fn delete_rollups(&self, before: Millis, batch: u32) -> Result<u64, StoreError> {
        let mut tx = self.write_transaction().await?;
        let mut deleted = 0;
        for (table, key) in [
            ("analytics_runs", "bucket_ms, workflow_type"),
            ("analytics_steps", "bucket_ms, workflow_type, step_name"),
        ] {
            let expired = format!(
                "DELETE FROM {table} WHERE ({key}) IN (SELECT {key} FROM {table}
                 WHERE bucket_ms < $1 ORDER BY bucket_ms LIMIT $2)"
            );
            deleted += on_backend!(&mut tx, tx => {
                sqlx::query(&expired)
                    .bind(before)
                    .bind(i64::from(batch))
                    .execute(&mut **tx)
                    .await?
                    .rows_affected()
            });
        }
        tx.commit().await?;
        self.stats.counters_changed();
        Ok(deleted)
    }

    /// Drops the counters' rows that count nothing any more (a type no run has now, a
    /// day whose runs are all gone).
    pub async fn drop_empty_counters(&self) -> Result<(), StoreError> {
        let mut tx = self.write_transaction().await?;
        on_backend!(&mut tx, tx => {
            sqlx::query("DELETE FROM workflow_counts WHERE runs = 0")
                .execute(&mut **tx)
                .await?;
            sqlx::query("DELETE FROM ended_counts WHERE runs = 0")
                .execute(&mut **tx)
                .await?;
        });
        tx.commit().await?;
        self.stats.counters_changed();
        Ok(())
    }

    /// Gives back to the file system at most `pages` of the free pages past the share
    /// kept for reuse; returns how many pages it gave back. A database created before
    /// incremental vacuum was on keeps its free pages (and reuses them). PostgreSQL's
    /// autovacuum makes the space of deleted rows reusable by itself: nothing is done here.
    pub async fn release_free_pages(&self, pages: u32) -> Result<u64, StoreError> {
        let Backend::Sqlite(writes) = &self.writes else {
            return Ok(0);
        };
        let mut conn = writes.acquire().await?;
        let (total, free): (i64, i64) =
            sqlx::query_as("SELECT * FROM pragma_page_count, pragma_freelist_count")
                .fetch_one(&mut *conn)
                .await?;
        let surplus = free - total * FREE_PAGES_KEPT_PERCENT / 100;
        if surplus <= 0 {
            return Ok(0);
        }
        let release = surplus.min(i64::from(pages));
        sqlx::query(&format!("PRAGMA incremental_vacuum({release})"))
            .execute(&mut *conn)
            .await?;
        let left: i64 = sqlx::query_scalar("SELECT * FROM pragma_freelist_count")
            .fetch_one(&mut *conn)
            .await?;
        Ok(u64::try_from(free - left).unwrap_or(0))
    }
}

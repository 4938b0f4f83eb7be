//! Retention: closed runs older than their age are forgotten in the background, the
//! analytics rollups later, in small batches with a pause between them so the
//! projector and the pages never wait long; the file's free pages are given back.

use crate::source::{now_ms, Millis};
use crate::store::{Store, StoreError};
use std::time::Duration;

/// How long things are kept, and how retention paces itself.
#[derive(Debug, Clone)]
pub struct RetentionSettings {
    /// Closed runs older than this (by their end) are deleted; `None` keeps them all.
    pub runs: Option<Duration>,
    /// Analytics rollups older than this are deleted; `None` keeps them all.
    pub analytics: Option<Duration>,
    /// How often a pass starts.
    pub every: Duration,
    /// Runs (or rollup rows) per transaction.
    pub batch: u32,
    /// The pause between two batches of one pass.
    pub pause: Duration,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        Self {
            runs: Some(Duration::from_secs(30 * 86_400)),
            analytics: Some(Duration::from_secs(400 * 86_400)),
            every: Duration::from_secs(60),
            batch: 100,
            pause: Duration::from_millis(20),
        }
    }
}

/// What one pass deleted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    pub runs: u64,
    pub rollup_rows: u64,
    pub pages_released: u64,
}

/// Free pages given back per step (4 KiB each), between pauses.
const PAGES_PER_STEP: u32 = 1_000;

/// Runs retention passes for as long as the process lives.
pub async fn run(store: Store, settings: RetentionSettings) {
    let mut tick = tokio::time::interval(settings.every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match sweep(&store, &settings, now_ms()).await {
            Ok(swept) if swept != Swept::default() => {
                tracing::info!(
                    runs = swept.runs,
                    rollup_rows = swept.rollup_rows,
                    pages_released = swept.pages_released,
                    "retention deleted what was past its age"
                );
            }
            Ok(_) => {}
            Err(error) => {
                let cause = app::model::error_chain(&error);
                tracing::error!(%cause, "retention pass failed; the next one tries again");
            }
        }
    }
}

/// One pass at `now`: deletes everything past its age, batch by batch, then gives back
/// the free pages that leaves.
pub async fn sweep(
    store: &Store,
    settings: &RetentionSettings,
    now: Millis,
) -> Result<Swept, StoreError> {
    let mut swept = Swept::default();
    let batch = settings.batch.max(1);
    if let Some(before) = cutoff(settings.runs, now) {
        loop {
            let deleted = store.delete_closed_runs(before, batch).await?;
            swept.runs += deleted;
            metrics::counter!(crate::metrics::RETENTION_DELETED, "what" => "runs")
                .increment(deleted);
            if deleted < u64::from(batch) {
                break;
            }
            tokio::time::sleep(settings.pause).await;
        }
    }
    if let Some(before) = cutoff(settings.analytics, now) {
        loop {
            let deleted = store.delete_rollups(before, batch).await?;
            swept.rollup_rows += deleted;
            metrics::counter!(crate::metrics::RETENTION_DELETED, "what" => "rollup_rows")
                .increment(deleted);
            if deleted == 0 {
                break;
            }
            tokio::time::sleep(settings.pause).await;
        }
    }
    if swept.runs > 0 || swept.rollup_rows > 0 {
        store.drop_empty_counters().await?;
    }
    loop {
        let released = store.release_free_pages(PAGES_PER_STEP).await?;
        swept.pages_released += released;
        if released < u64::from(PAGES_PER_STEP) {
            break;
        }
        tokio::time::sleep(settings.pause).await;
    }
    Ok(swept)
}

/// The instant before which things older than `age` are deleted.
fn cutoff(age: Option<Duration>, now: Millis) -> Option<Millis> {
    let age = Millis::try_from(age?.as_millis()).unwrap_or(Millis::MAX);
    Some(now.saturating_sub(age))
}

//! The hub of an instance among several on one PostgreSQL: fed from the store's shared log
//! of live events (see `store::live`), so that every instance sends its clients the same
//! events under the same `seq`, and a client that reconnects to another instance resumes
//! where it was, with no gap and nothing twice. What the projector changes reaches the log
//! in the same transaction as the change; what is published here otherwise goes to the log
//! in a transaction of its own, in order.

use super::LiveHub;
use crate::source::clock::now_ms;
use crate::store::{Store, StoreError};
use app::model::LiveEvent;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// The most logged events read at once.
const READ_AT_MOST: i64 = 1_000;
/// How often the log is read without being told: a notification lost while the listening
/// connection was down is made up for within this.
const READ_AT_LEAST_EVERY: Duration = Duration::from_secs(1);

/// A hub fed from `store`'s shared log, starting after its newest event, with the tasks
/// that feed it and that log what is published on it.
pub async fn shared_hub(store: &Store) -> Result<Arc<LiveHub>, StoreError> {
    let (to_log, published) = mpsc::unbounded_channel();
    let hub = Arc::new(LiveHub::numbered_from(
        store.last_live_seq().await? + 1,
        Some(to_log),
    ));
    tokio::spawn(log_published(store.clone(), published));
    tokio::spawn(follow(store.clone(), Arc::downgrade(&hub)));
    Ok(hub)
}

/// Appends what is published on the hub to the log, in order, each publication in a
/// transaction of its own.
async fn log_published(
    store: Store,
    mut published: mpsc::UnboundedReceiver<(Option<String>, Vec<LiveEvent>)>,
) {
    let mut queued = Vec::new();
    while published.recv_many(&mut queued, 256).await > 0 {
        for (engine, events) in queued.drain(..) {
            if let Err(error) = store
                .append_live(engine.as_deref(), &events, now_ms())
                .await
            {
                let cause = app::model::error_chain(&error);
                tracing::error!(%cause, events = events.len(), "live events not logged; their clients will catch up from the next snapshot");
            }
        }
    }
}

/// Reads what the log gained after what the hub has sent, whenever told (and at least
/// every [`READ_AT_LEAST_EVERY`]), until the hub is gone.
async fn follow(store: Store, hub: std::sync::Weak<LiveHub>) {
    let mut listener = None;
    loop {
        if listener.is_none() {
            match store.live_listener().await {
                Ok(found) => listener = found,
                Err(error) => {
                    let cause = app::model::error_chain(&error);
                    tracing::warn!(%cause, "not listening for live events; reading them every second");
                }
            }
        }
        let Some(fed) = hub.upgrade() else { return };
        match store
            .live_events_after(fed.current_seq(), READ_AT_MOST)
            .await
        {
            Ok(logged) => {
                let full = logged.len() == READ_AT_MOST as usize;
                for entry in logged {
                    let (Ok(seq), Ok(event)) = (
                        u64::try_from(entry.seq),
                        serde_json::from_str::<LiveEvent>(&entry.event),
                    ) else {
                        tracing::warn!(
                            seq = entry.seq,
                            "a logged live event does not read; skipped"
                        );
                        continue;
                    };
                    fed.deliver(seq, entry.engine.as_deref(), event);
                }
                if full {
                    continue;
                }
            }
            Err(error) => {
                let cause = app::model::error_chain(&error);
                tracing::warn!(%cause, "live events not read; trying again");
            }
        }
        drop(fed);
        match &mut listener {
            Some(heard) => {
                tokio::select! {
                    told = heard.recv() => if told.is_err() { listener = None },
                    () = tokio::time::sleep(READ_AT_LEAST_EVERY) => {}
                }
            }
            None => tokio::time::sleep(READ_AT_LEAST_EVERY).await,
        }
    }
}

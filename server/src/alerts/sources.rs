//! Degraded sources: an engine Stepline follows (a Temporal namespace, an Airflow) that
//! has not answered for a while is an alert, resolved when it answers again. Each
//! instance watches the sources it follows itself; one that another instance follows
//! (standby) is not judged here.

use super::{AlertMoves, NewAlert};
use crate::engines::health::HealthBoard;
use crate::live::LiveHub;
use crate::source::now_ms;
use crate::store::rows::Millis;
use crate::store::{Store, StoreError};
use app::model::alert::AlertCondition;
use app::model::{EngineHealth, EngineState};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// How long a source may not answer before it is an alert: a blip is not one.
pub const DEGRADED_FOR: Duration = Duration::from_secs(10);
/// How often the health board is looked at.
const LOOK_EVERY: Duration = Duration::from_secs(2);

/// Whether `health` says the source is degraded (and for long enough), is fine, or this
/// instance does not know (it follows the source on standby, or is still connecting).
pub fn judged(health: &EngineHealth, now: Millis) -> Option<bool> {
    match health.state {
        EngineState::Degraded => {
            let since = health.since.timestamp_millis();
            Some(now - since >= DEGRADED_FOR.as_millis() as i64).filter(|long_enough| *long_enough)
        }
        // Ok with a word is another instance following it (standby): not ours to judge.
        EngineState::Ok if health.message.is_none() => Some(false),
        EngineState::Ok | EngineState::Connecting => None,
    }
}

/// Watches `health` for as long as the process runs.
pub async fn watch(store: Store, hub: Arc<LiveHub>, health: HealthBoard) {
    let mut every = tokio::time::interval(LOOK_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut watch = SourceWatch::default();
    loop {
        every.tick().await;
        match watch.look(&store, &health.snapshot(), now_ms()).await {
            Ok(told) => crate::projector::publish(&store, &hub, told),
            Err(error) => {
                let cause = app::model::error_chain(&error);
                tracing::warn!(%cause, "the degraded-source alerts could not be written");
            }
        }
    }
}

/// What this instance last settled for each source: degraded or not.
#[derive(Default)]
pub struct SourceWatch {
    settled: HashMap<String, bool>,
}

impl SourceWatch {
    /// Fires and resolves what the sources' `healths` say at `now`, for those whose
    /// judgement changed since the last look (each is settled once at first); the live
    /// events to publish.
    pub async fn look(
        &mut self,
        store: &Store,
        healths: &[EngineHealth],
        now: Millis,
    ) -> Result<Vec<(String, Vec<app::model::LiveEvent>)>, StoreError> {
        let mut moves = AlertMoves::default();
        let mut judgements = Vec::new();
        for health in healths {
            let Some(degraded) = judged(health, now) else {
                continue;
            };
            if self.settled.get(&health.engine) == Some(&degraded) {
                continue;
            }
            let subject = format!("source:{}", health.engine);
            if degraded {
                let said = format!(
                    "{} has not answered since {}: {}",
                    health.engine,
                    health.since.format("%H:%M:%S UTC"),
                    health.message.as_deref().unwrap_or("no reason given")
                );
                moves.fire.push(NewAlert::about(
                    AlertCondition::SourceDegraded,
                    subject,
                    &health.engine,
                    &said,
                ));
            } else {
                moves
                    .resolve
                    .push((subject, AlertCondition::SourceDegraded));
            }
            judgements.push((health.engine.clone(), degraded));
        }
        let told = crate::projector::commit_alert_moves(store, &moves, now).await?;
        self.settled.extend(judgements);
        Ok(told)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engines::health::Report;

    #[test]
    fn a_source_is_degraded_once_it_has_not_answered_for_a_while() {
        let now = chrono::Utc::now().timestamp_millis();
        let mut health = EngineHealth::degraded("temporal:prod", "connection refused");
        assert_eq!(judged(&health, now), None, "a blip is not an alert yet");
        health.since -= chrono::Duration::seconds(11);
        assert_eq!(judged(&health, now), Some(true));
        assert_eq!(judged(&EngineHealth::ok("temporal:prod"), now), Some(false));
        assert_eq!(judged(&EngineHealth::standby("temporal:prod"), now), None);
        assert_eq!(
            judged(&EngineHealth::connecting("temporal:prod"), now),
            None
        );
    }
}

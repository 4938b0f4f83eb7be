//! A run's saved position: where its follower is (the last history event mapped, the
//! attempts known beyond it, whether the run closed), stored with the events it mapped,
//! so that following resumes from there after a restart or an outage.

use super::follower::Follower;
use serde::{Deserialize, Serialize};

/// Where a run's follower is, stored with the events it mapped.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(super) struct Position {
    #[serde(rename = "w")]
    pub(super) workflow_id: String,
    #[serde(rename = "r")]
    pub(super) run_id: String,
    /// The last history event mapped.
    #[serde(rename = "e")]
    pub(super) event_id: u64,
    /// The run closed and its history was read to the end.
    #[serde(rename = "c")]
    pub(super) closed: bool,
    /// Attempts known from describe, ahead of the history (see
    /// [`HistoryMapper::attempt_state`]).
    #[serde(rename = "a", default, skip_serializing_if = "Vec::is_empty")]
    pub(super) attempts: Vec<(u32, u32, bool, i64)>,
    /// The run is known from the listing only (see [`listed`]): no history to follow.
    #[serde(rename = "l", default, skip_serializing_if = "std::ops::Not::not")]
    pub(super) listed_only: bool,
}

impl Position {
    /// The position as stored with run `id`'s events.
    pub(super) fn stored_for(&self, id: &str) -> (String, String) {
        (
            id.to_owned(),
            serde_json::to_string(self).expect("a position serializes"),
        )
    }
}

impl Follower {
    pub(super) fn position(&self, closed: bool) -> (String, String) {
        let position = Position {
            workflow_id: self.workflow_id.clone(),
            run_id: self.run_id.clone(),
            event_id: self.mapper.last_event_id(),
            closed,
            attempts: if closed {
                Vec::new()
            } else {
                self.mapper.attempt_state()
            },
            listed_only: false,
        };
        position.stored_for(&self.id)
    }
}

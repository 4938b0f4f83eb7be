//! Admission: the order PENDING runs leave the queue in, and the concurrency slots
//! (global and per type) that decide when they may.

use super::driver::{Cycle, Driver};
use super::run::{holds_slot, Run};
use crate::source::clock::Millis;
use app::model::{Priority, WorkflowStatus};
use std::collections::HashMap;

/// The order PENDING runs leave the queue: higher priority first, then oldest first.
pub(super) type QueueKey = (u8, Millis, String);

pub(super) fn queue_key(run: &Run) -> QueueKey {
    let rank = match run.priority {
        Priority::High => 0,
        Priority::Normal => 1,
        Priority::Low => 2,
    };
    (rank, run.created_ms, run.id.clone())
}

impl Driver {
    /// Keeps the queue and slot counts in step with a run's status change.
    pub(super) fn track(
        &mut self,
        id: &str,
        before: Option<(WorkflowStatus, QueueKey, &str)>,
        after: Option<&Run>,
    ) {
        if let Some((status, key, workflow_type)) = before {
            if status == WorkflowStatus::Pending {
                self.queue.remove(&key);
            }
            if holds_slot(status) {
                self.slots_total -= 1;
                if let Some(n) = self.slots.get_mut(workflow_type) {
                    *n -= 1;
                }
            }
        }
        if let Some(run) = after {
            debug_assert_eq!(run.id, id);
            if run.status == WorkflowStatus::Pending {
                self.queue.insert(queue_key(run));
            }
            if holds_slot(run.status) {
                self.slots_total += 1;
                *self
                    .slots
                    .entry(run.definition.workflow_type.clone())
                    .or_default() += 1;
            }
        }
    }

    /// Starts queued runs while slots are free, highest priority and oldest first.
    pub(super) fn admit(&mut self, now: Millis, cycle: &mut Cycle) {
        if self.queue.is_empty() || self.slots_total >= self.limits.max_running {
            return;
        }
        let mut admitted = Vec::new();
        let mut taken: HashMap<&str, usize> = HashMap::new();
        let mut total = self.slots_total;
        for (_, _, id) in &self.queue {
            if total >= self.limits.max_running {
                break;
            }
            let run = &self.runs[id];
            let workflow_type = run.definition.workflow_type.as_str();
            let held = self.slots.get(workflow_type).copied().unwrap_or(0)
                + taken.get(workflow_type).copied().unwrap_or(0);
            if run
                .definition
                .max_concurrent
                .is_some_and(|limit| held >= limit as usize)
            {
                continue;
            }
            *taken.entry(workflow_type).or_default() += 1;
            total += 1;
            admitted.push(id.clone());
        }
        for id in admitted {
            self.with_run(&id, cycle, |run, d| run.admit(now, d));
        }
    }
}

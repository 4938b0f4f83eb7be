//! How each followed engine is doing (reachable or not), for the API, the pages and the
//! log. Engines report; readers take a snapshot.

use app::model::{EngineHealth, EngineState};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The engines' health, shared between the engines and the readers.
#[derive(Clone, Default)]
pub struct HealthBoard {
    engines: Arc<Mutex<BTreeMap<String, EngineHealth>>>,
    /// When each engine this instance follows last answered (its follow lag).
    heard: Arc<Mutex<BTreeMap<String, Instant>>>,
}

impl HealthBoard {
    /// Records `health` for `engine`; true when its state or message changed. The time of
    /// a state is when it began: a new message in the same state (each failed poll says
    /// its own error) keeps it, so that how long a source has been down is known.
    pub fn set(&self, engine: &str, mut health: EngineHealth) -> bool {
        {
            let mut heard = self.heard.lock().expect("not poisoned");
            if health.state == EngineState::Ok && health.message.is_none() {
                heard.insert(engine.to_owned(), Instant::now());
            } else if health.state == EngineState::Ok {
                // On standby: another instance follows it, this one hears nothing.
                heard.remove(engine);
            }
        }
        let mut engines = self.engines.lock().expect("not poisoned");
        match engines.get(engine) {
            Some(now) if now.state == health.state && now.message == health.message => false,
            Some(now) if now.state == health.state => {
                health.since = now.since;
                engines.insert(engine.to_owned(), health);
                true
            }
            _ => {
                engines.insert(engine.to_owned(), health);
                true
            }
        }
    }

    /// Every engine's health, with when it last answered this instance (`None`: never,
    /// or another instance follows it).
    pub fn with_last_heard(&self) -> Vec<(EngineHealth, Option<Instant>)> {
        let heard = self.heard.lock().expect("not poisoned").clone();
        self.snapshot()
            .into_iter()
            .map(|health| {
                let at = heard.get(&health.engine).copied();
                (health, at)
            })
            .collect()
    }

    /// Every engine's health, by id.
    pub fn snapshot(&self) -> Vec<EngineHealth> {
        self.engines
            .lock()
            .expect("not poisoned")
            .values()
            .cloned()
            .collect()
    }
}

/// Constructors of the states an engine reports.
pub trait Report {
    fn connecting(engine: &str) -> Self;
    fn ok(engine: &str) -> Self;
    fn degraded(engine: &str, message: &str) -> Self;
    /// Another instance of Stepline follows the engine (it holds the engine's lease): this
    /// one does not know how the engine is doing, and its runs are kept fresh there.
    fn standby(engine: &str) -> Self;
}

impl Report for EngineHealth {
    fn connecting(engine: &str) -> Self {
        health(
            engine,
            EngineState::Connecting,
            Some("not reached yet".into()),
        )
    }
    fn ok(engine: &str) -> Self {
        health(engine, EngineState::Ok, None)
    }
    fn degraded(engine: &str, message: &str) -> Self {
        health(
            engine,
            EngineState::Degraded,
            Some(message.chars().take(500).collect()),
        )
    }
    fn standby(engine: &str) -> Self {
        health(
            engine,
            EngineState::Ok,
            Some("followed by another instance of Stepline".into()),
        )
    }
}

fn health(engine: &str, state: EngineState, message: Option<String>) -> EngineHealth {
    EngineHealth {
        engine: engine.to_owned(),
        state,
        message,
        since: chrono::Utc::now(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_changes_of_state_or_message_count() {
        let board = HealthBoard::default();
        assert!(board.set("temporal:a:default", EngineHealth::ok("temporal:a:default")));
        assert!(!board.set("temporal:a:default", EngineHealth::ok("temporal:a:default")));
        assert!(board.set(
            "temporal:a:default",
            EngineHealth::degraded("temporal:a:default", "refused")
        ));
        assert!(!board.set(
            "temporal:a:default",
            EngineHealth::degraded("temporal:a:default", "refused")
        ));
        let snapshot = board.snapshot();
        assert_eq!(snapshot.len(), 1);
        assert_eq!(snapshot[0].state, EngineState::Degraded);
    }

    #[test]
    fn a_new_message_in_the_same_state_keeps_when_the_state_began() {
        let board = HealthBoard::default();
        let mut first = EngineHealth::degraded("temporal:a:default", "refused");
        first.since -= chrono::Duration::seconds(60);
        board.set("temporal:a:default", first.clone());
        assert!(board.set(
            "temporal:a:default",
            EngineHealth::degraded("temporal:a:default", "timed out")
        ));
        let now = &board.snapshot()[0];
        assert_eq!(now.message.as_deref(), Some("timed out"));
        assert_eq!(now.since, first.since);
    }
}

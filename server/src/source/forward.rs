//! Requests to an engine that runs on another instance of Stepline (the built-in engine
//! runs on the instance that holds its lease): the instance an operator asked writes the
//! request to the store and waits for its answer; the holder takes it, does it and
//! answers. A request is done at most once: one taken by a holder that stopped before
//! answering is answered by the next holder as not known to be done.

use super::clock::Millis;
use async_trait::async_trait;
use std::sync::Arc;

/// A request as the holder takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forwarded {
    pub id: i64,
    /// What is asked, as JSON (the engine's own format).
    pub request: String,
}

/// The store could not be asked.
#[derive(Debug, thiserror::Error)]
#[error("forwarded requests: {0}")]
pub struct ForwardError(#[source] pub Box<dyn std::error::Error + Send + Sync>);

/// Where forwarded requests are kept (the store).
#[async_trait]
pub trait Forwarding: Send + Sync {
    /// Writes a request to `engine`: its id.
    async fn forward(&self, engine: &str, request: &str, now: Millis) -> Result<i64, ForwardError>;

    /// The answer to request `id`, once there is one.
    async fn answer_of(&self, id: i64) -> Result<Option<String>, ForwardError>;

    /// Gives request `id` up unless a holder has taken it: whether it was given up.
    async fn withdraw(&self, id: i64, answer: &str, now: Millis) -> Result<bool, ForwardError>;

    /// Whether `engine` has requests no holder has taken yet (a read, for polling).
    async fn any_waiting(&self, engine: &str) -> Result<bool, ForwardError>;

    /// Takes up to `limit` of `engine`'s requests not taken yet, oldest first, for
    /// `holder`.
    async fn take_forwarded(
        &self,
        engine: &str,
        holder: &str,
        now: Millis,
        limit: i64,
    ) -> Result<Vec<Forwarded>, ForwardError>;

    /// Answers request `id`.
    async fn answer(&self, id: i64, answer: &str, now: Millis) -> Result<(), ForwardError>;

    /// Answers `answer` to every request of `engine` taken by a holder other than
    /// `holder` and never answered (that holder stopped); how many there were.
    async fn answer_orphans(
        &self,
        engine: &str,
        holder: &str,
        answer: &str,
        now: Millis,
    ) -> Result<u64, ForwardError>;

    /// Forgets the requests answered before `before`.
    async fn forget_answered(&self, before: Millis) -> Result<u64, ForwardError>;
}

pub type SharedForwarding = Arc<dyn Forwarding>;

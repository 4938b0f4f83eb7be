//! The contract at the bottom of the server: what every engine speaks (source events,
//! batches and the sink that applies them, commands and their outcomes, the engine
//! registry, what engines may read back of their runs), the limits on what is stored,
//! and the clock. Engines depend on this and on their own clients; the projector
//! implements [`Sink`], the store [`Recall`]; HTTP reaches engines only through
//! [`Engines`].

pub mod clock;
pub mod engine;
pub mod event;
pub mod forward;
pub mod lease;
pub mod limits;
pub mod outbox;
pub mod recall;
pub mod sink;

pub use clock::{now_ms, to_datetime, Millis};
pub use engine::{Command, CommandError, CommandOutcome, Engine, Engines, StartRequest};
pub use event::{Change, SourceEvent, StepDeclaration, WorkflowStart};
pub use lease::{Held, LeaseKeeper, Leases, SharedLeases, Term};
pub use outbox::{
    Answer, CommandMessage, CommandOutbox, NewCommand, OutboxCommand, OutboxError, Reply,
    SharedOutbox,
};
pub use recall::{AttemptSnapshot, Recall, RecallError, RunSnapshot, SharedRecall, StepSnapshot};
pub use sink::{ApplyError, Batch, Refusal, SetAside, SharedSink, Sink};

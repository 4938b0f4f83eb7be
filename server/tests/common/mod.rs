//! What the integration tests share: Stepline's core on a temporary file (with the
//! built-in engine or without), the one client
//! they drive it through, the real binary for restart tests, the real Temporal they follow,
//! and a relay to cut the way to an engine.
// Each test binary uses a part.
#![allow(dead_code)]

pub mod binary;
pub mod builtin;
pub mod client;
pub mod core_state;
pub mod database;
pub mod receiver;
pub mod relay;
pub mod temporal_fixture;

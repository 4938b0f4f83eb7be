//! What the integration tests share: Stepline's core on a temporary file, the one client
//! they drive it through, the real binary for restart tests, and the real Temporal they
//! follow.
// Each test binary uses a part.
#![allow(dead_code)]

pub mod binary;
pub mod client;
pub mod core_state;
pub mod temporal_fixture;

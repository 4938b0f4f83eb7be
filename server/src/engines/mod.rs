//! Engines: the sources of workflow executions. Each speaks to the rest of Stepline only
//! through the contract in [`crate::source`]: it hands the sink batches of normalised
//! events and takes operators' commands through the [`crate::source::Engine`] trait.

pub mod builtin;
pub mod cloudevents;
pub mod commands;
pub mod health;
pub mod ingest;
pub mod temporal;

/// Makes rustls' ring provider the process default: reqwest is built without one (see
/// Cargo.toml). Call before building an HTTP client; calling again does nothing.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

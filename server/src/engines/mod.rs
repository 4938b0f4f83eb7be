//! Engines: the sources of workflow executions. Each speaks to the rest of Stepline only
//! through the contract in [`crate::source`]: it hands the sink batches of normalised
//! events and takes operators' commands through the [`crate::source::Engine`] trait.

pub mod airflow;
pub mod builtin;
pub mod cloudevents;
pub mod commands;
pub mod commit;
pub mod health;
pub mod ingest;
pub mod remote;
pub mod temporal;

/// Makes rustls' ring provider the process default: reqwest is built without one (see
/// Cargo.toml). Call before building an HTTP client; calling again does nothing.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// An HTTP client for calls to addresses an operator configured (webhooks, providers):
/// it follows no redirect (one would let the other side send our requests anywhere) and
/// gives up after `timeout`.
pub fn outgoing_client(timeout: std::time::Duration) -> reqwest::Client {
    install_tls_provider();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .build()
        .unwrap_or_default()
}

/// The first `bytes` bytes of the SHA-256 of `text`, in hex: what stands for an engine's
/// own id in Stepline's ids where that id is not URL-safe.
fn short_hash(text: &str, bytes: usize) -> String {
    let mut hex = crate::digest::sha256_hex(text);
    hex.truncate(bytes * 2);
    hex
}

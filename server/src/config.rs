//! Configuration: command-line flags, each also settable by a `STEPLINE_*` environment
//! variable, with defaults that run the embedded setup out of the box.

use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "stepline",
    version,
    about = "Stepline: one console for every workflow engine"
)]
pub struct Config {
    /// Where the read model lives: sqlite://PATH (created and migrated at start).
    #[arg(
        long,
        env = "STEPLINE_DATABASE_URL",
        default_value = "sqlite://data/stepline.db"
    )]
    pub database_url: String,

    /// Address to serve on (defaults to the Leptos site address, 127.0.0.1:3000).
    #[arg(long, env = "STEPLINE_LISTEN")]
    pub listen: Option<SocketAddr>,

    /// The built-in engine's workflow definitions: a folder of TOML files.
    #[arg(long, env = "STEPLINE_WORKFLOWS", default_value = "workflows")]
    pub workflows: PathBuf,

    /// Most built-in runs in progress at once across all types; more wait as PENDING.
    #[arg(long, env = "STEPLINE_MAX_RUNNING", default_value_t = 1_000,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_running: u32,

    /// Most connections open at once (each live client holds one); one more is answered
    /// 503 and closed.
    #[arg(long, env = "STEPLINE_MAX_CONNECTIONS", default_value_t = 4_096,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_connections: u32,

    /// How long a client may take to send a request's headers, or stay idle between
    /// requests, before its connection is closed ("10s", "1m").
    #[arg(long, env = "STEPLINE_HEADER_TIMEOUT", default_value = "10s")]
    pub header_timeout: humantime::Duration,

    /// A TOML file of Temporal sources to follow (see README: "Temporal").
    #[arg(long, env = "STEPLINE_TEMPORAL_SOURCES")]
    pub temporal_sources: Option<PathBuf>,

    /// Keep starting demo runs of the defined workflow types.
    #[arg(long, env = "STEPLINE_DEMO")]
    pub demo: bool,

    /// Log filter, in tracing's EnvFilter syntax.
    #[arg(
        long,
        env = "STEPLINE_LOG",
        default_value = "info,sqlx=warn,tower_http=warn"
    )]
    pub log: String,
}

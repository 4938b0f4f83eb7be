//! Configuration: command-line flags, each also settable by a `STEPLINE_*` environment
//! variable, with defaults that run the embedded setup out of the box.

use clap::Parser;
use std::net::SocketAddr;

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

    /// Log filter, in tracing's EnvFilter syntax.
    #[arg(
        long,
        env = "STEPLINE_LOG",
        default_value = "info,sqlx=warn,tower_http=warn"
    )]
    pub log: String,
}

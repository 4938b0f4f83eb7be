//! Configuration: command-line flags, each also settable by a `STEPLINE_*` environment
//! variable, with defaults that run the embedded setup out of the box.

pub mod deployment;
pub mod file;

use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "stepline",
    version,
    about = "Stepline: one console for every workflow engine"
)]
pub struct Config {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// A configuration file (TOML) with every setting of a deployment; flags and
    /// environment variables still win over it (see stepline.example.toml).
    #[arg(long, env = "STEPLINE_CONFIG")]
    pub config: Option<PathBuf>,

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

    /// A TOML file of Airflow deployments to follow (see README: "Airflow").
    #[arg(long, env = "STEPLINE_AIRFLOW_SOURCES")]
    pub airflow_sources: Option<PathBuf>,

    /// A TOML file declaring the in-house engines that push their runs and take
    /// operators' commands (see README: "In-house engines").
    #[arg(long, env = "STEPLINE_PUSH_SOURCES")]
    pub push_sources: Option<PathBuf>,

    /// A TOML file of the channels alerts are sent to (signed webhooks, Slack, email)
    /// and of rules that turn conditions off for some runs (see README: "Alerts").
    #[arg(long, env = "STEPLINE_ALERTS")]
    pub alerts: Option<PathBuf>,

    /// Serve HTTPS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, env = "STEPLINE_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// The private key (PEM) of --tls-cert.
    #[arg(long, env = "STEPLINE_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Proxies in front of Stepline whose X-Forwarded-For and X-Forwarded-Proto are
    /// believed: addresses or networks, comma-separated ("127.0.0.1,10.0.0.0/8"). Anyone
    /// else's forwarded headers are ignored.
    #[arg(long, env = "STEPLINE_TRUSTED_PROXIES", default_value = "")]
    pub trusted_proxies: crate::http::TrustedProxies,

    /// A TOML file of OpenID Connect providers people may sign in through (see README:
    /// "Sign-in").
    #[arg(long, env = "STEPLINE_SIGN_IN_PROVIDERS")]
    pub sign_in_providers: Option<PathBuf>,

    /// How long a closed run is kept (by when it ended) before it is deleted with its
    /// steps and logs ("30d", "12h"; "off" keeps every run).
    #[arg(long, env = "STEPLINE_RETAIN_RUNS", default_value = "30d")]
    pub retain_runs: Age,

    /// How long the analytics rollups are kept ("400d"; "off" keeps them all).
    #[arg(long, env = "STEPLINE_RETAIN_ANALYTICS", default_value = "400d")]
    pub retain_analytics: Age,

    /// How long to keep serving after a shutdown signal while `/readyz` already answers
    /// 503, so that load balancers stop sending requests before the listener closes
    /// ("5s"; 0 closes at once).
    #[arg(long, env = "STEPLINE_SHUTDOWN_DELAY", default_value = "0s")]
    pub shutdown_delay: humantime::Duration,

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

    /// How log lines are written: `text` for people, or `json` (one object a line, with
    /// the fields of the spans it was logged in: a request's method, route, status and
    /// latency) for a log pipeline.
    #[arg(long, env = "STEPLINE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// What else the binary does than serve.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Reads a configuration file and tells every mistake in it, with its line and key
    /// (secrets it names must be in the environment or their files, as when serving);
    /// exits 1 if there is any.
    CheckConfig {
        /// The configuration file.
        file: PathBuf,
    },
}

impl Config {
    /// The configuration from the command line and the environment, with `defaults` (the
    /// configuration file's settings: a flag's id and its value) in place of the built-in
    /// defaults: flag, then environment variable, then file, then built-in default.
    pub fn with_file_defaults<I, T>(
        args: I,
        defaults: &[(&'static str, String)],
    ) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        use clap::{CommandFactory, FromArgMatches};
        let mut command = Self::command();
        for (id, value) in defaults {
            command = command.mut_arg(*id, |arg| arg.default_value(value.clone()));
        }
        let matches = command.try_get_matches_from(args)?;
        Self::from_arg_matches(&matches)
    }
}

/// How log lines are written (`--log-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Checks a name a config file gives (a source, a provider) that ends up in URLs and
/// engine ids: 1 to 32 characters of a-z 0-9 - _.
pub fn check_name(what: &str, name: &str) -> Result<(), String> {
    let fits = !name.is_empty()
        && name.len() <= 32
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if fits {
        Ok(())
    } else {
        Err(format!(
            "{what} name {name:?} must be 1 to 32 characters of a-z 0-9 - _"
        ))
    }
}

/// The secret held by the environment variable `var` that a config file names (secrets
/// stay out of files), read through `env`.
pub fn secret_from(var: &str, env: impl Fn(&str) -> Option<String>) -> Result<String, String> {
    env(var)
        .filter(|secret| !secret.is_empty())
        .ok_or_else(|| format!("environment variable {var} is not set"))
}

/// A secret a settings file refers to, by the environment variable that holds it
/// (`<what>_env`) or the file that does (`<what>_file`, its content trimmed); `None` when
/// neither is given. Secrets themselves never sit in a settings file.
pub fn secret(
    what: &str,
    var: Option<&str>,
    file: Option<&std::path::Path>,
    env: file::Env<'_>,
) -> Result<Option<String>, String> {
    match (var, file) {
        (Some(_), Some(_)) => Err(format!("give {what}_env or {what}_file, not both")),
        (Some(var), None) => secret_from(var, env).map(Some),
        (None, Some(path)) => secret_in_file(path).map(Some),
        (None, None) => Ok(None),
    }
}

/// The secret in the file at `path` (a mounted secret, say), without its surrounding
/// whitespace.
pub fn secret_in_file(path: &std::path::Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| format!("cannot read the secret file {}: {error}", path.display()))?;
    let secret = text.trim();
    if secret.is_empty() {
        return Err(format!("the secret file {} is empty", path.display()));
    }
    Ok(secret.to_owned())
}

/// A retention age: a duration of at least a minute, or "off" (`None`) for keeping
/// everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Age(pub Option<Duration>);

impl std::str::FromStr for Age {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.eq_ignore_ascii_case("off") {
            return Ok(Self(None));
        }
        let age: Duration = text
            .parse::<humantime::Duration>()
            .map_err(|error| format!("{error} (e.g. \"30d\", \"12h\", or \"off\")"))?
            .into();
        if age < Duration::from_secs(60) {
            return Err("an age under a minute would delete runs as they end".to_owned());
        }
        Ok(Self(Some(age)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_ages_read_as_durations_or_off() {
        let age = |text: &str| text.parse::<Age>().map(|age| age.0);
        assert_eq!(age("30d"), Ok(Some(Duration::from_secs(30 * 86_400))));
        assert_eq!(age("1h"), Ok(Some(Duration::from_secs(3_600))));
        assert_eq!(age("OFF"), Ok(None));
        assert!(age("soon").is_err());
        assert!(age("5s").is_err());
        let config = Config::try_parse_from(["stepline"]).unwrap();
        assert_eq!(config.retain_runs.0, Some(Duration::from_secs(30 * 86_400)));
        let config = Config::try_parse_from(["stepline", "--retain-runs", "off"]).unwrap();
        assert_eq!(config.retain_runs.0, None);
        assert!(Config::try_parse_from(["stepline", "--retain-runs", "1s"]).is_err());
    }
}

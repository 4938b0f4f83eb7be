//! The Airflow adapter: which Airflow 3 deployments to follow (a TOML file of sources),
//! the REST API v2 client, the mapping of DAG runs and task instances onto source events,
//! and the poller that follows them and takes operators' commands.

pub mod client;
mod follow;
pub mod mapping;

pub use follow::AirflowSource;

/// One of Airflow 3.3.2's recorded answers (`samples/`, from the fixture DAGs of
/// `server/tests/airflow/dags`).
#[cfg(test)]
fn sample<T: serde::de::DeserializeOwned>(name: &str) -> T {
    let path = format!(
        "{}/src/engines/airflow/samples/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

use serde::Deserialize;
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

/// How Stepline signs in to an Airflow API server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// Exchanged for a token at `/auth/token`, and again whenever it expires.
    Password { username: String, password: String },
    /// A token issued elsewhere, sent as it is.
    Token(String),
}

/// Which tasks are compensation-like: Airflow has no compensation, but teams write
/// clean-up tasks that run only when something upstream failed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CompensationRule {
    /// Task ids (within their group) starting with one of these.
    pub prefixes: Vec<String>,
    /// Tasks whose trigger rule runs them only on failure (`one_failed`, `all_failed`).
    pub on_failure_trigger_rules: bool,
}

impl CompensationRule {
    pub fn is_compensation(&self, task_id: &str, trigger_rule: Option<&str>) -> bool {
        let own_id = task_id.rsplit('.').next().unwrap_or(task_id);
        self.prefixes
            .iter()
            .any(|prefix| own_id.starts_with(prefix.as_str()))
            || (self.on_failure_trigger_rules
                && matches!(trigger_rule, Some("one_failed" | "all_failed")))
    }
}

/// One Airflow deployment to follow, as configured.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceConfig {
    /// The source's name (`a-z 0-9 - _`): part of the engine id and the workflow ids.
    pub name: String,
    /// The API server, e.g. `http://127.0.0.1:8080`.
    pub url: String,
    pub credentials: Credentials,
    /// Only these DAGs (all when empty).
    pub dag_ids: Vec<String>,
    /// Only DAGs with one of these tags (all when empty).
    pub tags: Vec<String>,
    pub compensation: CompensationRule,
    /// The SLA of each DAG's runs, by DAG id (a DAG's own deadline alert wins).
    pub sla: HashMap<String, Duration>,
    /// How often Airflow is asked what changed.
    pub poll_interval: Duration,
    /// How far back runs are imported when the source is first followed.
    pub import_since: Duration,
    /// How often the log of a running try is read on (`None`: only when the try ends).
    /// Each read is one call per running task.
    pub running_logs_every: Option<Duration>,
    /// Calls per second, on average, spent reading the logs and return values of tries
    /// that succeeded (two calls or more each). A failed try's log is read when it ends
    /// (its error is the news); a successful one's waits its turn, so that following costs
    /// Airflow about the same whether its tasks end at one a minute or fifty a second.
    pub reads_per_second: f64,
}

impl SourceConfig {
    /// The engine id stored on the runs: `airflow:<source>`.
    pub fn engine_id(&self) -> String {
        format!("airflow:{}", self.name)
    }

    /// Stepline's id of a DAG run: `<source>:<dag id>:<hash of the run id>`. Airflow's run
    /// ids (`manual__2026-12-06T21:31:00.123456+00:00`) are not URL-safe, so a hash stands
    /// for them; a DAG id that does not fit is hashed too. Stable and unique: other
    /// engines' generated ids hold one colon (pushed ids are refused when taken).
    pub fn workflow_id(&self, dag_id: &str, dag_run_id: &str) -> String {
        let run = super::short_hash(dag_run_id, 6);
        let plain = format!("{}:{dag_id}:{run}", self.name);
        if app::model::is_valid_workflow_id(&plain) {
            return plain;
        }
        format!("{}:{}:{run}", self.name, super::short_hash(dag_id, 8))
    }

    /// Whether runs of `dag_id`, tagged `tags`, are followed.
    pub fn wants(&self, dag_id: &str, tags: &[String]) -> bool {
        (self.dag_ids.is_empty() || self.dag_ids.iter().any(|d| d == dag_id))
            && (self.tags.is_empty() || self.tags.iter().any(|t| tags.contains(t)))
    }
}

/// How an operator finds a run in Airflow (and Stepline finds it again after a restart).
pub fn engine_ref(dag_id: &str, dag_run_id: &str) -> String {
    format!("DAG {dag_id} · run {dag_run_id}")
}

/// The DAG id and run id an [`engine_ref`] names (DAG ids hold no spaces).
pub fn parse_engine_ref(reference: &str) -> Option<(String, String)> {
    let (dag_id, dag_run_id) = reference.strip_prefix("DAG ")?.split_once(" · run ")?;
    Some((dag_id.to_owned(), dag_run_id.to_owned()))
}

/// One `[[source]]` of the sources file (`--airflow-sources`), or an `[[airflow]]` of the
/// configuration file, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSource {
    name: String,
    url: String,
    username: Option<String>,
    /// Environment variables holding the password or a token, or files that do: secrets
    /// stay out of settings files.
    password_env: Option<String>,
    password_file: Option<std::path::PathBuf>,
    token_env: Option<String>,
    token_file: Option<std::path::PathBuf>,
    #[serde(default)]
    dag_ids: Vec<String>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    compensation_prefixes: Vec<String>,
    #[serde(default)]
    compensation_on_failure: bool,
    /// DAG id → SLA ("15m").
    #[serde(default)]
    sla: HashMap<String, String>,
    poll_interval: Option<String>,
    import_since: Option<String>,
    /// "5s", or "off" (the default).
    running_logs_every: Option<String>,
    reads_per_second: Option<f64>,
}

/// Reads the sources file: one [`SourceConfig`] per source, or what is wrong with it.
pub fn load_sources(path: &Path) -> Result<Vec<SourceConfig>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("Airflow sources {}: {e}", path.display()))?;
    parse_sources(&text, |var| std::env::var(var).ok())
        .map_err(|e| format!("Airflow sources {}: {e}", path.display()))
}

fn parse_sources(
    text: &str,
    env: impl Fn(&str) -> Option<String> + Copy,
) -> Result<Vec<SourceConfig>, String> {
    crate::config::file::read_declarations(text, "source", &env)
}

impl crate::config::file::Declared for SourceConfig {
    type Raw = RawSource;
    const WHAT: &'static str = "Airflow source";

    fn declare(raw: RawSource, env: crate::config::file::Env<'_>) -> Result<Vec<Self>, String> {
        parse_source(raw, env).map(|source| vec![source])
    }

    fn name(&self) -> String {
        self.name.clone()
    }
}

fn parse_source(raw: RawSource, env: crate::config::file::Env<'_>) -> Result<SourceConfig, String> {
    crate::config::check_name("source", &raw.name)?;
    let named = |e: String| format!("source {:?}: {e}", raw.name);
    if !(raw.url.starts_with("http://") || raw.url.starts_with("https://")) {
        return Err(named("url must be http:// or https://".into()));
    }
    let password = crate::config::secret(
        "password",
        raw.password_env.as_deref(),
        raw.password_file.as_deref(),
        env,
    )
    .map_err(named)?;
    let token = crate::config::secret(
        "token",
        raw.token_env.as_deref(),
        raw.token_file.as_deref(),
        env,
    )
    .map_err(named)?;
    let credentials = match (&raw.username, password, token) {
        (Some(username), Some(password), None) => Credentials::Password {
            username: username.clone(),
            password,
        },
        (None, None, Some(token)) => Credentials::Token(token),
        _ => {
            return Err(named(
                "give either username and password_env (or password_file), or token_env (or token_file)"
                    .into(),
            ))
        }
    };
    let duration = |value: &Option<String>, default: Duration, what: &str| match value {
        Some(text) => {
            humantime::parse_duration(text).map_err(|e| named(format!("{what} {text:?}: {e}")))
        }
        None => Ok(default),
    };
    let poll_interval = duration(&raw.poll_interval, Duration::from_secs(1), "poll_interval")?;
    if poll_interval < Duration::from_millis(100) {
        return Err(named("poll_interval must be at least 100ms".into()));
    }
    let import_since = duration(
        &raw.import_since,
        Duration::from_secs(24 * 3600),
        "import_since",
    )?;
    let running_logs_every = match raw.running_logs_every.as_deref() {
        None | Some("off") => None,
        Some(text) => {
            let every = duration(&Some(text.to_owned()), Duration::ZERO, "running_logs_every")?;
            if every < Duration::from_secs(1) {
                return Err(named(
                    "running_logs_every must be at least 1s, or \"off\"".into(),
                ));
            }
            Some(every)
        }
    };
    let reads_per_second = raw.reads_per_second.unwrap_or(1.0);
    if !(0.1..=1_000.0).contains(&reads_per_second) {
        return Err(named(
            "reads_per_second must be between 0.1 and 1000".into(),
        ));
    }
    let mut sla = HashMap::new();
    for (dag_id, text) in &raw.sla {
        let target = duration(
            &Some(text.clone()),
            Duration::ZERO,
            &format!("sla.{dag_id}"),
        )?;
        if target.is_zero() || target.as_secs() > crate::source::limits::SLA_TARGET_SECONDS as u64 {
            return Err(named(format!(
                "sla.{dag_id} must be between 1s and 31 days"
            )));
        }
        sla.insert(dag_id.clone(), target);
    }
    Ok(SourceConfig {
        name: raw.name,
        url: raw.url.trim_end_matches('/').to_owned(),
        credentials,
        dag_ids: raw.dag_ids,
        tags: raw.tags,
        compensation: CompensationRule {
            prefixes: raw.compensation_prefixes,
            on_failure_trigger_rules: raw.compensation_on_failure,
        },
        sla,
        poll_interval,
        import_since,
        running_logs_every,
        reads_per_second,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(var: &str) -> Option<String> {
        match var {
            "AIRFLOW_PASSWORD" => Some("s3cret".into()),
            "AIRFLOW_TOKEN" => Some("eyJ0b2tlbiJ9".into()),
            _ => None,
        }
    }

    #[test]
    fn a_sources_file_gives_one_source_each_with_its_secrets_from_the_environment() {
        let sources = parse_sources(
            r#"
            [[source]]
            name = "data"
            url = "http://127.0.0.1:8080/"
            username = "admin"
            password_env = "AIRFLOW_PASSWORD"
            tags = ["etl"]
            compensation_prefixes = ["compensate_"]
            compensation_on_failure = true
            poll_interval = "500ms"
            running_logs_every = "5s"
            reads_per_second = 2.5
            sla = { nightly_sync = "15m" }

            [[source]]
            name = "ml"
            url = "https://airflow.example.com"
            token_env = "AIRFLOW_TOKEN"
            dag_ids = ["train"]
            "#,
            env,
        )
        .unwrap();
        assert_eq!(sources.len(), 2);
        let data = &sources[0];
        assert_eq!(data.engine_id(), "airflow:data");
        assert_eq!(data.url, "http://127.0.0.1:8080");
        assert_eq!(
            data.credentials,
            Credentials::Password {
                username: "admin".into(),
                password: "s3cret".into()
            }
        );
        assert_eq!(data.poll_interval, Duration::from_millis(500));
        assert_eq!(data.sla["nightly_sync"], Duration::from_secs(900));
        assert_eq!(data.running_logs_every, Some(Duration::from_secs(5)));
        assert_eq!(sources[1].running_logs_every, None, "off unless asked");
        assert_eq!(data.reads_per_second, 2.5);
        assert_eq!(sources[1].reads_per_second, 1.0);
        assert!(data.wants("nightly_sync", &["etl".into()]));
        assert!(!data.wants("nightly_sync", &["ml".into()]));
        assert!(data
            .compensation
            .is_compensation("cleanup.compensate_release", None));
        assert!(data
            .compensation
            .is_compensation("notify", Some("one_failed")));
        assert!(!data
            .compensation
            .is_compensation("notify", Some("all_success")));
        assert_eq!(
            sources[1].credentials,
            Credentials::Token("eyJ0b2tlbiJ9".into())
        );
        assert!(sources[1].wants("train", &[]) && !sources[1].wants("serve", &[]));
    }

    #[test]
    fn every_mistake_in_a_source_is_named() {
        let base = "[[source]]\nname = \"p\"\nurl = \"http://x\"\n";
        let password = "username = \"a\"\npassword_env = \"AIRFLOW_PASSWORD\"\n";
        for (bad, says) in [
            (format!("{base}"), "username and password_env"),
            (
                format!("{base}username = \"a\"\n"),
                "username and password_env",
            ),
            (
                format!("{base}password_env = \"UNSET\"\nusername = \"a\""),
                "UNSET",
            ),
            (
                format!("{base}{password}token_env = \"AIRFLOW_TOKEN\""),
                "either",
            ),
            (
                format!("{base}{password}poll_interval = \"often\""),
                "poll_interval",
            ),
            (
                format!("{base}{password}poll_interval = \"1ms\""),
                "at least",
            ),
            (format!("{base}{password}sla = {{ d = \"40d\" }}"), "sla.d"),
            (
                format!("{base}{password}running_logs_every = \"10ms\""),
                "running_logs_every",
            ),
            (
                format!("{base}{password}reads_per_second = 0.0"),
                "reads_per_second",
            ),
            (format!("{base}{password}colour = \"red\""), "colour"),
            (
                "[[source]]\nname = \"P!\"\nurl = \"http://x\"".to_owned(),
                "a-z 0-9",
            ),
            (format!("{base}{password}{base}{password}"), "twice"),
        ] {
            let error = parse_sources(&bad, env).unwrap_err();
            assert!(error.contains(says), "{bad:?}: {error}");
        }
    }

    #[test]
    fn workflow_ids_are_url_safe_stable_and_unique() {
        let source = &parse_sources(
            "[[source]]\nname = \"data\"\nurl = \"http://x\"\ntoken_env = \"AIRFLOW_TOKEN\"",
            env,
        )
        .unwrap()[0];
        let run = "manual__2026-12-06T21:31:00.123456+00:00";
        let id = source.workflow_id("nightly_sync", run);
        assert!(id.starts_with("data:nightly_sync:"), "{id}");
        assert!(app::model::is_valid_workflow_id(&id));
        assert_eq!(id, source.workflow_id("nightly_sync", run), "stable");
        assert_ne!(
            id,
            source.workflow_id("nightly_sync", "manual__2026-12-06T21:31:00.123457+00:00")
        );
        assert_ne!(id, source.workflow_id("nightly_sync2", run));
        let long = source.workflow_id(&"d".repeat(200), run);
        assert!(app::model::is_valid_workflow_id(&long), "{long}");
        assert_ne!(long, source.workflow_id(&"d".repeat(201), run));
        assert_eq!(
            parse_engine_ref(&engine_ref("nightly_sync", run)),
            Some(("nightly_sync".into(), run.into()))
        );
    }
}

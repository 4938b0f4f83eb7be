//! The Temporal adapter: which Temporal servers to follow (a TOML file of sources), the
//! HTTP client, the mapping of histories onto source events, and the live follower that
//! is also the engine taking operators' commands.

pub mod client;
mod follow;
pub mod history;

pub use follow::TemporalSource;

use history::CompensationRule;
use serde::Deserialize;
use std::path::Path;
use std::time::Duration;

/// One Temporal namespace to follow, as configured.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceConfig {
    /// The source's name (`a-z 0-9 - _`): part of the engine id and the workflow ids.
    pub name: String,
    /// The server's HTTP API, e.g. `http://127.0.0.1:7243`.
    pub url: String,
    pub namespace: String,
    /// Sent as a bearer token (Temporal Cloud API keys).
    pub api_key: Option<String>,
    /// Only executions of this task queue.
    pub task_queue: Option<String>,
    /// Only executions of these types (all when empty).
    pub workflow_types: Vec<String>,
    pub compensation: CompensationRule,
    /// How often the namespace's counts are checked for new executions.
    pub poll_interval: Duration,
    /// How far back executions are imported when the source is first followed.
    pub import_since: Duration,
}

impl SourceConfig {
    /// The engine id stored on the runs: `temporal:<source>:<namespace>`.
    pub fn engine_id(&self) -> String {
        format!("temporal:{}:{}", self.name, self.namespace)
    }

    /// Stepline's id of a Temporal run: `<source>:<namespace>:<workflow id>:<run>` —
    /// readable when the workflow id is URL-safe, else `::<its hash>` in its place.
    /// `<run>` is a hash of the whole run id, not a part of it: Temporal's run ids are
    /// time-ordered (UUIDv7), so two executions of one workflow id started within a
    /// minute share their first characters, and other engines' schemes may share any.
    /// Stable, unique across engines (no other engine's ids hold three colons).
    pub fn workflow_id(&self, workflow_id: &str, run_id: &str) -> String {
        let run = super::short_hash(run_id, 6);
        let plain = format!("{}:{}:{workflow_id}:{run}", self.name, self.namespace);
        if app::model::is_valid_workflow_id(&plain) {
            return plain;
        }
        // "::" never occurs in the plain form (workflow ids are not empty).
        format!(
            "{}:{}::{}:{run}",
            self.name,
            self.namespace,
            super::short_hash(workflow_id, 8)
        )
    }

    /// The visibility query that selects this source's executions.
    fn filter(&self) -> String {
        match &self.task_queue {
            Some(queue) => format!("TaskQueue = {}", quoted(queue)),
            None => String::new(),
        }
    }

    fn wants(&self, workflow_type: &str) -> bool {
        self.workflow_types.is_empty() || self.workflow_types.iter().any(|t| t == workflow_type)
    }
}

/// How an operator finds a run in Temporal (Stepline's id may hold only a hash of it).
fn engine_ref(workflow_id: &str, run_id: &str) -> String {
    format!("workflow {workflow_id} · run {run_id}")
}

/// The ids [`engine_ref`] names (a run id has no " · run " in it).
fn parse_engine_ref(reference: &str) -> Option<(String, String)> {
    let (workflow_id, run_id) = reference
        .strip_prefix("workflow ")?
        .rsplit_once(" · run ")?;
    Some((workflow_id.to_owned(), run_id.to_owned()))
}

/// A string literal of Temporal's visibility queries.
fn quoted(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
}

/// One `[[source]]` of the sources file (`--temporal-sources`), or a `[[temporal]]` of
/// the configuration file, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSource {
    name: String,
    url: String,
    #[serde(default = "default_namespaces")]
    namespaces: Vec<String>,
    /// The name of an environment variable holding the API key (keys stay out of files).
    api_key_env: Option<String>,
    /// Or a file holding it.
    api_key_file: Option<std::path::PathBuf>,
    task_queue: Option<String>,
    #[serde(default)]
    workflow_types: Vec<String>,
    #[serde(default)]
    compensation_prefixes: Vec<String>,
    #[serde(default)]
    compensation_types: Vec<String>,
    poll_interval: Option<String>,
    import_since: Option<String>,
}

fn default_namespaces() -> Vec<String> {
    vec!["default".into()]
}

/// Reads the sources file: one [`SourceConfig`] per source and namespace, or what is
/// wrong with it.
pub fn load_sources(path: &Path) -> Result<Vec<SourceConfig>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("Temporal sources {}: {e}", path.display()))?;
    parse_sources(&text).map_err(|e| format!("Temporal sources {}: {e}", path.display()))
}

fn parse_sources(text: &str) -> Result<Vec<SourceConfig>, String> {
    crate::config::file::read_declarations(text, "source", &crate::config::file::process_env)
}

impl crate::config::file::Declared for SourceConfig {
    type Raw = RawSource;
    const WHAT: &'static str = "Temporal source";

    fn declare(raw: RawSource, env: crate::config::file::Env<'_>) -> Result<Vec<Self>, String> {
        let duration = |value: &Option<String>, default: Duration, what: &str| match value {
            Some(text) => {
                humantime::parse_duration(text).map_err(|e| format!("{what} {text:?}: {e}"))
            }
            None => Ok(default),
        };
        crate::config::check_name("source", &raw.name)?;
        if !(raw.url.starts_with("http://") || raw.url.starts_with("https://")) {
            return Err(format!(
                "source {:?}: url must be http:// or https://",
                raw.name
            ));
        }
        let api_key = crate::config::secret(
            "api_key",
            raw.api_key_env.as_deref(),
            raw.api_key_file.as_deref(),
            env,
        )
        .map_err(|e| format!("source {:?}: {e}", raw.name))?;
        let poll_interval = duration(&raw.poll_interval, Duration::from_secs(1), "poll_interval")?;
        let import_since = duration(
            &raw.import_since,
            Duration::from_secs(24 * 3600),
            "import_since",
        )?;
        let mut out = Vec::new();
        for namespace in &raw.namespaces {
            let namespace_ok = !namespace.is_empty()
                && namespace.len() <= 64
                && namespace
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
            if !namespace_ok {
                return Err(format!(
                    "source {:?}: namespace {namespace:?} is not valid",
                    raw.name
                ));
            }
            out.push(SourceConfig {
                name: raw.name.clone(),
                url: raw.url.clone(),
                namespace: namespace.clone(),
                api_key: api_key.clone(),
                task_queue: raw.task_queue.clone(),
                workflow_types: raw.workflow_types.clone(),
                compensation: CompensationRule {
                    prefixes: raw.compensation_prefixes.clone(),
                    types: raw.compensation_types.clone(),
                },
                poll_interval,
                import_since,
            });
        }
        Ok(out)
    }

    fn name(&self) -> String {
        self.engine_id()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sources_file_gives_one_source_per_namespace() {
        let sources = parse_sources(
            r#"
            [[source]]
            name = "prod"
            url = "http://127.0.0.1:7243"
            namespaces = ["orders", "billing"]
            task_queue = "main"
            compensation_prefixes = ["compensate_"]
            poll_interval = "500ms"
            "#,
        )
        .unwrap();
        assert_eq!(sources.len(), 2);
        assert_eq!(sources[1].engine_id(), "temporal:prod:billing");
        assert_eq!(sources[0].poll_interval, Duration::from_millis(500));
        assert_eq!(sources[0].filter(), r#"TaskQueue = "main""#);
        assert!(sources[0]
            .compensation
            .is_compensation("compensate_payment"));
        for bad in [
            "[[source]]\nname = \"Prod!\"\nurl = \"http://x\"",
            "[[source]]\nname = \"p\"\nurl = \"ftp://x\"",
            "[[source]]\nname = \"p\"\nurl = \"http://x\"\nnamespaces = [\"a b\"]",
            "[[source]]\nname = \"p\"\nurl = \"http://x\"\ncolour = \"red\"",
            "[[source]]\nname = \"p\"\nurl = \"http://x\"\npoll_interval = \"often\"",
        ] {
            assert!(parse_sources(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn workflow_ids_are_url_safe_stable_and_unique() {
        let source = &parse_sources("[[source]]\nname = \"local\"\nurl = \"http://x\"").unwrap()[0];
        let run = "0196f6a2-7c1e-7a55-9bb0-3f0c8a1d2e4f";
        let id = source.workflow_id("order-42", run);
        assert!(id.starts_with("local:default:order-42:"), "{id}");
        assert_eq!(id, source.workflow_id("order-42", run), "stable");
        // Two executions a few seconds apart: time-ordered run ids that share their
        // first 8 characters still get two ids.
        let next = "0196f6a2-9d40-7b11-8c22-5e1f9a3b4c6d";
        assert_ne!(id, source.workflow_id("order-42", next));
        let odd = source.workflow_id("order 42/ä", run);
        assert!(app::model::is_valid_workflow_id(&odd), "{odd}");
        assert_eq!(odd, source.workflow_id("order 42/ä", run));
        assert_ne!(odd, source.workflow_id("order 43/ä", run));
        let long = "x".repeat(200);
        assert!(app::model::is_valid_workflow_id(
            &source.workflow_id(&long, run)
        ));
    }
}

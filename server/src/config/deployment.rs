//! The configuration file (`--config FILE`, `STEPLINE_CONFIG`): everything a deployment
//! sets, in one TOML file. Its single settings (`[server] listen`, ...) are the flags'
//! defaults, so a flag or an environment variable still wins over the file; its
//! declarations (`[[temporal]]`, `[[airflow]]`, `[[pushing_source]]`, `[[sign_in]]`,
//! `[alerts]`) take the place of the older one-kind files unless those are given too.
//! `stepline check-config FILE` reports every mistake in it, with its line and key.
//! `stepline.example.toml` at the root of the repository shows every key.

use super::file::{Document, Env, Problem};
use super::Config;
use crate::alerts::settings::AlertSettings;
use crate::auth::oidc::ProviderConfig;
use crate::engines::commands::PushSource;
use clap::CommandFactory;
use toml::de::DeValue;

/// The single settings: `(section, key, the flag's id)`.
const SETTINGS: &[(&str, &str, &str)] = &[
    ("server", "listen", "listen"),
    ("server", "max_connections", "max_connections"),
    ("server", "header_timeout", "header_timeout"),
    ("server", "shutdown_delay", "shutdown_delay"),
    ("server", "trusted_proxies", "trusted_proxies"),
    ("server", "tls_cert", "tls_cert"),
    ("server", "tls_key", "tls_key"),
    ("database", "url", "database_url"),
    ("retention", "runs", "retain_runs"),
    ("retention", "analytics", "retain_analytics"),
    ("builtin", "workflows", "workflows"),
    ("builtin", "max_running", "max_running"),
    ("builtin", "demo", "demo"),
    ("log", "filter", "log"),
    ("log", "format", "log_format"),
];

/// Keys of a section that are not flags of their own.
const SECRET_KEYS: &[(&str, &str)] = &[("database", "url_env"), ("database", "url_file")];

/// The sections that declare things.
const DECLARATIONS: &[&str] = &["temporal", "airflow", "pushing_source", "sign_in", "alerts"];

/// What the configuration file sets.
#[derive(Debug, Default)]
pub struct Deployment {
    /// The single settings, as the flags' defaults: the flag's id and its value as text.
    pub defaults: Vec<(&'static str, String)>,
    /// Each kind of declaration, when the file has its section.
    pub temporal: Option<Vec<crate::engines::temporal::SourceConfig>>,
    pub airflow: Option<Vec<crate::engines::airflow::SourceConfig>>,
    pub pushing: Option<Vec<PushSource>>,
    pub sign_in: Option<Vec<ProviderConfig>>,
    pub alerts: Option<AlertSettings>,
}

/// Reads a configuration file: what it sets, or every problem in it (secrets named by
/// it are read through `env`, and must be there).
pub fn read(text: &str, env: Env<'_>) -> Result<Deployment, Vec<Problem>> {
    let mut document = Document::parse(text);
    let mut deployment = Deployment::default();
    let command = Config::command();
    let sections: Vec<&str> = SETTINGS
        .iter()
        .map(|(section, _, _)| *section)
        .chain(DECLARATIONS.iter().copied())
        .collect();
    document.unknown_keys(&sections);
    for (section, section_span, value) in document.entries() {
        if DECLARATIONS.contains(&section.as_str()) {
            read_declarations(&mut document, &mut deployment, &section, &value, env);
            continue;
        }
        let DeValue::Table(table) = value.get_ref() else {
            if sections.contains(&section.as_str()) {
                document.problem(
                    section_span,
                    &section,
                    format!("expected a [{section}] table"),
                );
            }
            continue;
        };
        let known: Vec<&str> = SETTINGS
            .iter()
            .filter(|(s, _, _)| *s == section)
            .map(|(_, key, _)| *key)
            .chain(
                SECRET_KEYS
                    .iter()
                    .filter(|(s, _)| *s == section)
                    .map(|(_, k)| *k),
            )
            .collect();
        let mut database_secret: (Option<String>, Option<std::path::PathBuf>) = (None, None);
        for (key, value) in table.iter() {
            let name = key.get_ref().to_string();
            let at = format!("{section}.{name}");
            if !known.contains(&name.as_str()) {
                document.problem(
                    key.span(),
                    &at,
                    format!("unknown key; [{section}] takes {}", known.join(", ")),
                );
                continue;
            }
            if section == "database" && name != "url" {
                let Some(text) = document.read::<String>(&at, value) else {
                    continue;
                };
                if name == "url_env" {
                    database_secret.0 = Some(text);
                } else {
                    database_secret.1 = Some(text.into());
                }
                continue;
            }
            let Some(text) = setting_text(&mut document, &at, value) else {
                continue;
            };
            if at == "database.url" && holds_password(&text) {
                document.problem(
                    value.span(),
                    &at,
                    "the URL holds a password: give the whole URL by url_env or url_file instead"
                        .into(),
                );
                continue;
            }
            let (_, _, id) = SETTINGS
                .iter()
                .find(|(s, k, _)| *s == section && *k == name)
                .expect("a known key is a setting");
            match check_setting(&command, id, &text) {
                Ok(()) => deployment.defaults.push((id, text)),
                Err(message) => document.problem(value.span(), &at, message),
            }
        }
        if section == "database" {
            match super::secret(
                "url",
                database_secret.0.as_deref(),
                database_secret.1.as_deref(),
                env,
            ) {
                Ok(Some(url)) => {
                    if deployment
                        .defaults
                        .iter()
                        .any(|(id, _)| *id == "database_url")
                    {
                        document.problem(
                            section_span,
                            "database",
                            "give url, url_env or url_file, only one".into(),
                        );
                    } else {
                        deployment.defaults.push(("database_url", url));
                    }
                }
                Ok(None) => {}
                Err(message) => document.problem(section_span, "database", message),
            }
        }
    }
    let has = |id: &str| deployment.defaults.iter().any(|(given, _)| *given == id);
    if has("tls_cert") != has("tls_key") {
        let span = span_of(&document, "server");
        document.problem(span, "server", "give tls_cert and tls_key together".into());
    }
    if document.problems.is_empty() {
        Ok(deployment)
    } else {
        let mut problems = document.problems;
        problems.sort_by_key(|problem| problem.line);
        Err(problems)
    }
}

/// Where the file names `section`.
fn span_of(document: &Document<'_>, section: &str) -> std::ops::Range<usize> {
    document
        .entries()
        .into_iter()
        .find(|(key, _, _)| key == section)
        .map_or(0..0, |(_, span, _)| span)
}

fn read_declarations<'a>(
    document: &mut Document<'a>,
    deployment: &mut Deployment,
    section: &str,
    value: &toml::Spanned<DeValue<'a>>,
    env: Env<'_>,
) {
    match section {
        "temporal" => deployment.temporal = Some(document.declared(section, value, env)),
        "airflow" => deployment.airflow = Some(document.declared(section, value, env)),
        "pushing_source" => deployment.pushing = Some(document.declared(section, value, env)),
        "sign_in" => deployment.sign_in = Some(document.declared(section, value, env)),
        "alerts" => {
            let DeValue::Table(table) = value.get_ref() else {
                document.problem(value.span(), "alerts", "expected an [alerts] table".into());
                return;
            };
            for (key, _) in table.iter() {
                let name = key.get_ref();
                if name != "channel" && name != "rule" {
                    document.problem(
                        key.span(),
                        &format!("alerts.{name}"),
                        "unknown key; [alerts] takes [[alerts.channel]] and [[alerts.rule]] tables"
                            .into(),
                    );
                }
            }
            let (channel, rule) = (table.get("channel").cloned(), table.get("rule").cloned());
            deployment.alerts = Some(crate::alerts::settings::read_settings(
                document, "alerts.", channel, rule, env,
            ));
        }
        _ => {}
    }
}

/// A setting's value as the flag would take it: text, a number, true or false, or a
/// list of texts (comma-separated, as `--trusted-proxies` takes them).
fn setting_text<'a>(
    document: &mut Document<'a>,
    at: &str,
    value: &toml::Spanned<DeValue<'a>>,
) -> Option<String> {
    let read: toml::Value = document.read(at, value)?;
    let text = match read {
        toml::Value::String(text) => text,
        toml::Value::Integer(n) => n.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        toml::Value::Array(items) => {
            let texts: Option<Vec<String>> = items
                .into_iter()
                .map(|item| item.as_str().map(str::to_owned))
                .collect();
            match texts {
                Some(texts) => texts.join(","),
                None => {
                    document.problem(value.span(), at, "expected a list of texts".into());
                    return None;
                }
            }
        }
        _ => {
            document.problem(
                value.span(),
                at,
                "expected a text, a whole number, true or false".into(),
            );
            return None;
        }
    };
    Some(text)
}

/// Whether a database URL holds a password (`postgres://user:secret@host/db`).
fn holds_password(url: &str) -> bool {
    super::super::store::without_password(url) != url
}

/// Whether the flag `id` takes `text`, as its own parser judges it (the environment
/// left out: a variable that would win over the file must not hide its mistake).
fn check_setting(command: &clap::Command, id: &str, text: &str) -> Result<(), String> {
    command
        .clone()
        .mut_args(|arg| arg.env(None))
        .mut_arg(id, |arg| arg.default_value(text.to_owned()))
        .try_get_matches_from(["stepline"])
        .map(|_| ())
        .map_err(|error| clap_message(&error))
}

/// clap's complaint about a value, without its "error:" and its advice on `--help`.
fn clap_message(error: &clap::Error) -> String {
    let text = error.to_string();
    let first = text.lines().next().unwrap_or_default();
    first.trim_start_matches("error: ").trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "TEMPORAL_CLOUD_KEY" => Some("key".into()),
            "DATABASE_URL" => Some("postgres://stepline:secret@db/stepline".into()),
            _ => None,
        }
    }

    #[test]
    fn settings_become_the_flags_defaults_and_declarations_are_read() {
        let deployment = read(
            r#"
[server]
listen = "127.0.0.1:4000"
trusted_proxies = ["127.0.0.1", "10.0.0.0/8"]
[database]
url_env = "DATABASE_URL"
[builtin]
max_running = 50
demo = true
[[temporal]]
name = "cloud"
url = "https://temporal.example.com"
namespaces = ["a", "b"]
api_key_env = "TEMPORAL_CLOUD_KEY"
[alerts]
[[alerts.rule]]
conditions = ["failed"]
alert = false
"#,
            &env,
        )
        .unwrap();
        let defaults: std::collections::BTreeMap<_, _> =
            deployment.defaults.iter().cloned().collect();
        assert_eq!(defaults["listen"], "127.0.0.1:4000");
        assert_eq!(defaults["trusted_proxies"], "127.0.0.1,10.0.0.0/8");
        assert_eq!(
            defaults["database_url"],
            "postgres://stepline:secret@db/stepline"
        );
        assert_eq!(defaults["max_running"], "50");
        assert_eq!(defaults["demo"], "true");
        assert_eq!(deployment.temporal.unwrap().len(), 2);
        assert_eq!(deployment.alerts.unwrap().rules.len(), 1);
        assert!(deployment.airflow.is_none());
    }

    #[test]
    fn every_mistake_is_told_with_its_line_and_key() {
        let problems = read(
            r#"[server]
listen = "nowhere"
max_connections = 0
colour = "blue"

[database]
url = "postgres://stepline:secret@db/stepline"

[[temporal]]
name = "Bad Name"
url = "https://temporal.example.com"

[[airflow]]
name = "af"
url = "https://airflow.example.com"
token_env = "NOT_SET_ANYWHERE"

[retention]
runs = "5s"

[nonsense]
"#,
            &env,
        )
        .unwrap_err();
        let told: Vec<(usize, &str)> = problems
            .iter()
            .map(|problem| (problem.line, problem.key.as_str()))
            .collect();
        assert_eq!(
            told,
            [
                (2, "server.listen"),
                (3, "server.max_connections"),
                (4, "server.colour"),
                (7, "database.url"),
                (9, "temporal[1]"),
                (13, "airflow[1]"),
                (19, "retention.runs"),
                (21, "nonsense"),
            ],
            "{problems:#?}"
        );
        assert!(problems[3].message.contains("password"));
        assert!(problems[5].message.contains("NOT_SET_ANYWHERE"));
    }

    #[test]
    fn a_syntax_error_does_not_hide_the_rest() {
        let problems = read("[server\nlisten = 1\n[log]\nformat = \"xml\"\n", &env).unwrap_err();
        assert!(problems.iter().any(|p| p.line == 1), "{problems:#?}");
        assert!(
            problems
                .iter()
                .any(|p| p.key == "log.format" && p.line == 4),
            "{problems:#?}"
        );
    }
}

//! The alerts file (`--alerts`): the channels alerts are sent to (a signed JSON webhook,
//! a Slack-compatible incoming webhook, email over SMTP), each with the alerts it takes
//! and how many messages a minute it may get before the rest go as a digest; and rules
//! that turn conditions off for some runs. Both choose alerts by condition, engine,
//! workflow type and tag.

use crate::alerts::NewAlert;
use app::model::alert::AlertCondition;
use app::model::identity::engine_matches;
use serde::Deserialize;
use std::path::Path;

/// Messages a channel gets in a minute unless its declaration says otherwise.
pub const DEFAULT_PER_MINUTE: u32 = 10;

/// How a channel is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    /// A JSON POST signed like the commands to in-house engines
    /// (`X-Stepline-Signature: t=<unix seconds>,v1=<HMAC-SHA256 hex of "t.body">`).
    Webhook { url: String, secret: String },
    /// A Slack-compatible incoming webhook: `{"text": ...}`.
    Slack { url: String },
    /// Email over SMTP (`smtp://host:port`, `smtps://` for TLS from the start, or
    /// `smtp://...?tls=required` for STARTTLS).
    Email {
        server: String,
        from: String,
        to: Vec<String>,
    },
}

impl Reach {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Webhook { .. } => "webhook",
            Self::Slack { .. } => "slack",
            Self::Email { .. } => "email",
        }
    }
}

/// Which alerts a channel or a rule is about: each list, when not empty, narrows them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    pub conditions: Vec<AlertCondition>,
    /// Engines, as patterns (`temporal:*`).
    pub engines: Vec<String>,
    pub workflow_types: Vec<String>,
    /// Runs carrying one of these tags.
    pub tags: Vec<String>,
}

impl Scope {
    /// Whether it covers `alert` (its run's tags with it).
    pub fn covers(&self, alert: &NewAlert) -> bool {
        let condition = self.conditions.is_empty() || self.conditions.contains(&alert.condition);
        let engine = self.engines.is_empty()
            || self
                .engines
                .iter()
                .any(|pattern| engine_matches(pattern, &alert.engine));
        let workflow_type = self.workflow_types.is_empty()
            || alert
                .workflow_type
                .as_ref()
                .is_some_and(|t| self.workflow_types.contains(t));
        let tagged = self.tags.is_empty() || alert.tags.iter().any(|tag| self.tags.contains(tag));
        condition && engine && workflow_type && tagged
    }
}

/// One declared channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channel {
    pub name: String,
    pub reach: Reach,
    /// The alerts it takes.
    pub scope: Scope,
    /// Messages a minute before a digest.
    pub per_minute: u32,
}

impl Channel {
    /// Whether it takes `alert` (never its own failing: that is told to the others).
    pub fn takes(&self, alert: &NewAlert) -> bool {
        alert.subject.strip_prefix("channel:") != Some(self.name.as_str())
            && self.scope.covers(alert)
    }
}

/// A rule: the alerts of its scope are not raised at all (`alert = false`), for runs
/// that overrun or fail by design.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub scope: Scope,
}

/// What the alerts file declares.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertSettings {
    pub channels: Vec<Channel>,
    pub rules: Vec<Rule>,
}

/// The alerts file in force; cheap to clone.
pub type SharedSettings = std::sync::Arc<AlertSettings>;

impl AlertSettings {
    /// Whether a rule turns `alert` off.
    pub fn silences(&self, alert: &NewAlert) -> bool {
        self.rules.iter().any(|rule| rule.scope.covers(alert))
    }
}

/// A `[[rule]]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleDeclaration {
    conditions: Vec<String>,
    #[serde(default)]
    engines: Vec<String>,
    #[serde(default)]
    workflow_types: Vec<String>,
    #[serde(default)]
    tags: Vec<String>,
    /// Only `false` (the conditions are on unless a rule turns them off).
    alert: bool,
}

/// A channel as declared (secrets only by the name of the environment variable that
/// holds them).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Declaration {
    name: String,
    /// `webhook`, `slack` or `email`.
    kind: String,
    url: Option<String>,
    /// A variable holding the URL (a Slack webhook's URL is its secret), or a file.
    url_env: Option<String>,
    url_file: Option<std::path::PathBuf>,
    secret_env: Option<String>,
    secret_file: Option<std::path::PathBuf>,
    smtp: Option<String>,
    /// A variable holding the SMTP URL (one with a user and password is a secret), or a
    /// file.
    smtp_env: Option<String>,
    smtp_file: Option<std::path::PathBuf>,
    from: Option<String>,
    #[serde(default)]
    to: Vec<String>,
    #[serde(default)]
    conditions: Vec<String>,
    #[serde(default)]
    engines: Vec<String>,
    #[serde(default)]
    workflow_types: Vec<String>,
    #[serde(default)]
    tags: Vec<String>,
    per_minute: Option<u32>,
}

/// Reads the alerts file: every channel and rule, or what is wrong with one.
pub fn load_settings(path: &Path) -> Result<AlertSettings, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("alerts {}: {e}", path.display()))?;
    parse_settings(&text, |name| std::env::var(name).ok())
        .map_err(|e| format!("alerts {}: {e}", path.display()))
}

pub fn parse_settings(
    text: &str,
    env: impl Fn(&str) -> Option<String>,
) -> Result<AlertSettings, String> {
    use crate::config::file::Document;
    let mut document = Document::parse(text);
    document.unknown_keys(&["channel", "rule"]);
    let (channel, rule) = (document.get("channel"), document.get("rule"));
    let settings = read_settings(&mut document, "", channel, rule, &env);
    document.finish(settings)
}

/// The channels and rules of the `[[channel]]` and `[[rule]]` tables given (under
/// `prefix`, such as `alerts.` in the configuration file); their problems go to `document`.
pub fn read_settings<'a>(
    document: &mut crate::config::file::Document<'a>,
    prefix: &str,
    channel: Option<toml::Spanned<toml::de::DeValue<'a>>>,
    rule: Option<toml::Spanned<toml::de::DeValue<'a>>>,
    env: crate::config::file::Env<'_>,
) -> AlertSettings {
    let channels = channel.map_or_else(Vec::new, |value| {
        document.declared::<Channel>(&format!("{prefix}channel"), &value, env)
    });
    let rules = rule.map_or_else(Vec::new, |value| {
        document.declared::<Rule>(&format!("{prefix}rule"), &value, env)
    });
    AlertSettings { channels, rules }
}

impl crate::config::file::Declared for Channel {
    type Raw = Declaration;
    const WHAT: &'static str = "channel";

    fn declare(raw: Declaration, env: crate::config::file::Env<'_>) -> Result<Vec<Self>, String> {
        raw.channel(&env).map(|channel| vec![channel])
    }

    fn name(&self) -> String {
        self.name.clone()
    }
}

impl crate::config::file::Declared for Rule {
    type Raw = RuleDeclaration;
    const WHAT: &'static str = "rule";

    fn declare(
        rule: RuleDeclaration,
        _env: crate::config::file::Env<'_>,
    ) -> Result<Vec<Self>, String> {
        let at = |what: String| what;
        if rule.alert {
            return Err("alert = true changes nothing: conditions are on unless a rule turns them off (alert = false)".into());
        }
        if rule.conditions.is_empty() {
            return Err("name the conditions it turns off".into());
        }
        Ok(vec![Rule {
            scope: Scope {
                conditions: conditions(&rule.conditions, &at)?,
                engines: rule.engines,
                workflow_types: rule.workflow_types,
                tags: rule.tags,
            },
        }])
    }

    /// Rules may repeat.
    fn name(&self) -> String {
        String::new()
    }
}

/// The conditions named by `names`, or which name is none.
fn conditions(
    names: &[String],
    at: &impl Fn(String) -> String,
) -> Result<Vec<AlertCondition>, String> {
    names
        .iter()
        .map(|text| {
            AlertCondition::parse(text).ok_or_else(|| {
                let known: Vec<&str> = AlertCondition::ALL.iter().map(|c| c.as_str()).collect();
                at(format!(
                    "condition {text:?} is not one of {}",
                    known.join(", ")
                ))
            })
        })
        .collect()
}

fn http_url(url: String, at: &impl Fn(String) -> String) -> Result<String, String> {
    if url.starts_with("http://") || url.starts_with("https://") {
        Ok(url)
    } else {
        Err(at("the url must be http:// or https://".into()))
    }
}

impl Declaration {
    fn channel(self, env: &impl Fn(&str) -> Option<String>) -> Result<Channel, String> {
        let name = self.name.clone();
        let at = |what: String| format!("channel {name:?}: {what}");
        if name.trim().is_empty() || name.len() > 64 || name.chars().any(char::is_control) {
            return Err(at("the name must be 1 to 64 printable characters".into()));
        }
        let url_secret = crate::config::secret(
            "url",
            self.url_env.as_deref(),
            self.url_file.as_deref(),
            env,
        )
        .map_err(at)?;
        let url = match (&self.url, url_secret) {
            (Some(_), Some(_)) => return Err(at("give url, url_env or url_file, only one".into())),
            (url, secret) => secret.or_else(|| url.clone()),
        };
        let reach = match self.kind.as_str() {
            "webhook" => {
                let url = http_url(url.ok_or_else(|| at("a webhook needs a url".into()))?, &at)?;
                let secret = crate::config::secret(
                    "secret",
                    self.secret_env.as_deref(),
                    self.secret_file.as_deref(),
                    env,
                )
                .map_err(at)?
                .ok_or_else(|| {
                    at("a webhook needs secret_env or secret_file (its signing secret)".into())
                })?;
                if secret.len() < 16 {
                    return Err(at("its signing secret must be 16 bytes or more".into()));
                }
                Reach::Webhook { url, secret }
            }
            "slack" => Reach::Slack {
                url: http_url(
                    url.ok_or_else(|| at("slack needs a url or url_env".into()))?,
                    &at,
                )?,
            },
            "email" => {
                let smtp_secret = crate::config::secret(
                    "smtp",
                    self.smtp_env.as_deref(),
                    self.smtp_file.as_deref(),
                    env,
                )
                .map_err(at)?;
                let smtp = match (self.smtp, smtp_secret) {
                    (Some(_), Some(_)) => {
                        return Err(at("give smtp, smtp_env or smtp_file, only one".into()))
                    }
                    (Some(smtp), None) if crate::store::without_password(&smtp) != smtp => {
                        return Err(at(
                            "the SMTP URL holds a password: give it whole by smtp_env or smtp_file"
                                .into(),
                        ));
                    }
                    (smtp, secret) => secret.or(smtp),
                };
                let server = smtp
                    .filter(|smtp| smtp.starts_with("smtp://") || smtp.starts_with("smtps://"))
                    .ok_or_else(|| {
                        at(
                            "email needs smtp = \"smtp://host:port\" (or smtp_env, smtp_file)"
                                .into(),
                        )
                    })?;
                let from = self
                    .from
                    .ok_or_else(|| at("email needs from = \"stepline@example.com\"".into()))?;
                if self.to.is_empty() {
                    return Err(at("email needs to = [\"ops@example.com\", ...]".into()));
                }
                for address in std::iter::once(&from).chain(&self.to) {
                    address
                        .parse::<lettre::Address>()
                        .map_err(|e| at(format!("{address:?} is not an email address: {e}")))?;
                }
                Reach::Email {
                    server,
                    from,
                    to: self.to,
                }
            }
            other => {
                return Err(at(format!("kind {other:?} is not webhook, slack or email")));
            }
        };
        let conditions = self
            .conditions
            .iter()
            .map(|text| {
                AlertCondition::parse(text).ok_or_else(|| {
                    let known: Vec<&str> = AlertCondition::ALL.iter().map(|c| c.as_str()).collect();
                    at(format!(
                        "condition {text:?} is not one of {}",
                        known.join(", ")
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let per_minute = self.per_minute.unwrap_or(DEFAULT_PER_MINUTE);
        if !(1..=600).contains(&per_minute) {
            return Err(at("per_minute must be 1 to 600".into()));
        }
        Ok(Channel {
            name: self.name,
            reach,
            scope: Scope {
                conditions,
                engines: self.engines,
                workflow_types: self.workflow_types,
                tags: self.tags,
            },
            per_minute,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
[[channel]]
name = "ops-hook"
kind = "webhook"
url = "https://hooks.example.com/stepline"
secret_env = "HOOK_SECRET"

[[channel]]
name = "chat"
kind = "slack"
url_env = "SLACK_URL"
conditions = ["failed", "sla_breached"]
engines = ["temporal:*"]

[[channel]]
name = "pager"
kind = "email"
smtp = "smtp://mail.example.com:2525"
from = "stepline@example.com"
to = ["ops@example.com"]
workflow_types = ["billing"]
tags = ["page-me"]
per_minute = 2

[[rule]]
workflow_types = ["nightly_export"]
conditions = ["stuck_step", "forecast_breach"]
alert = false
"#;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOOK_SECRET" => Some("0123456789abcdef".into()),
            "SLACK_URL" => Some("https://hooks.slack.example/T0/B0/x".into()),
            "SMTP_URL" => Some("smtp://alerts:s3cret@mail.example.com:587?tls=required".into()),
            _ => None,
        }
    }

    fn alert(condition: AlertCondition, engine: &str, workflow_type: &str) -> NewAlert {
        NewAlert {
            subject: "wf-1".into(),
            condition,
            engine: engine.into(),
            workflow_id: Some("wf-1".into()),
            workflow_type: Some(workflow_type.into()),
            summary: String::new(),
            tags: Vec::new(),
        }
    }

    #[test]
    fn an_smtp_url_with_its_password_comes_by_reference() {
        let file = FILE.replace(
            "smtp = \"smtp://mail.example.com:2525\"",
            "smtp_env = \"SMTP_URL\"",
        );
        let settings = parse_settings(&file, env).unwrap();
        let email = settings
            .channels
            .iter()
            .find_map(|channel| match &channel.reach {
                Reach::Email { server, .. } => Some(server.clone()),
                _ => None,
            })
            .unwrap();
        assert_eq!(
            email,
            "smtp://alerts:s3cret@mail.example.com:587?tls=required"
        );
    }

    #[test]
    fn channels_declare_how_they_are_reached_and_what_they_take() {
        let settings = parse_settings(FILE, env).unwrap();
        let channels = &settings.channels;
        assert_eq!(channels.len(), 3);
        assert_eq!(channels[0].per_minute, DEFAULT_PER_MINUTE);
        assert_eq!(
            channels[1].reach,
            Reach::Slack {
                url: "https://hooks.slack.example/T0/B0/x".into()
            }
        );
        assert_eq!(channels[2].reach.kind(), "email");

        let failed = alert(AlertCondition::Failed, "temporal:prod", "billing");
        assert!(channels[0].takes(&failed), "no filter: everything");
        assert!(channels[1].takes(&failed));
        let warning = alert(AlertCondition::SlaWarning, "temporal:prod", "billing");
        assert!(!channels[1].takes(&warning), "not its condition");
        let elsewhere = alert(AlertCondition::Failed, "builtin", "billing");
        assert!(!channels[1].takes(&elsewhere), "not its engine");
        assert!(!channels[2].takes(&failed), "untagged");
        let mut tagged = failed.clone();
        tagged.tags = vec!["page-me".into()];
        assert!(channels[2].takes(&tagged));
        let mut other_type = alert(AlertCondition::Failed, "builtin", "sync");
        other_type.tags = vec!["page-me".into()];
        assert!(!channels[2].takes(&other_type));

        // A failing channel is told to the others, not to itself.
        let mut failing = alert(AlertCondition::ChannelFailing, "stepline", "");
        failing.subject = "channel:ops-hook".into();
        failing.workflow_type = None;
        assert!(!channels[0].takes(&failing));
        assert!(channels[1].scope.conditions.len() == 2 && !channels[1].takes(&failing));

        // The rule turns two conditions off for one type, no other.
        assert!(settings.silences(&alert(
            AlertCondition::StuckStep,
            "builtin",
            "nightly_export"
        )));
        assert!(!settings.silences(&alert(AlertCondition::Failed, "builtin", "nightly_export")));
        assert!(!settings.silences(&alert(AlertCondition::StuckStep, "builtin", "billing")));
    }

    #[test]
    fn each_mistake_is_named_with_its_channel_or_rule() {
        for (broken, said) in [
            (
                FILE.replace("\"HOOK_SECRET\"", "\"NO_SUCH_VAR\""),
                "NO_SUCH_VAR",
            ),
            (
                FILE.replace("kind = \"slack\"", "kind = \"pigeon\""),
                "pigeon",
            ),
            (FILE.replace("\"sla_breached\"", "\"sla_late\""), "sla_late"),
            (FILE.replace("smtp://mail", "imap://mail"), "smtp://"),
            (
                FILE.replace("smtp://mail", "smtp://user:secret@mail"),
                "holds a password",
            ),
            (
                FILE.replace(
                    "smtp = \"smtp://mail.example.com:2525\"",
                    "smtp_env = \"NO_SMTP_URL\"",
                ),
                "NO_SMTP_URL",
            ),
            (
                FILE.replace("ops@example.com", "not an address"),
                "not an address",
            ),
            (
                FILE.replace("per_minute = 2", "per_minute = 0"),
                "per_minute",
            ),
            (
                FILE.replace("https://hooks.example.com", "ftp://hooks"),
                "http",
            ),
            (
                FILE.replace("name = \"chat\"", "name = \"ops-hook\""),
                "twice",
            ),
            (
                FILE.replace(
                    "[[channel]]\nname = \"pager\"",
                    "[[channel]]\nnmae = \"pager\"",
                ),
                "nmae",
            ),
            (FILE.replace("alert = false", "alert = true"), "rule[1]"),
            (
                FILE.replace("\"stuck_step\", \"forecast_breach\"", "\"stuck\""),
                "rule[1]: condition \"stuck\"",
            ),
        ] {
            let error = parse_settings(&broken, env).unwrap_err();
            assert!(error.contains(said), "{said}: {error}");
        }
    }
}

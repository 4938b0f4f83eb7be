//! Operators' actions on the runs of in-house engines that push their events: which
//! actions each pushing source declares its engine honours, and how commands reach it —
//! POSTed to its webhook, signed, retried with backoff until it answers; or pulled by the
//! engine (see `http::commands`). A command is written to the store before anything is
//! said to the operator, so none is lost across a restart; the engine receives it at least
//! once, always with the same idempotency key.

use crate::live::LiveHub;
use crate::retry::Backoff;
use crate::source::{
    now_ms, Answer, Command, CommandError, CommandOutcome, Engine, Millis, NewCommand,
    OutboxCommand, OutboxError, Reply, SharedOutbox,
};
use app::model::{Action, Capabilities, CommandState, LiveEvent};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::Notify;

/// The header a webhook delivery's signature rides in: `t=<unix seconds>,v1=<hex>`, the
/// HMAC-SHA256 of `<t>.<body>` under the source's secret.
pub const SIGNATURE_HEADER: &str = "stepline-signature";
/// The header that carries a command's idempotency key (the same on every delivery).
pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";
/// How long an engine is given to show a command carried out, unless its source says.
pub const DEFAULT_CONFIRM_WITHIN: Duration = Duration::from_secs(120);
/// How long a webhook delivery waits for the engine's answer.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);
/// First and longest wait between deliveries of a command the engine has not answered.
const FIRST_RETRY: Duration = Duration::from_secs(1);
const LONGEST_RETRY: Duration = Duration::from_secs(300);

/// How a pushing source's engine gets its commands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// POSTed to `url`, signed with `secret`.
    Webhook { url: String, secret: String },
    /// Long-polled by the engine with its ingest token.
    Pull,
}

impl Delivery {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Webhook { .. } => "webhook",
            Self::Pull => "pull",
        }
    }
}

/// A pushing source declared with the actions its engine honours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushSource {
    pub name: String,
    pub capabilities: Capabilities,
    pub delivery: Delivery,
    /// How long the engine is given to show a command carried out (in its own events)
    /// before the operator is told it has not.
    pub confirm_within: Duration,
}

impl PushSource {
    pub fn engine_id(&self) -> String {
        format!("custom:{}", self.name)
    }

    /// The actions its engine honours, as they are declared.
    pub fn actions(&self) -> Vec<&'static str> {
        Action::ALL
            .into_iter()
            .filter(|action| self.capabilities.can(*action))
            .map(Action::as_str)
            .collect()
    }
}

/// A pushing source as declared, in the file or through the API (secrets only by the
/// name of the environment variable that holds them).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Declaration {
    pub name: String,
    #[serde(default)]
    pub actions: Vec<String>,
    /// `webhook` or `pull`.
    pub delivery: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The name of an environment variable holding the webhook's signing secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_env: Option<String>,
    /// "2m" by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirm_within: Option<String>,
}

/// Reads the pushing sources file: each declared source, or what is wrong with it.
pub fn load_sources(path: &Path) -> Result<Vec<PushSource>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("pushing sources {}: {e}", path.display()))?;
    parse_sources(&text, |name| std::env::var(name).ok())
        .map_err(|e| format!("pushing sources {}: {e}", path.display()))
}

fn parse_sources(
    text: &str,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Vec<PushSource>, String> {
    crate::config::file::read_declarations(text, "source", &env)
}

impl crate::config::file::Declared for PushSource {
    type Raw = Declaration;
    const WHAT: &'static str = "pushing source";

    fn declare(raw: Declaration, env: crate::config::file::Env<'_>) -> Result<Vec<Self>, String> {
        raw.source(env).map(|source| vec![source])
    }

    fn name(&self) -> String {
        self.name.clone()
    }
}

impl Declaration {
    /// The source this declares, its secret read through `env`; or what is wrong with it.
    pub fn source(&self, env: impl Fn(&str) -> Option<String>) -> Result<PushSource, String> {
        super::ingest::engine_id(&self.name)?;
        let at = |what: String| format!("source {:?}: {what}", self.name);
        let mut capabilities = super::ingest::capabilities();
        for name in &self.actions {
            let action = Action::parse(name).ok_or_else(|| {
                at(format!(
                    "action {name:?} is not pause, resume, cancel, terminate, retry or clone"
                ))
            })?;
            capabilities.allow(action);
        }
        let delivery = match self.delivery.as_str() {
            "pull" => Delivery::Pull,
            "webhook" => {
                let url = self
                    .url
                    .clone()
                    .filter(|url| url.starts_with("http://") || url.starts_with("https://"))
                    .ok_or_else(|| at("a webhook needs an http:// or https:// url".into()))?;
                let var = self
                    .secret_env
                    .as_ref()
                    .ok_or_else(|| at("a webhook needs secret_env (its signing secret)".into()))?;
                let secret = crate::config::secret_from(var, &env).map_err(at)?;
                if secret.len() < 16 {
                    return Err(at(format!("the secret in {var} must be 16 bytes or more")));
                }
                Delivery::Webhook { url, secret }
            }
            other => return Err(at(format!("delivery {other:?} is not webhook or pull"))),
        };
        let confirm_within = match &self.confirm_within {
            Some(text) => humantime::parse_duration(text)
                .map_err(|e| at(format!("confirm_within {text:?}: {e}")))?,
            None => DEFAULT_CONFIRM_WITHIN,
        };
        Ok(PushSource {
            name: self.name.clone(),
            capabilities,
            delivery,
            confirm_within,
        })
    }
}

/// The signature of `body` sent at `unix_seconds`, as the header carries it.
pub fn signature(secret: &str, unix_seconds: i64, body: &[u8]) -> String {
    let signed_at = unix_seconds.to_string();
    let digest =
        crate::digest::hmac_sha256_hex(secret.as_bytes(), &[signed_at.as_bytes(), b".", body]);
    format!("t={unix_seconds},v1={digest}")
}

/// The engine of a declared pushing source, as Stepline commands it: each command is
/// written down and handed to the deliverer (webhook) or left for the engine to pull.
pub struct PushEngine {
    id: String,
    source: PushSource,
    outbox: SharedOutbox,
    /// Woken when a command is written: the webhook deliverer, or engines long-polling.
    pub wake: Arc<Notify>,
    /// Where the runs' pages hear that a command moved on.
    hub: Arc<LiveHub>,
    /// Set when the source is removed: its webhook deliverer stops.
    retired: AtomicBool,
}

impl PushEngine {
    pub fn new(source: PushSource, outbox: SharedOutbox, hub: Arc<LiveHub>) -> Self {
        Self {
            id: source.engine_id(),
            source,
            outbox,
            wake: Arc::new(Notify::new()),
            hub,
            retired: AtomicBool::new(false),
        }
    }

    pub fn source(&self) -> &PushSource {
        &self.source
    }

    /// Tells whoever follows run `workflow_id` live that its command `command_id` is now
    /// in `state` (a failed delivery leaves it `requested`, with what went wrong).
    pub fn announce(&self, workflow_id: &str, command_id: i64, state: CommandState) {
        self.hub.publish_of(
            Some(&self.id),
            vec![LiveEvent::EngineCommandChanged {
                workflow_id: workflow_id.to_owned(),
                command_id,
                state,
            }],
        );
    }

    /// Records the engine's `answer` to command `id` and announces it: `false` when no
    /// command `id` of this source was waiting for one.
    pub async fn answered(
        &self,
        id: i64,
        answer: &Answer,
        now: Millis,
    ) -> Result<bool, OutboxError> {
        let Some(workflow_id) = self
            .outbox
            .answer(&self.source.name, id, answer, now)
            .await?
        else {
            return Ok(false);
        };
        let state = match answer {
            Answer::Accepted => CommandState::Accepted,
            Answer::Refused(_) => CommandState::Refused,
        };
        self.announce(&workflow_id, id, state);
        Ok(true)
    }
}

#[async_trait]
impl Engine for PushEngine {
    fn id(&self) -> &str {
        &self.id
    }

    async fn command(
        &self,
        workflow_id: &str,
        command: Command,
        requested_by: &str,
    ) -> Result<CommandOutcome, CommandError> {
        let (action, from_step, reason) = match &command {
            Command::Pause => ("pause", None, None),
            Command::Resume => ("resume", None, None),
            Command::Cancel { reason } => ("cancel", None, reason.as_deref()),
            Command::Retry { from_step } => ("retry", *from_step, None),
            Command::Clone { .. } => ("clone", None, None),
            Command::Terminate { reason } => ("terminate", None, reason.as_deref()),
        };
        let key = crate::auth::secret::new_secret()
            .map_err(|error| CommandError::Unavailable(error.to_string()))?;
        let (written, status) = self
            .outbox
            .request(
                NewCommand {
                    source: &self.source.name,
                    workflow_id,
                    action,
                    from_step,
                    reason,
                    requested_by,
                    idempotency_key: &key,
                },
                now_ms(),
            )
            .await
            .map_err(|error| CommandError::Unavailable(error.to_string()))?
            .ok_or_else(|| CommandError::UnknownWorkflow(workflow_id.to_owned()))?;
        self.announce(workflow_id, written.id, CommandState::Requested);
        self.wake.notify_waiters();
        let how = match self.source.delivery {
            Delivery::Webhook { .. } => "sent to",
            Delivery::Pull => "waiting for",
        };
        Ok(CommandOutcome {
            workflow_id: workflow_id.to_owned(),
            // Nothing has happened yet: the engine's own events will say when it has.
            new_status: status,
            message: format!(
                "{action} requested: {how} engine {}, not confirmed yet",
                self.id
            ),
        })
    }
}

/// Where a pushing source was declared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeclaredIn {
    /// The `--push-sources` file: changed there, not through the API.
    File,
    /// Through the API by an admin, kept in the store.
    Api,
}

/// The declared pushing sources' engines, by source name; shared by every clone, and
/// changed while serving when an admin declares or removes one.
#[derive(Clone, Default)]
pub struct PushEngines {
    by_source: Arc<RwLock<HashMap<String, (Arc<PushEngine>, DeclaredIn)>>>,
}

impl PushEngines {
    fn read(
        &self,
    ) -> std::sync::RwLockReadGuard<'_, HashMap<String, (Arc<PushEngine>, DeclaredIn)>> {
        // Every change is a single insert or remove: a poisoned lock is still consistent.
        self.by_source
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(
        &self,
    ) -> std::sync::RwLockWriteGuard<'_, HashMap<String, (Arc<PushEngine>, DeclaredIn)>> {
        self.by_source
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn get(&self, source: &str) -> Option<Arc<PushEngine>> {
        self.read().get(source).map(|(engine, _)| engine.clone())
    }

    /// Where source `name` was declared, if it is.
    pub fn declared_in(&self, name: &str) -> Option<DeclaredIn> {
        self.read().get(name).map(|(_, declared_in)| *declared_in)
    }

    /// Every source, with where it was declared, by name.
    pub fn all(&self) -> Vec<(Arc<PushEngine>, DeclaredIn)> {
        let mut all: Vec<_> = self.read().values().cloned().collect();
        all.sort_by(|a, b| a.0.source.name.cmp(&b.0.source.name));
        all
    }

    /// Adds `engine` unless its source's name is taken; whether it was added.
    pub fn add(&self, engine: Arc<PushEngine>, declared_in: DeclaredIn) -> bool {
        let mut sources = self.write();
        if sources.contains_key(&engine.source.name) {
            return false;
        }
        sources.insert(engine.source.name.clone(), (engine, declared_in));
        true
    }

    /// Takes source `name` away (its webhook deliverer stops); its engine.
    pub fn remove(&self, name: &str) -> Option<Arc<PushEngine>> {
        let (engine, _) = self.write().remove(name)?;
        engine.retired.store(true, Ordering::Relaxed);
        engine.wake.notify_waiters();
        Some(engine)
    }
}

/// Delivers the webhook source's commands until the process ends: each due command is
/// POSTed (signed, with its idempotency key); an answer settles it, anything else makes it
/// due again after a growing wait.
pub async fn deliver_webhooks(engine: Arc<PushEngine>) {
    let Delivery::Webhook { url, secret } = engine.source.delivery.clone() else {
        return;
    };
    let http = crate::engines::outgoing_client(DELIVERY_TIMEOUT);
    loop {
        // Listening before looking, so a command written meanwhile is not slept through.
        let woken = engine.wake.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        if engine.retired.load(Ordering::Relaxed) {
            return;
        }
        let now = now_ms();
        let due = match engine.outbox.due(&engine.source.name, now, 32).await {
            Ok(due) => due,
            Err(error) => {
                tracing::warn!(source = %engine.source.name, %error, "reading due commands failed");
                Vec::new()
            }
        };
        for command in &due {
            deliver(&engine, &http, &url, &secret, command).await;
        }
        if !due.is_empty() {
            continue;
        }
        let next = engine
            .outbox
            .next_due(&engine.source.name)
            .await
            .ok()
            .flatten();
        let wait = next.map_or(Duration::from_secs(60), |at| {
            Duration::from_millis(u64::try_from(at - now).unwrap_or(0).max(10))
        });
        tokio::select! {
            () = &mut woken => {}
            () = tokio::time::sleep(wait) => {}
        }
    }
}

async fn deliver(
    engine: &PushEngine,
    http: &reqwest::Client,
    url: &str,
    secret: &str,
    command: &OutboxCommand,
) {
    let body = serde_json::to_vec(&command.message()).unwrap_or_default();
    let sent_at = chrono::Utc::now().timestamp();
    let sent = http
        .post(url)
        .header("content-type", "application/json")
        .header(SIGNATURE_HEADER, signature(secret, sent_at, &body))
        .header(IDEMPOTENCY_HEADER, &command.idempotency_key)
        .body(body)
        .send()
        .await;
    let now = now_ms();
    let failed = match sent {
        Ok(response) if response.status().is_success() => match response.json::<Reply>().await {
            Ok(reply) => {
                let answer = Answer::from(reply);
                if let Err(error) = engine.answered(command.id, &answer, now).await {
                    tracing::warn!(%error, "recording an engine's answer failed");
                }
                return;
            }
            Err(error) => format!("the engine's answer was not {{\"accepted\": ...}}: {error}"),
        },
        Ok(response) => format!("the engine answered {}", response.status()),
        Err(error) => format!(
            "the engine could not be reached: {}",
            app::model::error_chain(&error)
        ),
    };
    let tries = u32::try_from(command.attempts + 1).unwrap_or(u32::MAX);
    let wait = Backoff::after(FIRST_RETRY, LONGEST_RETRY, tries);
    let next = now + i64::try_from(wait.as_millis()).unwrap_or(i64::MAX / 2);
    tracing::debug!(source = %engine.source.name, command = command.id, %failed, "command not delivered; retrying");
    if let Err(error) = engine
        .outbox
        .delivered(command.id, now, next, Some(&failed))
        .await
    {
        tracing::warn!(%error, "recording a failed delivery failed");
        return;
    }
    engine.announce(&command.workflow_id, command.id, CommandState::Requested);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_declare_their_actions_and_delivery() {
        let text = r#"
[[source]]
name = "billing"
actions = ["pause", "resume", "cancel", "retry", "clone"]
delivery = "webhook"
url = "http://127.0.0.1:9100/commands"
secret_env = "BILLING_SECRET"

[[source]]
name = "behind-firewall"
actions = ["cancel"]
delivery = "pull"
"#;
        let env = |name: &str| (name == "BILLING_SECRET").then(|| "0123456789abcdef".to_owned());
        let sources = parse_sources(text, env).unwrap();
        assert_eq!(sources.len(), 2);
        assert!(sources[0].capabilities.can_pause && sources[0].capabilities.compensates_on_cancel);
        assert!(!sources[0].capabilities.can_terminate);
        assert_eq!(sources[1].delivery, Delivery::Pull);
        assert!(!sources[1].capabilities.can_pause && sources[1].capabilities.can_cancel);

        let no_secret = parse_sources(text, |_| None).unwrap_err();
        assert!(no_secret.contains("BILLING_SECRET"), "{no_secret}");
        let bad = parse_sources(&text.replace("\"clone\"", "\"explode\""), env).unwrap_err();
        assert!(bad.contains("explode"), "{bad}");
        let reserved = parse_sources(&text.replace("\"billing\"", "\"builtin\""), env).unwrap_err();
        assert!(reserved.contains("own engine"), "{reserved}");
    }

    #[test]
    fn a_signature_covers_the_time_and_the_body() {
        let signed = signature("0123456789abcdef", 1_765_000_000, b"{\"id\":1}");
        assert!(signed.starts_with("t=1765000000,v1="), "{signed}");
        assert_eq!(signed.len(), "t=1765000000,v1=".len() + 64);
        assert_ne!(
            signed,
            signature("0123456789abcdef", 1_765_000_001, b"{\"id\":1}")
        );
        assert_ne!(
            signed,
            signature("0123456789abcdef", 1_765_000_000, b"{\"id\":2}")
        );
        assert_ne!(
            signed,
            signature("fedcba9876543210", 1_765_000_000, b"{\"id\":1}")
        );
    }
}

//! The alerts' deliverer: takes what the outbox holds to each channel, by whichever
//! instance holds the `alerts:deliver` lease. A channel gets each alert alone while it is
//! within its rate; when more are due than its rate allows (a storm), they go together
//! as one digest. A failed try is retried with backoff, the outbox surviving restarts;
//! a channel that keeps failing is itself an alert, resolved when it takes one again.

use super::settings::{Channel, Reach, SharedSettings};
use super::{AlertMoves, NewAlert};
use crate::live::LiveHub;
use crate::retry::Backoff;
use crate::source::lease::LeaseKeeper;
use crate::source::now_ms;
use crate::store::alerts::{DueDelivery, Settled};
use crate::store::rows::Millis;
use crate::store::{Store, StoreError};
use app::model::alert::{Alert, AlertCondition};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

/// The lease under which one instance at a time delivers alerts.
pub const LEASE: &str = "alerts:deliver";
/// The engine alerts about Stepline itself (a failing channel) are filed under.
pub const STEPLINE: &str = "stepline";
/// How often the outbox is looked at when nothing is due sooner.
const LOOK_EVERY: Duration = Duration::from_millis(500);
/// Most deliveries taken from the outbox at a time.
const TAKEN_AT_A_TIME: i64 = 2_000;
/// Most alerts a digest lists one by one (it counts the rest).
const DIGEST_LISTS: usize = 50;
/// Failed tries in a row before a channel is an alert.
const FAILURES_BEFORE_ALERT: u32 = 3;
const FIRST_RETRY: Duration = Duration::from_secs(1);
const LONGEST_RETRY: Duration = Duration::from_secs(300);
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// Delivers alerts to the channels of `settings` while this instance holds the lease, for as long as the
/// process runs.
pub async fn deliver(
    store: Store,
    hub: Arc<LiveHub>,
    settings: SharedSettings,
    mut lease: LeaseKeeper,
) {
    if settings.channels.is_empty() {
        return;
    }
    let mut deliverer = Deliverer::new(store, hub, &settings.channels);
    loop {
        let term = lease.next_term(|| {}).await;
        tracing::info!("this instance delivers the alerts");
        tokio::select! {
            () = term.ended() => {}
            () = deliverer.run() => {}
        }
    }
}

/// One channel as the deliverer keeps it.
struct Kept {
    channel: Channel,
    rate: DefaultDirectRateLimiter,
    /// Failed tries in a row.
    failures: u32,
    /// Whether it is known to take alerts now (then nothing needs resolving).
    known_working: bool,
}

pub struct Deliverer {
    store: Store,
    /// Where a channel's own alert is told.
    hub: Arc<LiveHub>,
    channels: HashMap<String, Kept>,
    http: reqwest::Client,
}

impl Deliverer {
    pub fn new(store: Store, hub: Arc<LiveHub>, channels: &[Channel]) -> Self {
        let http = crate::engines::outgoing_client(SEND_TIMEOUT);
        let channels = channels
            .iter()
            .map(|channel| {
                let per_minute = NonZeroU32::new(channel.per_minute).unwrap_or(NonZeroU32::MIN);
                let kept = Kept {
                    channel: channel.clone(),
                    rate: RateLimiter::direct(Quota::per_minute(per_minute)),
                    failures: 0,
                    known_working: false,
                };
                (channel.name.clone(), kept)
            })
            .collect();
        Self {
            store,
            hub,
            channels,
            http,
        }
    }

    async fn run(&mut self) {
        loop {
            let wait = match self.round(now_ms()).await {
                Ok(wait) => wait,
                Err(error) => {
                    let cause = app::model::error_chain(&error);
                    tracing::warn!(%cause, "reading the alert outbox failed");
                    LOOK_EVERY
                }
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// Sends what is due at `now`; how long to wait before the next round.
    pub async fn round(&mut self, now: Millis) -> Result<Duration, StoreError> {
        let due = self.store.due_deliveries(now, TAKEN_AT_A_TIME).await?;
        let mut by_channel: HashMap<String, Vec<DueDelivery>> = HashMap::new();
        let mut muted = Vec::new();
        let mut unrouted = Vec::new();
        for delivery in due {
            if delivery.alert.muted_until.is_some() {
                muted.push(delivery.id);
            } else if !self.channels.contains_key(&delivery.channel) {
                unrouted.push(delivery.id);
            } else {
                by_channel
                    .entry(delivery.channel.clone())
                    .or_default()
                    .push(delivery);
            }
        }
        self.store
            .settle_deliveries(&muted, Settled::Muted, now)
            .await?;
        self.store
            .settle_deliveries(&unrouted, Settled::Unrouted, now)
            .await?;
        let mut sent_any = false;
        for (name, deliveries) in by_channel {
            sent_any |= self.send_to(&name, deliveries).await?;
        }
        if sent_any {
            return Ok(Duration::ZERO);
        }
        let next = self.store.next_delivery_due().await?;
        Ok(next.map_or(LOOK_EVERY, |at| {
            Duration::from_millis(u64::try_from(at - now_ms()).unwrap_or(0))
                .clamp(Duration::from_millis(50), LOOK_EVERY)
        }))
    }

    /// Sends `deliveries` to channel `name` as its rate allows: each alone when they all
    /// fit, else together as one digest; none when not even that fits now. Whether any
    /// went.
    async fn send_to(
        &mut self,
        name: &str,
        deliveries: Vec<DueDelivery>,
    ) -> Result<bool, StoreError> {
        let Some(kept) = self.channels.get_mut(name) else {
            return Ok(false);
        };
        let count = u32::try_from(deliveries.len()).unwrap_or(u32::MAX);
        let alone =
            NonZeroU32::new(count).is_some_and(|n| matches!(kept.rate.check_n(n), Ok(Ok(()))));
        let message = if alone {
            None
        } else if kept.rate.check().is_ok() {
            Some(digest(&deliveries))
        } else {
            return Ok(false);
        };
        let http = self.http.clone();
        let (ok, failed): (Vec<i64>, Option<(Vec<i64>, String, i64)>) = match message {
            None => {
                let mut ok = Vec::new();
                let mut failed = None;
                for delivery in &deliveries {
                    let message = single(delivery);
                    match send(&http, &kept.channel, &message, delivery.id).await {
                        Ok(()) => ok.push(delivery.id),
                        Err(error) => {
                            let (ids, _, attempts) = failed.get_or_insert((Vec::new(), error, 0));
                            ids.push(delivery.id);
                            *attempts = (*attempts).max(delivery.attempts);
                        }
                    }
                }
                (ok, failed)
            }
            Some(message) => {
                let ids: Vec<i64> = deliveries.iter().map(|d| d.id).collect();
                let first = ids.first().copied().unwrap_or_default();
                match send(&http, &kept.channel, &message, first).await {
                    Ok(()) => {
                        self.store
                            .settle_deliveries(&ids, Settled::Digested, now_ms())
                            .await?;
                        (Vec::new(), None)
                    }
                    Err(error) => {
                        let attempts = deliveries.iter().map(|d| d.attempts).max().unwrap_or(0);
                        (Vec::new(), Some((ids, error, attempts)))
                    }
                }
            }
        };
        self.store
            .settle_deliveries(&ok, Settled::Sent, now_ms())
            .await?;
        let now = now_ms();
        let sent_some = failed.is_none() || !ok.is_empty();
        match failed {
            Some((ids, error, attempts)) => {
                let tries = u32::try_from(attempts + 1).unwrap_or(u32::MAX);
                let wait = Backoff::after(FIRST_RETRY, LONGEST_RETRY, tries);
                let next = now + i64::try_from(wait.as_millis()).unwrap_or(i64::MAX / 2);
                tracing::warn!(channel = name, deliveries = ids.len(), %error, "alert channel failed; retrying");
                self.store.retry_deliveries(&ids, next, &error).await?;
                kept.failures += 1;
                kept.known_working = false;
                if kept.failures == FAILURES_BEFORE_ALERT {
                    let summary = format!(
                        "alert channel {name} ({}) failed {} times in a row: {error}",
                        kept.channel.reach.kind(),
                        kept.failures
                    );
                    move_channel_alert(&self.store, &self.hub, name, Some(summary), now).await?;
                }
            }
            None => {
                if !kept.known_working {
                    move_channel_alert(&self.store, &self.hub, name, None, now).await?;
                    kept.known_working = true;
                }
                kept.failures = 0;
            }
        }
        Ok(sent_some)
    }
}

/// Fires the "channel failing" alert of channel `name` (with `summary`), or resolves it.
async fn move_channel_alert(
    store: &Store,
    hub: &LiveHub,
    name: &str,
    summary: Option<String>,
    now: Millis,
) -> Result<(), StoreError> {
    let subject = format!("channel:{name}");
    let mut moves = AlertMoves::default();
    match summary {
        Some(summary) => moves.fire.push(NewAlert::about(
            AlertCondition::ChannelFailing,
            subject,
            STEPLINE,
            &summary,
        )),
        None => moves
            .resolve
            .push((subject, AlertCondition::ChannelFailing)),
    }
    let told = crate::projector::commit_alert_moves(store, &moves, now).await?;
    crate::projector::publish(store, hub, told);
    Ok(())
}

/// What a channel is sent: the JSON of a webhook, and the text of Slack and email.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub json: serde_json::Value,
    pub subject: String,
    pub text: String,
}

/// The condition's name as messages show it, by news.
fn headline(news: &str, alert: &Alert) -> String {
    let state = if news == "resolved" {
        "RESOLVED"
    } else {
        "FIRING"
    };
    format!("[{state}] {}", alert.condition.label())
}

/// One alert's message.
pub fn single(delivery: &DueDelivery) -> Message {
    let alert = &delivery.alert;
    let headline = headline(&delivery.news, alert);
    Message {
        json: serde_json::json!({
            "kind": "alert",
            "news": delivery.news,
            "delivery_id": delivery.id,
            "alert": alert,
        }),
        subject: format!(
            "[Stepline] {headline}: {}",
            alert.summary.chars().take(120).collect::<String>()
        ),
        text: format!("{headline}: {}", alert.summary),
    }
}

/// One message for many alerts: how many of each condition, and the first ones listed.
pub fn digest(deliveries: &[DueDelivery]) -> Message {
    let mut by_condition: Vec<(AlertCondition, usize)> = Vec::new();
    for delivery in deliveries {
        match by_condition
            .iter_mut()
            .find(|(condition, _)| *condition == delivery.alert.condition)
        {
            Some((_, count)) => *count += 1,
            None => by_condition.push((delivery.alert.condition, 1)),
        }
    }
    let counted: Vec<String> = by_condition
        .iter()
        .map(|(condition, count)| format!("{count} {}", condition.label()))
        .collect();
    let listed: Vec<String> = deliveries
        .iter()
        .take(DIGEST_LISTS)
        .map(|d| format!("- {}: {}", headline(&d.news, &d.alert), d.alert.summary))
        .collect();
    let left_out = deliveries.len().saturating_sub(DIGEST_LISTS);
    let mut text = format!(
        "{} alerts came faster than this channel's rate: {}\n{}",
        deliveries.len(),
        counted.join(", "),
        listed.join("\n")
    );
    if left_out > 0 {
        text.push_str(&format!(
            "\n… and {left_out} more (the console's inbox has them all)"
        ));
    }
    Message {
        json: serde_json::json!({
            "kind": "digest",
            "count": deliveries.len(),
            "by_condition": by_condition
                .iter()
                .map(|(condition, count)| (condition.as_str(), count))
                .collect::<HashMap<_, _>>(),
            "deliveries": deliveries
                .iter()
                .map(|d| serde_json::json!({"delivery_id": d.id, "news": d.news, "alert": d.alert}))
                .collect::<Vec<_>>(),
        }),
        subject: format!(
            "[Stepline] {} alerts (digest): {}",
            deliveries.len(),
            counted.join(", ")
        ),
        text,
    }
}

/// Slack's mrkdwn reads `&`, `<` and `>` as markup: a run's words are shown as text.
fn slack_escaped(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Sends `message` to `channel` (`key`: the idempotency key of a webhook's POST), and
/// counts how that went.
pub async fn send(
    http: &reqwest::Client,
    channel: &Channel,
    message: &Message,
    key: i64,
) -> Result<(), String> {
    let sent = send_once(http, channel, message, key).await;
    metrics::counter!(
        crate::metrics::ALERT_DELIVERIES,
        "channel" => channel.name.clone(),
        "kind" => channel.reach.kind(),
        "outcome" => if sent.is_ok() { "sent" } else { "failed" },
    )
    .increment(1);
    sent
}

async fn send_once(
    http: &reqwest::Client,
    channel: &Channel,
    message: &Message,
    key: i64,
) -> Result<(), String> {
    match &channel.reach {
        Reach::Webhook { url, secret } => {
            let body = serde_json::to_vec(&message.json).map_err(|e| e.to_string())?;
            let sent_at = chrono::Utc::now().timestamp();
            let signature = crate::engines::commands::signature(secret, sent_at, &body);
            let request = http
                .post(url)
                .header("content-type", "application/json")
                .header(crate::engines::commands::SIGNATURE_HEADER, signature)
                .header(
                    crate::engines::commands::IDEMPOTENCY_HEADER,
                    format!("alert-delivery-{key}"),
                )
                .body(body);
            answered(request.send().await)
        }
        Reach::Slack { url } => {
            let body = serde_json::json!({"text": slack_escaped(&message.text)});
            answered(http.post(url).json(&body).send().await)
        }
        Reach::Email { server, from, to } => send_email(server, from, to, message).await,
    }
}

fn answered(sent: Result<reqwest::Response, reqwest::Error>) -> Result<(), String> {
    match sent {
        Ok(response) if response.status().is_success() => Ok(()),
        Ok(response) => Err(format!("answered {}", response.status())),
        Err(error) => Err(format!(
            "could not be reached: {}",
            app::model::error_chain(&error)
        )),
    }
}

async fn send_email(
    server: &str,
    from: &str,
    to: &[String],
    message: &Message,
) -> Result<(), String> {
    use lettre::message::header::ContentType;
    use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
    let mut email = lettre::Message::builder()
        .from(from.parse().map_err(|e| format!("from: {e}"))?)
        .subject(message.subject.replace(['\r', '\n'], " "))
        .header(ContentType::TEXT_PLAIN);
    for address in to {
        email = email.to(address.parse().map_err(|e| format!("to: {e}"))?);
    }
    let email = email
        .body(message.text.clone())
        .map_err(|e| e.to_string())?;
    let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(server)
        .map_err(|e| format!("smtp url: {e}"))?
        .timeout(Some(SEND_TIMEOUT))
        .build();
    transport.send(email).await.map(|_| ()).map_err(|e| {
        format!(
            "the SMTP server refused or could not be reached: {}",
            app::model::error_chain(&e)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn due(id: i64, condition: AlertCondition, summary: &str) -> DueDelivery {
        DueDelivery {
            id,
            channel: "hook".into(),
            news: "fired".into(),
            attempts: 0,
            alert: Alert {
                id,
                condition,
                engine: "builtin".into(),
                workflow_id: Some(format!("wf-{id}")),
                workflow_type: Some("billing".into()),
                summary: summary.into(),
                fired_at: chrono::Utc::now(),
                resolved_at: None,
                acknowledged_by: None,
                acknowledged_at: None,
                muted_until: None,
            },
        }
    }

    #[test]
    fn a_digest_counts_every_alert_and_lists_the_first() {
        let deliveries: Vec<DueDelivery> = (1..=120)
            .map(|id| {
                let condition = if id % 4 == 0 {
                    AlertCondition::SlaBreached
                } else {
                    AlertCondition::Failed
                };
                due(id, condition, &format!("billing wf-{id}: failed"))
            })
            .collect();
        let message = digest(&deliveries);
        assert_eq!(message.json["count"], 120);
        assert_eq!(message.json["by_condition"]["failed"], 90);
        assert_eq!(message.json["by_condition"]["sla_breached"], 30);
        assert_eq!(message.json["deliveries"].as_array().unwrap().len(), 120);
        assert!(message
            .subject
            .starts_with("[Stepline] 120 alerts (digest): 90 Failed, 30 SLA breached"));
        assert_eq!(
            message.text.lines().filter(|l| l.starts_with("- ")).count(),
            DIGEST_LISTS
        );
        assert!(message
            .text
            .ends_with("… and 70 more (the console's inbox has them all)"));
    }

    #[test]
    fn a_single_alert_says_its_news_and_slack_gets_it_as_text() {
        let message = single(&due(
            7,
            AlertCondition::Failed,
            "billing wf-7: failed: <@channel> & co",
        ));
        assert_eq!(message.json["kind"], "alert");
        assert_eq!(message.json["delivery_id"], 7);
        assert_eq!(
            message.text,
            "[FIRING] Failed: billing wf-7: failed: <@channel> & co"
        );
        assert_eq!(
            slack_escaped(&message.text),
            "[FIRING] Failed: billing wf-7: failed: &lt;@channel&gt; &amp; co"
        );
    }
}

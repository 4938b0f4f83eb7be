//! The hub's numbering and replay, and a session driven through channels.

use super::*;
use app::model::{ClientMessage, Subscription, Workflow};
use futures::channel::mpsc;
use futures::{SinkExt, StreamExt};
use std::time::Duration;

fn log_event(workflow_id: &str, line: &str) -> LiveEvent {
    LiveEvent::LogAppended {
        workflow_id: workflow_id.into(),
        step_number: 1,
        lines: vec![line.into()],
        earlier: 0,
    }
}

#[test]
fn seqs_rise_and_replay_returns_what_followed() {
    let hub = LiveHub::new(100);
    assert_eq!(hub.current_seq(), 99);
    hub.publish(vec![
        log_event("a", "1"),
        log_event("b", "2"),
        log_event("a", "3"),
    ]);
    assert_eq!(hub.current_seq(), 102);
    match hub.replay(100, 102) {
        Replay::Events(events) => {
            assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), [101, 102]);
            assert!(events[0].json.contains("\"seq\":101"));
        }
        Replay::TooOld => panic!("still in the ring"),
    }
    assert!(matches!(hub.replay(102, 102), Replay::Events(e) if e.is_empty()));
    // A seq from the future (another server run) cannot be replayed.
    assert!(matches!(hub.replay(500, 500), Replay::TooOld));
}

#[test]
fn the_ring_forgets_the_oldest_events() {
    let hub = LiveHub::new(1);
    let events = (0..RING_CAPACITY + 10)
        .map(|i| log_event("a", &i.to_string()))
        .collect();
    hub.publish(events);
    let newest = hub.current_seq();
    assert!(matches!(hub.replay(1, newest), Replay::TooOld));
    assert!(matches!(hub.replay(newest - 5, newest), Replay::Events(e) if e.len() == 5));
}

#[test]
fn the_ring_holds_a_bounded_number_of_bytes_however_large_the_events() {
    let hub = LiveHub::new(1);
    // Forty pushed log batches of a megabyte each.
    let big = "x".repeat(1024 * 1024);
    hub.publish((0..40).map(|_| log_event("a", &big)).collect());
    let ring = hub.lock();
    assert!(ring.bytes <= RING_BYTES, "{} bytes held", ring.bytes);
    assert_eq!(
        ring.bytes,
        ring.events.iter().map(|e| e.json.len()).sum::<usize>()
    );
    assert_eq!(
        ring.events.len(),
        RING_BYTES / (1024 * 1024) - 1,
        "the newest that fit"
    );
    assert_eq!(ring.events.back().map(|e| e.seq), Some(40));
    drop(ring);
    let newest = hub.current_seq();
    assert!(matches!(hub.replay(newest - 3, newest), Replay::Events(e) if e.len() == 3));
    assert!(matches!(hub.replay(1, newest), Replay::TooOld));
    // One event larger than the whole ring is still published and kept alone.
    let huge = "y".repeat(RING_BYTES + 1);
    hub.publish(vec![log_event("a", &huge)]);
    assert_eq!(hub.lock().events.len(), 1);
}

struct NoRows;

#[async_trait::async_trait]
impl SnapshotSource for NoRows {
    async fn rows(&self, _ids: &[String]) -> Result<Vec<Workflow>, String> {
        Ok(Vec::new())
    }
}

/// A session on channels: what the client sends, and what it receives.
struct Client {
    to_server: mpsc::UnboundedSender<String>,
    from_server: mpsc::UnboundedReceiver<String>,
}

impl Client {
    fn connect(hub: Arc<LiveHub>) -> Self {
        Self::connect_seeing(hub, app::model::identity::Sight::Everything)
    }

    /// A client that may see only the runs of the engines `sight` names.
    fn connect_seeing(hub: Arc<LiveHub>, sight: app::model::identity::Sight) -> Self {
        let (to_server, incoming) = mpsc::unbounded();
        let (outgoing, from_server) = mpsc::unbounded();
        tokio::spawn(run_session(
            hub,
            Arc::new(NoRows),
            sight,
            outgoing,
            incoming,
        ));
        Self {
            to_server,
            from_server,
        }
    }

    async fn send(&mut self, message: ClientMessage) {
        self.to_server
            .send(serde_json::to_string(&message).unwrap())
            .await
            .unwrap();
    }

    async fn next(&mut self) -> LiveMessage {
        let text = tokio::time::timeout(Duration::from_secs(5), self.from_server.next())
            .await
            .expect("a message within 5 s")
            .expect("session open");
        serde_json::from_str(&text).unwrap()
    }

    /// Sends a subscription and waits until the session has taken it: the reply to a
    /// follow-up bad message proves every earlier message was handled.
    async fn subscribe(
        &mut self,
        subscription: Subscription,
        since_seq: Option<u64>,
    ) -> Vec<LiveMessage> {
        self.send(ClientMessage::Subscribe {
            subscription,
            since_seq,
        })
        .await;
        self.to_server.send("not json".into()).await.unwrap();
        let mut before = Vec::new();
        loop {
            let message = self.next().await;
            if matches!(message.event, LiveEvent::ProtocolError { .. }) {
                return before;
            }
            before.push(message);
        }
    }
}

fn ids(list: &[&str]) -> Subscription {
    Subscription {
        workflow_ids: list.iter().map(|s| s.to_string()).collect(),
        ..Subscription::default()
    }
}

#[tokio::test]
async fn a_session_sends_only_the_subscribed_workflows() {
    let hub = Arc::new(LiveHub::new(1));
    let mut client = Client::connect(hub.clone());
    assert!(matches!(client.next().await.event, LiveEvent::Hello {}));
    let snapshot = client.subscribe(ids(&["wf-a"]), None).await;
    assert!(matches!(
        snapshot.as_slice(),
        [LiveMessage {
            event: LiveEvent::Snapshot { complete: true, .. },
            ..
        }]
    ));

    hub.publish(vec![
        log_event("wf-b", "not for us"),
        log_event("wf-a", "for us"),
    ]);
    let message = client.next().await;
    assert_eq!(message.event.workflow_id(), Some("wf-a"));
    assert_eq!(message.seq, 2);
}

fn alert_on(engine: &str, workflow_id: &str) -> LiveEvent {
    LiveEvent::AlertChanged {
        alert: Box::new(app::model::alert::Alert {
            id: 1,
            condition: app::model::alert::AlertCondition::Failed,
            engine: engine.into(),
            workflow_id: Some(workflow_id.into()),
            workflow_type: Some("billing".into()),
            summary: "billing wf-z: failed".into(),
            fired_at: chrono::Utc::now(),
            resolved_at: None,
            acknowledged_by: None,
            acknowledged_at: None,
            muted_until: None,
        }),
    }
}

#[tokio::test]
async fn an_alert_reaches_every_client_that_follows_alerts_and_may_see_its_engine() {
    let hub = Arc::new(LiveHub::new(1));
    let mut following_another = Client::connect(hub.clone());
    let mut seeing_other_engines = Client::connect_seeing(
        hub.clone(),
        app::model::identity::Sight::Engines(vec!["temporal:*".into()]),
    );
    let mut not_following_alerts = Client::connect(hub.clone());
    let with_alerts = Subscription {
        alerts: true,
        ..ids(&["wf-a"])
    };
    for (client, subscription) in [
        (&mut following_another, with_alerts.clone()),
        (&mut seeing_other_engines, with_alerts),
        (&mut not_following_alerts, ids(&["wf-a"])),
    ] {
        assert!(matches!(client.next().await.event, LiveEvent::Hello {}));
        client.subscribe(subscription, None).await;
    }
    hub.publish_of(
        Some("custom:billing"),
        vec![alert_on("custom:billing", "wf-z")],
    );
    hub.publish_of(Some("temporal:prod"), vec![log_event("wf-a", "for all")]);

    let alert = following_another.next().await;
    assert!(
        matches!(alert.event, LiveEvent::AlertChanged { .. }),
        "{alert:?}"
    );
    assert_eq!(
        following_another.next().await.event.workflow_id(),
        Some("wf-a")
    );
    // The others may not see custom:billing, or do not follow the alerts: their first
    // event is the log line.
    for client in [&mut seeing_other_engines, &mut not_following_alerts] {
        let first = client.next().await;
        assert_eq!(first.event.workflow_id(), Some("wf-a"), "{first:?}");
    }
}

#[tokio::test]
async fn a_reconnecting_client_gets_what_it_missed_in_order() {
    let hub = Arc::new(LiveHub::new(1));
    hub.publish(vec![log_event("wf-a", "0")]);
    let seen = hub.current_seq();
    hub.publish(vec![log_event("wf-a", "1"), log_event("wf-a", "2")]);

    let mut client = Client::connect(hub.clone());
    client.next().await; // hello
    let replayed = client
        .subscribe(
            Subscription {
                all: true,
                ..Subscription::default()
            },
            Some(seen),
        )
        .await;
    assert_eq!(
        replayed.iter().map(|m| m.seq).collect::<Vec<_>>(),
        [seen + 1, seen + 2]
    );

    hub.publish(vec![log_event("wf-a", "3")]);
    assert_eq!(client.next().await.seq, seen + 3);
}

#[tokio::test]
async fn a_client_too_far_behind_is_told_to_reload() {
    let hub = Arc::new(LiveHub::new(1));
    // Seqs 1..=RING_CAPACITY+2: the ring has dropped 1 and 2, so "after 1" is gone.
    hub.publish(
        (0..RING_CAPACITY + 2)
            .map(|i| log_event("wf-a", &i.to_string()))
            .collect(),
    );
    let mut client = Client::connect(hub.clone());
    client.next().await; // hello
    let answer = client
        .subscribe(
            Subscription {
                all: true,
                ..Subscription::default()
            },
            Some(1),
        )
        .await;
    assert!(matches!(
        answer.as_slice(),
        [LiveMessage {
            event: LiveEvent::Snapshot {
                complete: false,
                ..
            },
            ..
        }]
    ));
}

#[tokio::test]
async fn bad_subscriptions_are_answered_not_fatal() {
    let hub = Arc::new(LiveHub::new(1));
    let mut client = Client::connect(hub.clone());
    client.next().await; // hello
    client
        .send(ClientMessage::Subscribe {
            subscription: ids(&["not an id!"]),
            since_seq: None,
        })
        .await;
    match client.next().await.event {
        LiveEvent::ProtocolError { message } => assert!(message.contains("not a workflow id")),
        other => panic!("unexpected {other:?}"),
    }
    // Still served afterwards.
    client.subscribe(ids(&["wf-ok"]), None).await;
    hub.publish(vec![log_event("wf-ok", "x")]);
    assert_eq!(client.next().await.event.workflow_id(), Some("wf-ok"));
}

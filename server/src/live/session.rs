//! One client's WebSocket session, generic over its message sink and stream so tests
//! drive it with channels. It follows the client's subscription, replays what a
//! reconnecting client missed, and resyncs a client that fell behind.

use super::{LiveHub, Published, Replay};
use app::model::identity::Sight;
use app::model::{
    is_valid_workflow_id, ClientMessage, LiveEvent, LiveMessage, Subscription, Workflow,
};
use futures::{Sink, SinkExt, Stream, StreamExt};
use std::collections::HashSet;
use std::sync::Arc;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};

/// Most workflow ids one connection may follow.
pub const MAX_SUBSCRIBED_IDS: usize = 1_000;
/// Most events sent in one write when several are waiting.
const MAX_EVENTS_PER_WRITE: usize = 256;

/// Where sessions get the current rows of workflows for a snapshot.
#[async_trait::async_trait]
pub trait SnapshotSource: Send + Sync {
    async fn rows(&self, ids: &[String]) -> Result<Vec<Workflow>, String>;
}

struct Session<S> {
    outgoing: S,
    hub: Arc<LiveHub>,
    snapshots: Arc<dyn SnapshotSource>,
    all: bool,
    ids: HashSet<String>,
    /// Follows the alerts.
    alerts: bool,
    /// The engines whose runs this client may see.
    sight: Sight,
    /// The newest seq this client has been brought up to.
    last_sent: u64,
}

/// The client went away.
struct Gone;

impl<S> Session<S>
where
    S: Sink<String> + Unpin,
{
    fn follows(&self, published: &Published) -> bool {
        let visible = match (&self.sight, &published.engine) {
            (Sight::Everything, _) => true,
            (sight, Some(engine)) => sight.sees(engine),
            (_, None) => published.workflow_id.is_none(),
        };
        visible
            && (self.all
                || (published.to_everyone && self.alerts)
                || published
                    .workflow_id
                    .as_ref()
                    .is_some_and(|id| self.ids.contains(id)))
    }

    async fn send_text(&mut self, text: String) -> Result<(), Gone> {
        self.outgoing.send(text).await.map_err(|_| Gone)
    }

    async fn send_event(&mut self, event: LiveEvent) -> Result<(), Gone> {
        let message = LiveMessage {
            seq: self.last_sent,
            event,
        };
        match serde_json::to_string(&message) {
            Ok(text) => self.send_text(text).await,
            Err(_) => Ok(()),
        }
    }

    /// Sends the events this client follows in one write (one flush, not one per event).
    async fn send_published(&mut self, events: Vec<Arc<Published>>) -> Result<(), Gone> {
        let mut fed = false;
        for published in events {
            if self.follows(&published) {
                self.outgoing
                    .feed(published.json.clone())
                    .await
                    .map_err(|_| Gone)?;
                fed = true;
            }
        }
        if fed {
            self.outgoing.flush().await.map_err(|_| Gone)?;
        }
        Ok(())
    }

    /// A fresh picture of `ids` (and, for an `all` subscription, a request to reload).
    async fn send_snapshot(&mut self, ids: Vec<String>, everything: bool) -> Result<(), Gone> {
        let workflows = if ids.is_empty() {
            Vec::new()
        } else {
            match self.snapshots.rows(&ids).await {
                Ok(rows) => rows,
                Err(cause) => {
                    tracing::error!(%cause, "snapshot failed; asking the client to reload");
                    return self
                        .send_event(LiveEvent::Snapshot {
                            workflows: Vec::new(),
                            complete: false,
                        })
                        .await;
                }
            }
        };
        self.send_event(LiveEvent::Snapshot {
            workflows,
            complete: !everything,
        })
        .await
    }

    /// Brings the client from `since` up to the hub's newest event: from the ring when
    /// it still holds them, else by a snapshot.
    async fn catch_up(&mut self, since: u64) -> Result<(), Gone> {
        let newest = self.hub.current_seq();
        match self.hub.replay(since, newest) {
            Replay::Events(events) => {
                self.last_sent = newest.max(self.last_sent);
                self.send_published(events).await
            }
            Replay::TooOld => {
                self.last_sent = newest.max(self.last_sent);
                let ids: Vec<String> = self.ids.iter().cloned().collect();
                let all = self.all;
                self.send_snapshot(ids, all).await
            }
        }
    }

    async fn on_client_message(&mut self, text: &str) -> Result<(), Gone> {
        let message = match serde_json::from_str::<ClientMessage>(text) {
            Ok(message) => message,
            Err(error) => {
                return self
                    .send_event(LiveEvent::ProtocolError {
                        message: format!("unreadable message: {error}"),
                    })
                    .await
            }
        };
        match message {
            ClientMessage::Subscribe {
                subscription,
                since_seq,
            } => {
                if let Err(message) = self.check(&subscription) {
                    return self.send_event(LiveEvent::ProtocolError { message }).await;
                }
                let new_ids: Vec<String> = subscription
                    .workflow_ids
                    .iter()
                    .filter(|id| !self.ids.contains(*id))
                    .cloned()
                    .collect();
                self.all |= subscription.all;
                self.alerts |= subscription.alerts;
                self.ids.extend(new_ids.iter().cloned());
                match since_seq {
                    Some(since) => match self.hub.replay(since, self.last_sent) {
                        Replay::Events(events) => self.send_published(events).await,
                        Replay::TooOld => {
                            let ids: Vec<String> = self.ids.iter().cloned().collect();
                            let all = self.all;
                            self.send_snapshot(ids, all).await
                        }
                    },
                    None if !new_ids.is_empty() => self.send_snapshot(new_ids, false).await,
                    None => Ok(()),
                }
            }
            ClientMessage::Unsubscribe { subscription } => {
                if subscription.all {
                    self.all = false;
                }
                if subscription.alerts {
                    self.alerts = false;
                }
                for id in &subscription.workflow_ids {
                    self.ids.remove(id);
                }
                Ok(())
            }
        }
    }

    fn check(&self, subscription: &Subscription) -> Result<(), String> {
        if let Some(bad) = subscription
            .workflow_ids
            .iter()
            .find(|id| !is_valid_workflow_id(id))
        {
            return Err(app::model::invalid_workflow_id(bad));
        }
        if self.ids.len() + subscription.workflow_ids.len() > MAX_SUBSCRIBED_IDS {
            return Err(format!(
                "a connection follows at most {MAX_SUBSCRIBED_IDS} workflows; subscribe to all instead"
            ));
        }
        Ok(())
    }
}

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEnd {
    /// The client left, or its connection broke.
    ClientGone,
    /// The server is shutting down: the connection should be closed as "going away".
    ServerClosing,
}

/// Serves one client until it disconnects or the hub shuts down.
pub async fn run_session<S, R>(
    hub: Arc<LiveHub>,
    snapshots: Arc<dyn SnapshotSource>,
    sight: Sight,
    outgoing: S,
    mut incoming: R,
) -> SessionEnd
where
    S: Sink<String> + Unpin,
    R: Stream<Item = String> + Unpin,
{
    let _slot = hub.join();
    let closing = hub.clone();
    let (start, mut receiver) = hub.subscribe();
    let mut session = Session {
        outgoing,
        hub,
        snapshots,
        all: false,
        ids: HashSet::new(),
        alerts: false,
        sight,
        last_sent: start,
    };
    if session.send_event(LiveEvent::Hello {}).await.is_err() {
        return SessionEnd::ClientGone;
    }
    loop {
        let step = tokio::select! {
            () = closing.closing() => return SessionEnd::ServerClosing,
            text = incoming.next() => match text {
                Some(text) => session.on_client_message(&text).await,
                None => return SessionEnd::ClientGone,
            },
            received = receiver.recv() => match received {
                Ok(published) => {
                    // What else has arrived already goes out in the same write.
                    let mut fresh = Vec::new();
                    let mut lagged = false;
                    let mut next = Ok(published);
                    loop {
                        match next {
                            Ok(published) if published.seq > session.last_sent => {
                                session.last_sent = published.seq;
                                fresh.push(published);
                            }
                            Ok(_) => {}
                            Err(TryRecvError::Lagged(missed)) => {
                                metrics::counter!(crate::metrics::LIVE_DROPPED).increment(missed);
                                lagged = true;
                                break;
                            }
                            // Nothing more now (a closed hub shows at the next recv).
                            Err(_) => break,
                        }
                        if fresh.len() >= MAX_EVENTS_PER_WRITE {
                            break;
                        }
                        next = receiver.try_recv();
                    }
                    match session.send_published(fresh).await {
                        Ok(()) if lagged => {
                            let since = session.last_sent;
                            session.catch_up(since).await
                        }
                        sent => sent,
                    }
                }
                Err(RecvError::Lagged(missed)) => {
                    metrics::counter!(crate::metrics::LIVE_DROPPED).increment(missed);
                    let since = session.last_sent;
                    session.catch_up(since).await
                }
                Err(RecvError::Closed) => return SessionEnd::ServerClosing,
            },
        };
        if step.is_err() {
            return SessionEnd::ClientGone;
        }
    }
}

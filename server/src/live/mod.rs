//! The live hub: numbers every live event with a `seq`, keeps the newest ones in a ring
//! for clients that reconnect, and fans them out to the WebSocket sessions. Publishing
//! never waits for a client: a session that falls behind is resynced, not waited for.

mod session;
pub mod shared;
pub mod ws;

pub use session::{run_session, SessionEnd, SnapshotSource};

use app::model::{LiveEvent, LiveMessage};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{broadcast, mpsc, Notify};
use tokio_util::sync::CancellationToken;

/// How many recent events the hub keeps for replay...
pub const RING_CAPACITY: usize = 8_192;
/// ... and how many bytes of them at most, whichever comes first (a burst of large
/// events shortens how far back a reconnecting client can replay, not the memory).
pub const RING_BYTES: usize = 8 * 1024 * 1024;
/// The most of one log append sent live, in lines and in bytes: the newest lines that
/// fit (a step's detail has the rest), so no one event is large.
pub const LIVE_LOG_LINES: usize = 100;
pub const LIVE_LOG_BYTES: usize = 16 * 1024;
/// How many events a session may fall behind before it is resynced.
const FANOUT_CAPACITY: usize = 4_096;

/// A published event, serialised once for every client.
#[derive(Debug)]
pub struct Published {
    pub seq: u64,
    pub workflow_id: Option<String>,
    /// The engine of the run it is about, when known: a client that may read only some
    /// engines gets only their events.
    pub engine: Option<String>,
    /// Sent to every client that may see its engine, whatever it follows (an alert).
    pub to_everyone: bool,
    pub json: String,
}

struct Ring {
    next_seq: u64,
    events: VecDeque<Arc<Published>>,
    /// The JSON bytes of `events`.
    bytes: usize,
}

/// Events published on a hub fed from the shared log, on their way to it.
type ToLog = mpsc::UnboundedSender<(Option<String>, Vec<LiveEvent>)>;

/// The hub; share it as `Arc<LiveHub>`.
pub struct LiveHub {
    ring: Mutex<Ring>,
    fanout: broadcast::Sender<Arc<Published>>,
    /// Set when the hub is fed from the store's shared log (several instances on one
    /// PostgreSQL, see [`shared`]): what is published here goes to the log, and comes back
    /// numbered, as every instance's does.
    to_log: Option<ToLog>,
    /// The sessions connected now.
    clients: AtomicUsize,
    /// Cancelled when the server shuts down: every session says goodbye and ends.
    closing: CancellationToken,
    /// Told when the last session ends.
    all_gone: Notify,
}

/// A session's place among the hub's clients, given up when the session ends.
pub struct ClientSlot {
    hub: Arc<LiveHub>,
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        if self.hub.clients.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.hub.all_gone.notify_waiters();
        }
    }
}

/// What a replay request found.
pub enum Replay {
    /// Every event after the requested seq (possibly none).
    Events(Vec<Arc<Published>>),
    /// The ring no longer reaches back that far (or the seq is from another run of the
    /// server): the client needs a snapshot.
    TooOld,
}

impl LiveHub {
    /// A hub whose sequence starts at `first_seq`. Starting from the clock's milliseconds
    /// times 1000 keeps seqs rising across restarts, so a client's old seq is never
    /// mistaken for a new one.
    pub fn new(first_seq: u64) -> Self {
        Self::numbered_from(first_seq, None)
    }

    fn numbered_from(first_seq: u64, to_log: Option<ToLog>) -> Self {
        let (fanout, _) = broadcast::channel(FANOUT_CAPACITY);
        Self {
            ring: Mutex::new(Ring {
                next_seq: first_seq.max(1),
                events: VecDeque::new(),
                bytes: 0,
            }),
            fanout,
            to_log,
            clients: AtomicUsize::new(0),
            closing: CancellationToken::new(),
            all_gone: Notify::new(),
        }
    }

    /// A session joins; it counts among the clients while it holds the slot.
    pub fn join(self: &Arc<Self>) -> ClientSlot {
        self.clients.fetch_add(1, Ordering::AcqRel);
        ClientSlot { hub: self.clone() }
    }

    /// The sessions connected now.
    pub fn clients(&self) -> usize {
        self.clients.load(Ordering::Acquire)
    }

    /// Resolves when the server is shutting down.
    pub async fn closing(&self) {
        self.closing.cancelled().await;
    }

    /// Shutdown: every session closes its connection (the clients reconnect, to another
    /// instance or to this one restarted). Resolves when all have, or after `grace`.
    pub async fn close(&self, grace: std::time::Duration) -> bool {
        self.closing.cancel();
        let all_gone = async {
            loop {
                // Listening before looking: a session ending in between is not missed.
                let gone = self.all_gone.notified();
                tokio::pin!(gone);
                gone.as_mut().enable();
                if self.clients() == 0 {
                    return;
                }
                gone.await;
            }
        };
        tokio::time::timeout(grace, all_gone).await.is_ok()
    }

    /// Whether events reach this hub numbered from the shared log (see [`shared`]).
    pub fn is_fed(&self) -> bool {
        self.to_log.is_some()
    }

    pub fn starting_now() -> Self {
        let millis = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(1);
        Self::new(millis.saturating_mul(1000))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Ring> {
        // A panic while holding the lock leaves the ring consistent (every step is a
        // single push or pop), so a poisoned lock is still usable.
        self.ring
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Numbers and sends events, in order.
    pub fn publish(&self, events: Vec<LiveEvent>) {
        self.publish_of(None, events);
    }

    /// Publishes events about runs of `engine`: numbers and sends them, or on a hub fed
    /// from the shared log, hands them to the log (they come back numbered).
    pub fn publish_of(&self, engine: Option<&str>, events: Vec<LiveEvent>) {
        if events.is_empty() {
            return;
        }
        if let Some(to_log) = &self.to_log {
            // The log's writer ends only with the runtime.
            let _ = to_log.send((engine.map(str::to_owned), events));
            return;
        }
        let mut ring = self.lock();
        for event in events {
            let seq = ring.next_seq;
            self.send(&mut ring, seq, engine, event);
        }
    }

    /// Sends an event the shared log numbered `seq`. Events come in order; one this hub
    /// has already sent is skipped, and after a gap (events the log no longer kept) the
    /// ring starts again, so that a replay never spans it.
    pub fn deliver(&self, seq: u64, engine: Option<&str>, event: LiveEvent) {
        let mut ring = self.lock();
        if seq < ring.next_seq {
            return;
        }
        if seq > ring.next_seq {
            ring.events.clear();
            ring.bytes = 0;
        }
        self.send(&mut ring, seq, engine, event);
    }

    /// Numbers `event` `seq`, keeps it in the ring and fans it out.
    fn send(&self, ring: &mut Ring, seq: u64, engine: Option<&str>, event: LiveEvent) {
        ring.next_seq = seq + 1;
        let workflow_id = event.workflow_id().map(str::to_owned);
        let to_everyone = event.is_for_everyone();
        let message = LiveMessage { seq, event };
        let json = match serde_json::to_string(&message) {
            Ok(json) => json,
            Err(error) => {
                tracing::error!(%error, "live event not serialisable; skipped");
                return;
            }
        };
        let published = Arc::new(Published {
            seq,
            workflow_id,
            engine: engine.map(str::to_owned),
            to_everyone,
            json,
        });
        while ring.events.len() >= RING_CAPACITY
            || (ring.bytes + published.json.len() > RING_BYTES && !ring.events.is_empty())
        {
            if let Some(oldest) = ring.events.pop_front() {
                ring.bytes -= oldest.json.len();
            }
        }
        ring.bytes += published.json.len();
        ring.events.push_back(published.clone());
        // No receivers is fine: nobody is watching.
        let _ = self.fanout.send(published);
        metrics::counter!(crate::metrics::LIVE_PUBLISHED).increment(1);
    }

    /// The seq of the newest event (0 before the first one).
    pub fn current_seq(&self) -> u64 {
        self.lock().next_seq - 1
    }

    /// Joins the fan-out; returns the seq it starts after, so nothing falls in between.
    pub fn subscribe(&self) -> (u64, broadcast::Receiver<Arc<Published>>) {
        let ring = self.lock();
        (ring.next_seq - 1, self.fanout.subscribe())
    }

    /// Events after `since` up to `until` (inclusive), from the ring.
    pub fn replay(&self, since: u64, until: u64) -> Replay {
        let ring = self.lock();
        let newest = ring.next_seq - 1;
        if since > newest {
            return Replay::TooOld;
        }
        if since == newest || since >= until {
            return Replay::Events(Vec::new());
        }
        match ring.events.front() {
            Some(oldest) if oldest.seq <= since + 1 => {
                let skip = (since + 1 - oldest.seq) as usize;
                Replay::Events(
                    ring.events
                        .iter()
                        .skip(skip)
                        .take_while(|e| e.seq <= until)
                        .cloned()
                        .collect(),
                )
            }
            _ => Replay::TooOld,
        }
    }
}

#[cfg(test)]
mod tests;

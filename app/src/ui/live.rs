//! The browser's live connection to `/ws/orchestration`: a small state machine
//! (connecting, connected, disconnected with backoff) that follows what the page on
//! screen shows (every run for the list, one run for a detail page), keeps the newest
//! summary of every workflow it hears about, and resumes from the last `seq` after a
//! reconnect or a change of subscription.

use crate::model::{Subscription, Workflow};
use leptos::prelude::*;
use std::collections::HashMap;

/// Where the live connection stands; the header shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionState {
    Connecting,
    Connected,
    /// Lost; the next attempt is scheduled with capped exponential backoff.
    Disconnected,
}

impl ConnectionState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connecting => "connecting",
            Self::Connected => "connected",
            Self::Disconnected => "disconnected",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Connecting => "● connecting…",
            Self::Connected => "● live",
            Self::Disconnected => "● reconnecting…",
        }
    }
}

/// The app's one live connection and what it has received.
#[derive(Clone, Copy)]
pub struct LiveConnection {
    pub state: RwSignal<ConnectionState>,
    /// Newest summary of the runs heard of most recently (at most
    /// [`crate::model::LIVE_ROWS_KEPT`]).
    pub workflows: RwSignal<HashMap<String, Workflow>>,
    /// Bumped when the hub could only send a partial snapshot: views reload from the API.
    pub reloads: RwSignal<u64>,
    /// How often each run's commands to its engine moved on (requested, delivered,
    /// answered) since the page was loaded: its page reads them again on each.
    pub command_changes: RwSignal<HashMap<String, u64>>,
    /// Bumped when alerts changed (at most once a second): the inbox and the badge read
    /// them again.
    pub alert_changes: RwSignal<u64>,
    /// How many alerts are open, once read (the header's badge).
    pub open_alerts: RwSignal<Option<u64>>,
    /// When alert changes were last told (ms since the epoch), and whether a telling is
    /// already scheduled: a storm of alerts costs one read a second, not one a frame.
    #[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
    alerts_told: StoredValue<(f64, bool)>,
    /// What the page on screen follows.
    following: RwSignal<Subscription>,
    /// The newest seq seen (from a page or the socket): where a (re)subscription resumes.
    #[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
    last_seq: StoredValue<Option<u64>>,
    /// Failed connection attempts in a row, for the backoff.
    #[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
    failures: StoredValue<u32>,
    /// Messages received since the last animation frame, applied together in the next
    /// one, so a burst of events costs one re-render rather than one each.
    #[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
    inbox: StoredValue<Vec<crate::model::LiveMessage>>,
}

impl LiveConnection {
    /// Follows every run (the list) or just some (a detail page); the socket's
    /// subscription changes to match, resuming from the last seq seen.
    pub fn follow(&self, mut subscription: Subscription) {
        // Every page has the header's badge.
        subscription.alerts = true;
        if self
            .following
            .with_untracked(|current| *current != subscription)
        {
            self.following.set(subscription);
        }
    }

    /// Notes the hub position a page was read at, so the subscription replays every
    /// change after it: nothing falls between the rendered page and the live stream.
    pub fn resume_from(&self, seq: Option<u64>) {
        if self.last_seq.get_value().is_none() {
            self.last_seq.set_value(seq);
        }
    }
}

/// Creates the live connection once per app and shares it through the context; in the
/// browser it connects after hydration. Later calls return the same connection.
pub fn provide_live_connection() -> LiveConnection {
    if let Some(existing) = use_context::<LiveConnection>() {
        return existing;
    }
    let connection = LiveConnection {
        state: RwSignal::new(ConnectionState::Connecting),
        workflows: RwSignal::new(HashMap::new()),
        reloads: RwSignal::new(0),
        command_changes: RwSignal::new(HashMap::new()),
        alert_changes: RwSignal::new(0),
        open_alerts: RwSignal::new(None),
        alerts_told: StoredValue::new((0.0, false)),
        following: RwSignal::new(Subscription {
            all: true,
            workflow_ids: Vec::new(),
            alerts: true,
        }),
        last_seq: StoredValue::new(None),
        failures: StoredValue::new(0),
        inbox: StoredValue::new(Vec::new()),
    };
    provide_context(connection);
    #[cfg(feature = "hydrate")]
    {
        Effect::new(move |_| client::connect(connection));
        // The badge's count, read after hydration and again as alerts change or the
        // stream restarts; a visitor who may not read alerts just sees the link.
        Effect::new(move |_| {
            connection.alert_changes.track();
            connection.reloads.track();
            leptos::task::spawn_local(async move {
                if let Ok(open) = crate::api::count_open_alerts().await {
                    // Not after the app is gone (the page closing).
                    let _ = connection.open_alerts.try_set(Some(open));
                }
            });
        });
        Effect::new(move |previous: Option<Subscription>| {
            let wanted = connection.following.get();
            if let Some(previous) = previous.filter(|p| *p != wanted) {
                client::resubscribe(connection, previous, wanted.clone());
            }
            wanted
        });
    }
    connection
}

#[cfg(feature = "hydrate")]
mod client {
    use super::{ConnectionState, LiveConnection};
    use crate::model::{ClientMessage, LiveEvent, LiveMessage, Subscription};
    use leptos::prelude::*;
    use std::cell::RefCell;
    use std::time::Duration;
    use wasm_bindgen::{closure::Closure, JsCast};

    thread_local! {
        /// The open socket, to change its subscription as the page changes.
        static SOCKET: RefCell<Option<web_sys::WebSocket>> = const { RefCell::new(None) };
    }

    fn send(socket: &web_sys::WebSocket, message: &ClientMessage) {
        if let Ok(text) = serde_json::to_string(message) {
            let _ = socket.send_with_str(&text);
        }
    }

    /// Swaps the open socket's subscription: drop what the last page followed, follow
    /// what this one shows, replaying from the last seq so nothing falls in between.
    pub fn resubscribe(connection: LiveConnection, previous: Subscription, wanted: Subscription) {
        SOCKET.with(|socket| {
            let socket = socket.borrow();
            let Some(socket) = socket.as_ref() else {
                return;
            };
            if socket.ready_state() != web_sys::WebSocket::OPEN {
                return;
            }
            send(
                socket,
                &ClientMessage::Unsubscribe {
                    subscription: previous,
                },
            );
            send(
                socket,
                &ClientMessage::Subscribe {
                    subscription: wanted,
                    since_seq: connection.last_seq.get_value(),
                },
            );
        });
    }

    const FIRST_RETRY_MS: u64 = 250;
    const MAX_RETRY_MS: u64 = 10_000;

    pub fn connect(connection: LiveConnection) {
        connection.state.set(ConnectionState::Connecting);
        let Some(url) = socket_url() else { return };
        let socket = match web_sys::WebSocket::new(&url) {
            Ok(socket) => socket,
            Err(_) => return reconnect_later(connection),
        };

        SOCKET.with(|current| *current.borrow_mut() = Some(socket.clone()));
        let onopen = {
            let socket = socket.clone();
            Closure::<dyn FnMut()>::new(move || {
                connection.failures.set_value(0);
                connection.state.set(ConnectionState::Connected);
                let subscribe = ClientMessage::Subscribe {
                    subscription: connection.following.get_untracked(),
                    since_seq: connection.last_seq.get_value(),
                };
                send(&socket, &subscribe);
            })
        };
        socket.set_onopen(Some(onopen.as_ref().unchecked_ref()));
        onopen.forget();

        let onmessage = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(
            move |event: web_sys::MessageEvent| {
                let Some(text) = event.data().as_string() else {
                    return;
                };
                match serde_json::from_str::<LiveMessage>(&text) {
                    Ok(message) => enqueue(connection, message),
                    Err(error) => leptos::logging::warn!("unreadable live message: {error}"),
                }
            },
        );
        socket.set_onmessage(Some(onmessage.as_ref().unchecked_ref()));
        onmessage.forget();

        let onclose = Closure::<dyn FnMut()>::new(move || reconnect_later(connection));
        socket.set_onclose(Some(onclose.as_ref().unchecked_ref()));
        onclose.forget();
    }

    fn socket_url() -> Option<String> {
        let location = web_sys::window()?.location();
        let scheme = match location.protocol().ok()?.as_str() {
            "https:" => "wss",
            _ => "ws",
        };
        Some(format!(
            "{scheme}://{}/ws/orchestration",
            location.host().ok()?
        ))
    }

    fn reconnect_later(connection: LiveConnection) {
        connection.state.set(ConnectionState::Disconnected);
        let failures = connection.failures.get_value();
        connection.failures.set_value(failures.saturating_add(1));
        let delay = FIRST_RETRY_MS
            .saturating_mul(1 << failures.min(16))
            .min(MAX_RETRY_MS);
        set_timeout(move || connect(connection), Duration::from_millis(delay));
    }

    fn enqueue(connection: LiveConnection, message: LiveMessage) {
        let first = connection.inbox.try_update_value(|inbox| {
            inbox.push(message);
            inbox.len() == 1
        });
        if first == Some(true) {
            request_animation_frame(move || flush(connection));
        }
    }

    /// The least time between two readings of the alerts, in ms.
    const ALERTS_TOLD_EVERY_MS: f64 = 1_000.0;

    /// Bumps `alert_changes` now, or once the last bump is a second old (once, however
    /// many changes come meanwhile).
    fn tell_alert_changes(connection: LiveConnection) {
        let (last, scheduled) = connection.alerts_told.get_value();
        if scheduled {
            return;
        }
        let now = chrono::Utc::now().timestamp_millis() as f64;
        let wait = last + ALERTS_TOLD_EVERY_MS - now;
        if wait <= 0.0 {
            connection.alerts_told.set_value((now, false));
            connection.alert_changes.update(|n| *n += 1);
            return;
        }
        connection.alerts_told.set_value((last, true));
        set_timeout(
            move || {
                connection
                    .alerts_told
                    .set_value((chrono::Utc::now().timestamp_millis() as f64, false));
                connection.alert_changes.update(|n| *n += 1);
            },
            Duration::from_millis(wait as u64),
        );
    }

    /// Applies every message that arrived since the last frame in one update.
    fn flush(connection: LiveConnection) {
        let messages = connection
            .inbox
            .try_update_value(std::mem::take)
            .unwrap_or_default();
        let mut reload = false;
        let mut alerts_changed = false;
        let mut commands_changed = Vec::new();
        connection.workflows.update(|rows| {
            for message in messages {
                connection.last_seq.set_value(Some(message.seq));
                match message.event {
                    LiveEvent::WorkflowUpdated { workflow } => {
                        rows.insert(workflow.id.clone(), *workflow);
                    }
                    LiveEvent::Snapshot {
                        workflows,
                        complete,
                    } => {
                        rows.extend(workflows.into_iter().map(|w| (w.id.clone(), w)));
                        reload |= !complete;
                    }
                    LiveEvent::EngineCommandChanged { workflow_id, .. } => {
                        commands_changed.push(workflow_id);
                    }
                    LiveEvent::AlertChanged { .. } => alerts_changed = true,
                    _ => {}
                }
            }
            crate::model::keep_newest(rows, crate::model::LIVE_ROWS_KEPT);
        });
        if reload {
            connection.reloads.update(|n| *n += 1);
        }
        if alerts_changed {
            tell_alert_changes(connection);
        }
        if !commands_changed.is_empty() {
            connection.command_changes.update(|changes| {
                // Kept small: a page that finds its run's count gone reads once more.
                if changes.len() > crate::model::LIVE_ROWS_KEPT {
                    changes.clear();
                }
                for id in commands_changed {
                    *changes.entry(id).or_default() += 1;
                }
            });
        }
    }
}

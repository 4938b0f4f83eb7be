//! The `/ws/orchestration` endpoint: adapts axum's WebSocket to a live session.

use super::{run_session, LiveHub, SessionEnd, SnapshotSource};
use crate::auth::Caller;
use app::model::identity::{Grants, Sight};
use axum::extract::ws::{close_code, CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use axum::Extension;
use futures::{future, SinkExt, StreamExt};
use std::sync::Arc;

/// Largest message a client may send (subscriptions are small).
const MAX_CLIENT_MESSAGE: usize = 64 * 1024;
/// What a connection reads into at a time, and how much it gathers before writing: an
/// idle client then costs a few KiB, not tungstenite's 128 KiB each way (the session
/// flushes after every batch anyway).
const READ_BUFFER: usize = 4 * 1024;
const WRITE_BUFFER: usize = 16 * 1024;

/// What one connection needs: the hub, where its snapshots come from, and which
/// engines' runs its caller may see.
#[derive(Clone)]
pub struct LiveEndpoint {
    pub hub: Arc<LiveHub>,
    pub snapshots: Arc<dyn SnapshotSource>,
    pub sight: Sight,
}

/// `GET /ws/orchestration`: the live endpoint, for a caller already allowed to read.
#[utoipa::path(
    get,
    operation_id = "live",
    path = crate::http::routes::LIVE,
    tag = "live",
    description = "The live protocol, over a WebSocket: the client sends `ClientMessage`s (subscribe to runs, to all, to the alerts; with since_seq to catch up), the server sends `LiveMessage`s, each numbered by seq (a snapshot when the client is too far behind). A shutting-down server closes with 1001.",
    responses(
        (status = 101, description = "Switching to the WebSocket protocol"),
        (status = 401, description = "Not signed in", body = app::model::ErrorBody),
        (status = 403, description = "May not read", body = app::model::ErrorBody),
    ),
    extensions(("x-websocket-messages" = json!({
        "client": {"$ref": "#/components/schemas/ClientMessage"},
        "server": {"$ref": "#/components/schemas/LiveMessage"}
    })))
)]
pub async fn handler(
    State(state): State<crate::http::AppState>,
    Extension(caller): Extension<Caller>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let endpoint = LiveEndpoint {
        hub: state.hub.clone(),
        sight: caller.sight(),
        snapshots: Arc::new(state.reader_for(Some(caller))),
    };
    // The frame bound too: otherwise a 16 MiB frame is read whole before the message
    // bound refuses it.
    upgrade
        .max_message_size(MAX_CLIENT_MESSAGE)
        .max_frame_size(MAX_CLIENT_MESSAGE)
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .on_upgrade(move |socket| serve(endpoint, socket))
}

async fn serve(endpoint: LiveEndpoint, socket: WebSocket) {
    let (sink, stream) = socket.split();
    let mut outgoing = Box::pin(
        sink.with(|text: String| future::ok::<_, axum::Error>(Message::Text(text.into()))),
    );
    let incoming = stream
        .take_while(|message| {
            future::ready(matches!(message, Ok(m) if !matches!(m, Message::Close(_))))
        })
        .filter_map(|message| {
            future::ready(match message {
                Ok(Message::Text(text)) => Some(text.to_string()),
                _ => None,
            })
        });
    let end = run_session(
        endpoint.hub,
        endpoint.snapshots,
        endpoint.sight,
        &mut outgoing,
        Box::pin(incoming),
    )
    .await;
    if end == SessionEnd::ServerClosing {
        // "Going away": the console reconnects (to another instance, or to this one
        // restarted) and catches up from its last seq.
        let close = Message::Close(Some(CloseFrame {
            code: close_code::AWAY,
            reason: "Stepline is shutting down".into(),
        }));
        let mut sink = std::pin::Pin::into_inner(outgoing).into_inner();
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), sink.send(close)).await;
    }
}

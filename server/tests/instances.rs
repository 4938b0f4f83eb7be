//! Several instances of Stepline on one PostgreSQL, as a team deploys them behind a load
//! balancer: each instance's clients get every change whichever instance took it, under
//! the same `seq`, so a client that reconnects to another instance resumes where it was.
//! Needs a PostgreSQL server (`STEPLINE_TEST_POSTGRES_URL`, as `scripts/test.sh` gives its
//! pass on PostgreSQL): the instances share one database of it.

mod common;
use common::client::Client;
use common::core_state;
use serde_json::json;
use server::live::{Published, Replay};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;

/// The events a hub fans out, from its subscription until the one numbered `last`.
async fn received_until(
    receiver: &mut broadcast::Receiver<Arc<Published>>,
    last: u64,
) -> Vec<Arc<Published>> {
    let mut received = Vec::new();
    while received
        .last()
        .is_none_or(|event: &Arc<Published>| event.seq < last)
    {
        let event = tokio::time::timeout(Duration::from_secs(10), receiver.recv())
            .await
            .unwrap_or_else(|_| panic!("no event numbered {last} within 10 s: {received:?}"))
            .expect("the hub fans out every event");
        received.push(event);
    }
    received
}

fn seqs(events: &[Arc<Published>]) -> Vec<u64> {
    events.iter().map(|event| event.seq).collect()
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set STEPLINE_TEST_POSTGRES_URL and pass --include-ignored"]
async fn every_instance_sends_every_change_under_the_same_seq() {
    assert!(
        std::env::var(server::store::scratch::POSTGRES_VARIABLE).is_ok(),
        "this test runs instances on one PostgreSQL: set {}",
        server::store::scratch::POSTGRES_VARIABLE
    );
    // Two instances on one database (the same folder names the same database).
    let dir = tempfile::tempdir().unwrap();
    let first = core_state::in_folder(dir.path()).await;
    let second = core_state::in_folder(dir.path()).await;
    assert!(first.hub.is_fed() && second.hub.is_fed());
    let (after_first, mut on_first) = first.hub.subscribe();
    let (after_second, mut on_second) = second.hub.subscribe();
    let clients = [
        Client::in_process(server::app(first.clone()))
            .with_token(core_state::operator_token(&first).await),
        Client::in_process(server::app(second.clone()))
            .with_token(core_state::operator_token(&second).await),
    ];

    // Runs started and ended through either instance, as a balancer spreads the pushes.
    for n in 0..10 {
        let id = format!("shared-{n}");
        let started = json!({"type": "workflow_started", "workflow_id": id,
            "at": chrono::Utc::now().to_rfc3339(), "workflow_type": "data_sync"});
        let ended = json!({"type": "workflow_status_changed", "workflow_id": id,
            "at": chrono::Utc::now().to_rfc3339(), "status": "COMPLETED"});
        for (client, event) in [(&clients[n % 2], started), (&clients[(n + 1) % 2], ended)] {
            let (status, body) = client
                .push_raw(&json!({"source": "billing", "events": [event]}).to_string())
                .await;
            assert!(status.is_success(), "{status}: {body}");
        }
    }
    let last = first.store.last_live_seq().await.unwrap();

    let by_first = received_until(&mut on_first, last).await;
    let by_second = received_until(&mut on_second, last).await;
    assert_eq!(
        after_first, after_second,
        "both start after the log's newest event"
    );
    let from = after_first + 1;
    assert_eq!(
        seqs(&by_first),
        (from..=last).collect::<Vec<_>>(),
        "every event, in order, no gap"
    );
    let texts = |events: &[Arc<Published>]| -> Vec<String> {
        events.iter().map(|event| event.json.clone()).collect()
    };
    assert_eq!(
        texts(&by_first),
        texts(&by_second),
        "both instances send the same events under the same seqs"
    );
    for n in 0..10 {
        let id = format!("shared-{n}");
        assert!(
            by_second
                .iter()
                .any(|event| event.workflow_id.as_deref() == Some(id.as_str())
                    && event.json.contains("COMPLETED")),
            "{id} ended, through whichever instance"
        );
    }

    // A client of the first that saw half of it reconnects to the second: it gets the rest.
    let seen = by_first[by_first.len() / 2].seq;
    let Replay::Events(rest) = second.hub.replay(seen, second.hub.current_seq()) else {
        panic!("the second instance still holds what followed seq {seen}");
    };
    assert_eq!(seqs(&rest), ((seen + 1)..=last).collect::<Vec<_>>());

    // An instance started later goes on from the log's newest event.
    let third = core_state::in_folder(dir.path()).await;
    assert_eq!(third.hub.current_seq(), last);
}

//! Jobs only one instance may do (follow an engine source, drive the built-in engine),
//! under leases in the store, on either backend (two stores on one SQLite file stand for
//! two processes as two instances on one PostgreSQL do): one holder at a time, a takeover
//! within seconds of the holder's death, and nothing written by a holder that lost its
//! lease. An instance "dies" here by its runtime being shut down under it, without a
//! chance to give anything up, as a SIGKILLed process.

mod common;
use common::client::{until, Client};
use serde_json::Value;
use server::source::lease::{HOLD_FOR, RENEW_EVERY};
use server::source::{ApplyError, Batch, LeaseKeeper, SharedLeases, Term};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

const PATIENCE: Duration = Duration::from_secs(30);
/// The issue's bound on a takeover after the holder dies.
const TAKEN_OVER_WITHIN: Duration = Duration::from_secs(10);

/// A runtime standing for another process: what runs on it dies with it.
fn another_process() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// `keeper`'s next term, within `within`.
async fn next_term(keeper: &mut LeaseKeeper, within: Duration) -> Term {
    tokio::time::timeout(within, keeper.next_term(|| {}))
        .await
        .unwrap_or_else(|_| panic!("no term within {within:?}"))
}

fn empty_batch(term: &Term) -> Batch {
    Batch {
        engine: "custom:lease-test".into(),
        capabilities: app::model::Capabilities::everything(),
        events: Vec::new(),
        positions: vec![("position".into(), "1".into())],
        held: Some(term.held()),
    }
}

#[tokio::test]
async fn one_instance_holds_a_lease_and_another_takes_it_over_when_it_dies() {
    let (store, _dir) = common::database::fresh_store().await;
    let leases: SharedLeases = Arc::new(store.clone());
    let first_process = another_process();
    let mut first = {
        let _inside = first_process.enter();
        LeaseKeeper::keep(leases.clone(), "job".into(), "first".into())
    };
    let first_term = next_term(&mut first, PATIENCE).await;

    // The second instance hears that the first holds it, and waits.
    let mut second = LeaseKeeper::keep(leases.clone(), "job".into(), "second".into());
    let (heard, mut heard_of_first) = tokio::sync::mpsc::unbounded_channel();
    let second_waits = tokio::spawn(async move {
        let term = second
            .next_term(|| {
                let _ = heard.send(());
            })
            .await;
        (term, second)
    });
    tokio::time::timeout(PATIENCE, heard_of_first.recv())
        .await
        .expect("the second instance hears the lease is held");
    assert!(!second_waits.is_finished(), "one holder at a time");
    assert!(first.holds());
    server::projector::apply_batch(&store, empty_batch(&first_term), 0)
        .await
        .expect("the holder's batches are stored");

    // The first dies without giving the lease up: the second takes it once it runs out.
    let died = Instant::now();
    first_process.shutdown_background();
    let (second_term, second) = tokio::time::timeout(PATIENCE, second_waits)
        .await
        .expect("the second instance takes the lease over")
        .unwrap();
    let took = died.elapsed();
    println!("lease taken over {took:?} after its holder died (lease {HOLD_FOR:?}, renewed every {RENEW_EVERY:?})");
    assert!(took <= TAKEN_OVER_WITHIN, "taken over after {took:?}");
    assert!(second.holds());

    // What the dead holder still had in flight is refused; the new holder's is stored.
    let now = chrono::Utc::now().timestamp_millis();
    match server::projector::apply_batch(&store, empty_batch(&first_term), now).await {
        Err(ApplyError::LeaseLost(lease)) => assert_eq!(lease, "job"),
        other => panic!("a batch of a lost term is refused, not {other:?}"),
    }
    server::projector::apply_batch(&store, empty_batch(&second_term), now)
        .await
        .expect("the new holder's batches are stored");
    let held = store.leases().await.unwrap();
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].holder, "second");
}

#[tokio::test]
async fn an_instance_that_stops_gives_its_leases_up_at_once() {
    let (store, _dir) = common::database::fresh_store().await;
    let leases: SharedLeases = Arc::new(store.clone());
    let mut first = LeaseKeeper::keep(leases.clone(), "job".into(), "first".into());
    next_term(&mut first, PATIENCE).await;
    drop(first);
    until(
        "the stopped holder's lease to be given up",
        PATIENCE,
        || async { store.leases().await.unwrap().is_empty().then_some(()) },
    )
    .await;
    let mut second = LeaseKeeper::keep(leases, "job".into(), "second".into());
    // Taken at its first try, without waiting for the old lease to run out.
    next_term(&mut second, RENEW_EVERY).await;
}

#[tokio::test]
async fn a_lease_lost_and_taken_again_is_a_new_term() {
    let (store, _dir) = common::database::fresh_store().await;
    let now = chrono::Utc::now().timestamp_millis();
    let taken = store
        .take_lease("job", "first", false, now, now + 5_000)
        .await
        .unwrap();
    let renewed = store
        .take_lease("job", "first", true, now + 1_000, now + 6_000)
        .await
        .unwrap();
    assert_eq!(taken, Some(now), "taken now");
    assert_eq!(renewed, taken, "a renewal is the same term");
    assert_eq!(
        store
            .take_lease("job", "second", false, now + 2_000, now + 7_000)
            .await
            .unwrap(),
        None,
        "held by another until it runs out"
    );
    // It ran out before its holder renewed it (stalled, cut off): taken again, anew.
    let again = store
        .take_lease("job", "first", true, now + 6_000, now + 11_000)
        .await
        .unwrap();
    assert_eq!(again, Some(now + 6_000));
    // Its holder lost track of it (a renewal went unanswered) and takes it back before it
    // ran out: a new term too, so the work of the old one in flight is refused.
    let retaken = store
        .take_lease("job", "first", false, now + 7_000, now + 12_000)
        .await
        .unwrap();
    assert_eq!(retaken, Some(now + 7_000));
    let before_retaking = server::source::Held {
        lease: "job".into(),
        holder: "first".into(),
        taken_ms: now + 6_000,
    };
    assert!(matches!(
        server::projector::apply_batch(
            &store,
            Batch {
                held: Some(before_retaking),
                ..empty_batch_for("job")
            },
            now + 7_500
        )
        .await,
        Err(ApplyError::LeaseLost(_))
    ));
    let old_term = server::source::Held {
        lease: "job".into(),
        holder: "first".into(),
        taken_ms: now,
    };
    let batch = Batch {
        held: Some(old_term),
        ..empty_batch_for("job")
    };
    match server::projector::apply_batch(&store, batch, now + 6_500).await {
        Err(ApplyError::LeaseLost(_)) => {}
        other => panic!("the old term's batch is refused, not {other:?}"),
    }
    // And a lease that ran out with nobody taking it is no one's.
    let expired = Batch {
        held: Some(server::source::Held {
            lease: "job".into(),
            holder: "first".into(),
            taken_ms: now + 7_000,
        }),
        ..empty_batch_for("job")
    };
    assert!(matches!(
        server::projector::apply_batch(&store, expired, now + 12_000).await,
        Err(ApplyError::LeaseLost(_))
    ));
}

fn empty_batch_for(engine: &str) -> Batch {
    Batch {
        engine: format!("custom:{engine}"),
        capabilities: app::model::Capabilities::everything(),
        events: Vec::new(),
        positions: Vec::new(),
        held: None,
    }
}

const RELAY: &str = r#"
type = "relay"
name = "Relay"
version = "1"
[[steps]]
name = "one"
action = { kind = "simulate", duration = "300ms" }
[[steps]]
name = "two"
after = ["one"]
action = { kind = "simulate", duration = "300ms" }
[[steps]]
name = "three"
after = ["two"]
action = { kind = "simulate", duration = "300ms" }
"#;

/// An instance with the built-in engine on the database of `dir`, as `instance`: its
/// client through its own router, and the engine.
async fn builtin_instance(
    dir: &std::path::Path,
    instance: &str,
) -> (Client, server::engines::builtin::BuiltinEngine) {
    let (core, token) = common::builtin::core_in(dir, &[RELAY], Some(instance)).await;
    let client = Client::in_process(server::app(core.state)).with_token(token);
    (
        client,
        core.builtin.expect("started with the built-in engine"),
    )
}

fn steps(detail: &Value) -> &Vec<Value> {
    detail["execution"]["steps"].as_array().unwrap()
}

#[tokio::test]
async fn the_built_in_engines_runs_go_on_on_another_instance_when_theirs_dies() {
    common::core_state::show_engine_logs();
    let dir = tempfile::tempdir().unwrap();
    // The first instance drives the engine; it lives on a runtime of its own.
    let first_process = another_process();
    let (first, first_engine) = {
        let dir = dir.path().to_owned();
        std::thread::spawn({
            let handle = first_process.handle().clone();
            move || handle.block_on(builtin_instance(&dir, "first"))
        })
        .join()
        .unwrap()
    };
    tokio::time::timeout(PATIENCE, first_engine.driving())
        .await
        .expect("the only instance drives the engine");
    let (second, _second_engine) = builtin_instance(dir.path(), "second").await;

    // Runs started through both: the second forwards its starts to the first.
    let mut ids = Vec::new();
    for n in 0..20 {
        let through = if n % 2 == 0 { &first } else { &second };
        ids.push(through.start("relay").await);
    }
    let unique: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "each start is one run: {ids:?}");

    // The first dies while the runs are under way.
    until("a step to complete", PATIENCE, || async {
        for id in &ids {
            let detail = second.detail(id).await;
            if steps(&detail).iter().any(|s| s["status"] == "COMPLETED") {
                return Some(());
            }
        }
        None
    })
    .await;
    let died = Instant::now();
    first_process.shutdown_background();

    // The second takes the engine over and every run completes, each step once.
    for id in &ids {
        let detail = second.wait_for_status(id, "COMPLETED", PATIENCE).await;
        for step in steps(&detail) {
            assert_eq!(step["status"], "COMPLETED", "{id}: {step:#}");
            let attempts: Vec<&Value> = step["attempts"].as_array().unwrap().iter().collect();
            let numbers: Vec<i64> = attempts
                .iter()
                .map(|a| a["attempt"].as_i64().unwrap())
                .collect();
            let distinct: BTreeSet<i64> = numbers.iter().copied().collect();
            assert_eq!(
                distinct.len(),
                numbers.len(),
                "{id}: each attempt once: {step:#}"
            );
            let completed = attempts
                .iter()
                .filter(|a| a["status"] == "COMPLETED")
                .count();
            assert_eq!(completed, 1, "{id}: the step completed once: {step:#}");
        }
    }
    println!(
        "all {} runs completed {:?} after the instance driving them died",
        ids.len(),
        died.elapsed()
    );
    // And the second instance now takes starts itself.
    let after = second.start("relay").await;
    second.wait_for_status(&after, "COMPLETED", PATIENCE).await;
}

//! Jobs only one instance of Stepline may do at a time (follow an engine source, drive
//! the built-in engine's runs), each under a lease in the store. A [`LeaseKeeper`] takes
//! its lease when it is free and renews it every [`RENEW_EVERY`]; each time this instance
//! comes to hold it, the job runs for one [`Term`], from what the store holds (its
//! positions), and its batches carry the lease ([`Held`]): the store applies them only
//! while the lease is still this instance's. The term ends when a renewal finds the lease
//! gone (or cannot renew in time) or a batch is refused for it; another instance takes it
//! over once it expires, [`HOLD_FOR`] after the last renewal.

use super::clock::{now_ms, Millis};
use async_trait::async_trait;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// How often a held lease is renewed (and a free one tried).
pub const RENEW_EVERY: Duration = Duration::from_secs(1);
/// How long a lease lasts past its last renewal: after a holder dies, another instance
/// takes the job over within this and one [`RENEW_EVERY`].
pub const HOLD_FOR: Duration = Duration::from_secs(5);

/// Where leases are kept (the store).
#[async_trait]
pub trait Leases: Send + Sync {
    /// Takes lease `name` for `holder` until `expires`, or renews it (`renewing`: the
    /// holder holds it as far as it knows): when `holder` holds it now, since when. A
    /// renewal keeps the moment it was taken; a take is a new term, even by its holder.
    async fn take(
        &self,
        name: &str,
        holder: &str,
        renewing: bool,
        now: Millis,
        expires: Millis,
    ) -> Result<Option<Millis>, LeaseError>;

    /// Gives lease `name` up if `holder` holds it.
    async fn release(&self, name: &str, holder: &str) -> Result<(), LeaseError>;
}

pub type SharedLeases = Arc<dyn Leases>;

/// The store could not be asked.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct LeaseError(pub Box<dyn std::error::Error + Send + Sync>);

/// This process as a lease holder: its host, its pid and a random part, so that a
/// restarted process (which may get the same pid) is a new holder.
pub fn instance_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| {
        let host = std::env::var("HOSTNAME")
            .ok()
            .filter(|host| !host.is_empty())
            .or_else(|| {
                std::fs::read_to_string("/etc/hostname")
                    .ok()
                    .map(|host| host.trim().to_owned())
            })
            .unwrap_or_else(|| "stepline".to_owned());
        format!("{host}-{}-{:08x}", std::process::id(), fastrand::u32(..))
    })
}

/// The lease a batch is written under: the store applies it only while `holder` still
/// holds `lease`, taken at `taken_ms` (a lease this instance lost and took again is a new
/// term: what the old one still had in flight is refused).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub lease: String,
    pub holder: String,
    pub taken_ms: Millis,
}

/// Whether this instance holds a lease, as last renewed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Holding {
    /// Not asked yet.
    Unknown,
    /// Held, since the moment it was taken.
    Held(Millis),
    /// Another instance holds it (or the store could not say in time).
    Elsewhere,
}

/// One stretch of time during which this instance holds the lease; its lease's
/// `taken_ms` tells it from every other term of the same holder.
#[derive(Clone, Debug)]
pub struct Term {
    held: Held,
    over: CancellationToken,
}

impl Term {
    /// When its lease was taken: what tells this term from the holder's others.
    pub fn taken_ms(&self) -> Millis {
        self.held.taken_ms
    }

    /// The lease, as this term's batches carry it.
    pub fn held(&self) -> Held {
        self.held.clone()
    }

    /// Ends the term: a batch was refused for the lease (another instance holds it, or it
    /// expired), so what the job knows in memory may not all be stored.
    pub fn end(&self) {
        self.over.cancel();
    }

    /// Whether the term has ended.
    pub fn is_over(&self) -> bool {
        self.over.is_cancelled()
    }

    /// Resolves when the term ends.
    pub async fn ended(&self) {
        self.over.cancelled().await
    }
}

/// Keeps one lease for this instance while any handle on it lives; cheap to clone.
#[derive(Clone)]
pub struct LeaseKeeper {
    lease: String,
    holder: String,
    holding: watch::Receiver<Holding>,
    /// The current term, ended by the renewing task when the lease is lost.
    term: Arc<Mutex<Option<CancellationToken>>>,
    /// The last term this handle began, and when its lease was taken: one its job ended
    /// (a batch refused for the lease) is not begun again until the renewing task hears
    /// the lease anew.
    last: Option<(Millis, CancellationToken)>,
}

impl LeaseKeeper {
    /// Starts keeping lease `lease` in `leases` for `holder` (this instance:
    /// [`instance_id`], or one of several in a test).
    pub fn keep(leases: SharedLeases, lease: String, holder: String) -> Self {
        let (holding_tx, holding) = watch::channel(Holding::Unknown);
        let term = Arc::new(Mutex::new(None));
        tokio::spawn(renew(
            leases,
            lease.clone(),
            holder.clone(),
            holding_tx,
            term.clone(),
        ));
        Self {
            lease,
            holder,
            holding,
            term,
            last: None,
        }
    }

    /// Whether this instance holds the lease now.
    pub fn holds(&self) -> bool {
        matches!(*self.holding.borrow(), Holding::Held(_))
    }

    /// Waits until this instance holds the lease: the term that begins. Calls
    /// `elsewhere` each time the store says another instance holds it meanwhile.
    pub async fn next_term(&mut self, mut elsewhere: impl FnMut()) -> Term {
        loop {
            let state = *self.holding.borrow_and_update();
            let ended_here = |taken_ms| {
                self.last
                    .as_ref()
                    .is_some_and(|(last, over)| *last == taken_ms && over.is_cancelled())
            };
            match state {
                Holding::Held(taken_ms) if ended_here(taken_ms) => {}
                Holding::Held(taken_ms) => {
                    let over = CancellationToken::new();
                    let mut current = self.term.lock().expect("not poisoned");
                    // Still held as seen again under the lock: the renewing task ends this
                    // term if it loses the lease from now on.
                    if *self.holding.borrow() == state {
                        *current = Some(over.clone());
                        self.last = Some((taken_ms, over.clone()));
                        return Term {
                            held: Held {
                                lease: self.lease.clone(),
                                holder: self.holder.clone(),
                                taken_ms,
                            },
                            over,
                        };
                    }
                }
                Holding::Elsewhere => elsewhere(),
                Holding::Unknown => {}
            }
            // Fails only when the renewing task has gone, which it does not while a
            // handle lives.
            if self.holding.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
}

/// Takes or renews lease `lease` for `holder` every [`RENEW_EVERY`] until every
/// [`LeaseKeeper`] is dropped, saying whether it is held; when it is lost (another holder
/// has it, or it could not be renewed before it runs out), the current term ends. Gives
/// the lease up at the end.
async fn renew(
    leases: SharedLeases,
    lease: String,
    holder: String,
    holding: watch::Sender<Holding>,
    term: Arc<Mutex<Option<CancellationToken>>>,
) {
    let mut renewed_at: Option<Instant> = None;
    let mut ticker = tokio::time::interval(RENEW_EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            () = holding.closed() => break,
        }
        let was = *holding.borrow();
        let now = now_ms();
        let expires = now + Millis::try_from(HOLD_FOR.as_millis()).unwrap_or(Millis::MAX);
        let renewing = matches!(was, Holding::Held(_));
        let state = match leases.take(&lease, &holder, renewing, now, expires).await {
            Ok(Some(taken_ms)) => {
                renewed_at = Some(Instant::now());
                Holding::Held(taken_ms)
            }
            Ok(None) => Holding::Elsewhere,
            // Still held until it could have run out (a renewal that did commit may just
            // not have answered): the term ends early rather than late.
            Err(error) => match was {
                Holding::Held(_)
                    if renewed_at.is_some_and(|at| at.elapsed() + RENEW_EVERY < HOLD_FOR) =>
                {
                    tracing::warn!(%lease, %error, "cannot renew a lease; still held for now");
                    was
                }
                _ => {
                    tracing::warn!(%lease, %error, "cannot take or renew a lease");
                    Holding::Elsewhere
                }
            },
        };
        match (was, state) {
            (Holding::Held(before), Holding::Held(now)) if before == now => {}
            (_, Holding::Held(_)) => {
                tracing::info!(%lease, %holder, "lease taken: this instance does the job");
            }
            (Holding::Held(_), _) => {
                tracing::warn!(%lease, %holder, "lease lost: another instance does the job");
            }
            _ => {}
        }
        // Said before the term ends: a term that begins meanwhile sees it under the lock.
        holding.send_if_modified(|current| {
            let changed = *current != state;
            *current = state;
            changed
        });
        if was != state && matches!(was, Holding::Held(_)) {
            renewed_at = renewed_at.filter(|_| matches!(state, Holding::Held(_)));
            if let Some(over) = term.lock().expect("not poisoned").take() {
                over.cancel();
            }
        }
    }
    if matches!(*holding.borrow(), Holding::Held(_)) {
        if let Err(error) = leases.release(&lease, &holder).await {
            tracing::warn!(%lease, %error, "cannot give a lease up; it expires by itself");
        }
    }
}

//! Waits between tries of a call that keeps failing (the store, an engine's server):
//! capped exponential backoff with jitter, from backon, for every retry loop.

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use std::time::Duration;

/// The waits of one retry loop: `first`, then doubling (with jitter) up to `cap`.
pub struct Backoff {
    builder: ExponentialBuilder,
    waits: ExponentialBackoff,
    cap: Duration,
}

impl Backoff {
    pub fn new(first: Duration, cap: Duration) -> Self {
        let builder = ExponentialBuilder::new()
            .with_min_delay(first)
            .with_max_delay(cap)
            .with_factor(2.0)
            .with_jitter()
            .without_max_times();
        Self {
            builder,
            waits: builder.build(),
            cap,
        }
    }

    /// The wait before try `tries + 1` of a call that failed `tries` times (for retries
    /// whose count is kept elsewhere, such as in the store).
    pub fn after(first: Duration, cap: Duration, tries: u32) -> Duration {
        let mut waits = Self::new(first, cap).waits;
        (0..tries.max(1))
            .filter_map(|_| waits.next())
            .last()
            .unwrap_or(cap)
    }

    /// Waits before the next try.
    pub async fn wait(&mut self) {
        tokio::time::sleep(self.waits.next().unwrap_or(self.cap)).await;
    }

    /// The call went through: the next failure waits `first` again.
    pub fn reset(&mut self) {
        self.waits = self.builder.build();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_grow_to_their_cap_and_start_again_after_a_reset() {
        let (first, cap) = (Duration::from_millis(100), Duration::from_secs(2));
        let mut backoff = Backoff::new(first, cap);
        let waits: Vec<Duration> = (0..8).map(|_| backoff.waits.next().unwrap()).collect();
        // With jitter each wait is between its base and twice it, never over the cap.
        assert!(waits[0] >= first && waits[0] <= first * 2, "{waits:?}");
        assert!(waits.iter().all(|w| *w <= cap * 2), "{waits:?}");
        assert!(waits[7] >= cap, "{waits:?}");
        backoff.reset();
        assert!(backoff.waits.next().unwrap() <= first * 2);
    }
}

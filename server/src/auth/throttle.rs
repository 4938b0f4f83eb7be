//! Sign-in attempts, throttled per account and per client address: a few tries in a
//! burst, then one every so often, so guessing a password is slow whoever guesses.

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

/// Attempts one account may get in a burst, and then one per this period.
const PER_ACCOUNT_BURST: u32 = 10;
const PER_ACCOUNT_EVERY: Duration = Duration::from_secs(30);
/// Attempts one client address may get in a burst (over any accounts), then one per
/// this period.
const PER_CLIENT_BURST: u32 = 30;
const PER_CLIENT_EVERY: Duration = Duration::from_secs(6);

/// The sign-in throttle; shared by every request.
pub struct SignInThrottle {
    accounts: DefaultKeyedRateLimiter<String>,
    clients: DefaultKeyedRateLimiter<IpAddr>,
}

impl Default for SignInThrottle {
    fn default() -> Self {
        let quota = |every: Duration, burst: u32| {
            Quota::with_period(every)
                .expect("a period over zero")
                .allow_burst(NonZeroU32::new(burst).expect("a burst over zero"))
        };
        Self {
            accounts: RateLimiter::keyed(quota(PER_ACCOUNT_EVERY, PER_ACCOUNT_BURST)),
            clients: RateLimiter::keyed(quota(PER_CLIENT_EVERY, PER_CLIENT_BURST)),
        }
    }
}

impl SignInThrottle {
    /// Takes one attempt for `login` from `client`; `Err` with how long to wait when
    /// either has had its share.
    pub fn attempt(&self, login: &str, client: Option<IpAddr>) -> Result<(), Duration> {
        let now = DefaultClock::default().now();
        let account = login.to_lowercase();
        if let Err(not_until) = self.accounts.check_key(&account) {
            return Err(not_until.wait_time_from(now));
        }
        if let Some(client) = client {
            if let Err(not_until) = self.clients.check_key(&client) {
                return Err(not_until.wait_time_from(now));
            }
        }
        // Keys of accounts and clients that have not tried lately are forgotten.
        if self.accounts.len() > 10_000 {
            self.accounts.retain_recent();
        }
        if self.clients.len() > 10_000 {
            self.clients.retain_recent();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_gets_its_burst_then_waits() {
        let throttle = SignInThrottle::default();
        let client: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..PER_ACCOUNT_BURST {
            assert!(throttle.attempt("Ana@example.com", Some(client)).is_ok());
        }
        let wait = throttle
            .attempt("ana@example.com", Some(client))
            .unwrap_err();
        assert!(wait > Duration::ZERO && wait <= PER_ACCOUNT_EVERY);
        // Another account from the same client still may, until the client's share is out.
        assert!(throttle.attempt("bob@example.com", Some(client)).is_ok());
    }
}

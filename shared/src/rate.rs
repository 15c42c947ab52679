//! Rate limits: at most `burst` actions at once, refilled at `per_second` (GCRA, by the
//! `governor` crate), per key ([`PerKey`]: a member, say) or per client address
//! ([`PerClient`]), in bounded tables. Each refusal says how long to wait, for a
//! `Retry-After`.
//!
//! ```
//! use sse_shared::rate::PerKey;
//!
//! let posts = PerKey::new(2, 1.0); // 2 at once, then one a second
//! assert!(posts.try_take(&"alice").is_ok());
//! assert!(posts.try_take(&"alice").is_ok());
//! let wait = posts.try_take(&"alice").unwrap_err(); // say it in `Retry-After`
//! assert!(wait.as_millis() > 0);
//! assert!(posts.try_take(&"bob").is_ok()); // each key its own allowance
//! ```

use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::address::limit_key;

/// The most keys a [`PerKey`] remembers at once.
const MAX_KEYS: usize = 100_000;

/// The longest a full allowance may take to refill: governor keeps `burst x period` in
/// 64-bit nanoseconds (about 584 years), and a larger product overflows.
const MAX_REFILL: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// `burst` at once, then one every `1 / per_second` (at least one an hour; a fraction
/// for slow rates: `10.0 / 60.0` is ten a minute). A burst so large that refilling it
/// would take more than [`MAX_REFILL`] is as good as unlimited, and is capped there.
fn quota(burst: u32, per_second: f64) -> Quota {
    // Governor counts in nanoseconds: a faster rate than one a nanosecond is that.
    let every =
        Duration::from_secs_f64(1.0 / per_second.max(1.0 / 3600.0)).max(Duration::from_nanos(1));
    let most = MAX_REFILL.as_nanos() / every.as_nanos();
    let burst = burst.min(u32::try_from(most).unwrap_or(u32::MAX));
    let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
    Quota::with_period(every)
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
        .allow_burst(burst)
}

/// One allowance per key, in a bounded table: when it is full, allowances that have
/// refilled (which hold nothing worth keeping) are forgotten, and if none has, a new
/// key waits a second. [`PerKey::forget_refilled`] frees them sooner.
pub struct PerKey<K: Hash + Eq + Clone> {
    limiter: DefaultKeyedRateLimiter<K>,
}

impl<K: Hash + Eq + Clone> PerKey<K> {
    /// `burst` at once per key, refilled at `per_second`.
    pub fn new(burst: u32, per_second: f64) -> Self {
        Self {
            limiter: governor::RateLimiter::keyed(quota(burst, per_second)),
        }
    }

    /// Takes one action from `key`'s allowance, or says how long to wait for one.
    pub fn try_take(&self, key: &K) -> Result<(), Duration> {
        if self.limiter.len() >= MAX_KEYS {
            self.forget_refilled();
            if self.limiter.len() >= MAX_KEYS {
                return Err(Duration::from_secs(1));
            }
        }
        self.limiter
            .check_key(key)
            .map_err(|until| until.wait_time_from(DefaultClock::default().now()))
    }

    /// Forgets the allowances that have refilled.
    pub fn forget_refilled(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }

    /// How many allowances are held.
    pub fn len(&self) -> usize {
        self.limiter.len()
    }

    /// Whether no allowance is held.
    pub fn is_empty(&self) -> bool {
        self.limiter.is_empty()
    }
}

/// One allowance per client address (IPv6 per /64, see [`limit_key`]).
pub struct PerClient(PerKey<IpAddr>);

impl PerClient {
    /// `burst` at once per address, refilled at `per_second`.
    pub fn new(burst: u32, per_second: f64) -> Self {
        Self(PerKey::new(burst, per_second))
    }

    /// Takes one action from `ip`'s allowance, or says how long to wait for one.
    pub fn try_take(&self, ip: IpAddr) -> Result<(), Duration> {
        self.0.try_take(&limit_key(ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_refill_rate() {
        let limits = PerKey::new(10, 5.0);
        for _ in 0..10 {
            assert!(limits.try_take(&"k").is_ok());
        }
        // One token comes back every 200 ms.
        let wait = limits.try_take(&"k").err();
        assert!(
            wait.is_some_and(|w| w > Duration::ZERO && w <= Duration::from_millis(200)),
            "{wait:?}"
        );
        std::thread::sleep(wait.unwrap_or_default());
        assert!(
            limits.try_take(&"k").is_ok(),
            "refilled after the wait it named"
        );
        assert!(limits.try_take(&"k").is_err(), "one token, not a burst");
    }

    #[test]
    fn any_burst_and_rate_the_options_allow_make_a_limiter() {
        // The options take any u32 burst; governor overflowed on u32::MAX at 10 a minute.
        for (burst, per_second) in [(u32::MAX, 10.0 / 60.0), (u32::MAX, 1e-9), (1, 1e12)] {
            let limits = PerKey::new(burst, per_second);
            assert!(limits.try_take(&"k").is_ok(), "{burst} at {per_second}/s");
        }
        // Faster than governor can count is one a nanosecond, not the fallback of one a
        // second: a burst of 1 is refilled at once.
        let fast = PerKey::new(1, f64::from(u32::MAX));
        for _ in 0..1000 {
            let taken = fast.try_take(&"k");
            assert!(taken.is_ok() || taken.is_err_and(|wait| wait <= Duration::from_micros(1)));
        }
    }

    #[test]
    fn each_key_has_its_own_allowance_and_refilled_ones_are_forgotten() {
        let limits = PerKey::new(2, 1000.0);
        for key in ["a", "b"] {
            assert!(limits.try_take(&key).is_ok() && limits.try_take(&key).is_ok());
            assert!(limits.try_take(&key).is_err(), "{key}");
        }
        assert_eq!(limits.len(), 2);
        std::thread::sleep(Duration::from_millis(10));
        limits.forget_refilled();
        assert!(limits.is_empty());
    }

    #[test]
    fn the_per_client_table_stays_bounded() {
        let limits = PerClient::new(1, 1.0);
        let ip = |n: u32| IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + n));
        for n in 0..MAX_KEYS as u32 {
            assert!(limits.try_take(ip(n)).is_ok());
        }
        // Every remembered allowance is spent, so none can be forgotten: a new address waits.
        assert_eq!(
            limits.try_take(ip(MAX_KEYS as u32)),
            Err(Duration::from_secs(1))
        );
        assert_eq!(limits.0.len(), MAX_KEYS);
    }
}

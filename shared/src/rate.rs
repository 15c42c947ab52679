//! Rate limits: a token bucket (at most `burst` actions at once, refilled at
//! `per_second`), and [`PerClient`], one bucket per client address in a bounded table.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::limits::limit_key;

/// The most client addresses [`PerClient`] remembers at once.
const MAX_CLIENTS: usize = 100_000;

/// One bucket per client address (IPv6 per /64, see [`limit_key`]). The table stays
/// bounded: when it is full, buckets that have refilled (which hold nothing worth
/// keeping) are forgotten, and if none has, a new address waits a second.
pub struct PerClient {
    burst: u32,
    per_second: f64,
    buckets: Mutex<HashMap<IpAddr, TokenBucket>>,
}

impl PerClient {
    /// `burst` at once per address, refilled at `per_second` (a fraction for slow
    /// rates: `10.0 / 60.0` is ten a minute).
    pub fn new(burst: u32, per_second: f64) -> Self {
        let buckets = Mutex::new(HashMap::new());
        Self {
            burst,
            per_second,
            buckets,
        }
    }

    /// Takes one action from `ip`'s allowance, or says how long to wait for one.
    pub fn try_take(&self, ip: IpAddr) -> Result<(), Duration> {
        let key = limit_key(ip);
        let mut buckets = self.buckets.lock();
        if buckets.len() >= MAX_CLIENTS && !buckets.contains_key(&key) {
            buckets.retain(|_, bucket| !bucket.is_full());
            if buckets.len() >= MAX_CLIENTS {
                return Err(Duration::from_secs(1));
            }
        }
        let (burst, per_second) = (self.burst, self.per_second);
        let bucket = buckets
            .entry(key)
            .or_insert_with(|| TokenBucket::new(burst, per_second));
        bucket.try_take()
    }
}

/// One client's allowance.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    burst: f64,
    per_second: f64,
    tokens: f64,
    refilled_at: Instant,
}

impl TokenBucket {
    /// A full bucket of `burst` tokens (at least 1), refilled at `per_second` (at least
    /// one an hour).
    pub fn new(burst: u32, per_second: f64) -> Self {
        let burst = f64::from(burst.max(1));
        Self {
            burst,
            per_second: per_second.max(1.0 / 3600.0),
            tokens: burst,
            refilled_at: Instant::now(),
        }
    }

    /// Whether the bucket has refilled completely (nothing to remember about it).
    pub fn is_full(&self) -> bool {
        let elapsed = self.refilled_at.elapsed().as_secs_f64();
        self.tokens + elapsed * self.per_second >= self.burst
    }

    /// Takes one token, or says how long until one is there.
    pub fn try_take(&mut self) -> Result<(), Duration> {
        self.try_take_at(Instant::now())
    }

    /// [`TokenBucket::try_take`] at a given time (for tests).
    pub fn try_take_at(&mut self, now: Instant) -> Result<(), Duration> {
        let elapsed = now
            .saturating_duration_since(self.refilled_at)
            .as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.burst);
        self.refilled_at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - self.tokens) / self.per_second,
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_per_client_table_stays_bounded() {
        let limits = PerClient::new(1, 1.0);
        let ip = |n: u32| IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + n));
        for n in 0..MAX_CLIENTS as u32 {
            assert!(limits.try_take(ip(n)).is_ok());
        }
        // Every remembered bucket is empty, so none can be forgotten: a new address waits.
        assert_eq!(
            limits.try_take(ip(MAX_CLIENTS as u32)),
            Err(Duration::from_secs(1))
        );
        assert_eq!(limits.buckets.lock().len(), MAX_CLIENTS);
    }

    #[test]
    fn a_burst_then_the_refill_rate() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(10, 5.0);
        for _ in 0..10 {
            assert!(bucket.try_take_at(start).is_ok());
        }
        let wait = bucket.try_take_at(start).err();
        assert_eq!(wait, Some(Duration::from_millis(200)));
        assert!(
            bucket
                .try_take_at(start + Duration::from_millis(200))
                .is_ok()
        );
        assert!(
            bucket
                .try_take_at(start + Duration::from_millis(250))
                .is_err()
        );
        // A long pause refills to the burst, not beyond.
        let later = start + Duration::from_secs(60);
        for _ in 0..10 {
            assert!(bucket.try_take_at(later).is_ok());
        }
        assert!(bucket.try_take_at(later).is_err());
    }
}

//! Rate limits per client: [`PerClient`], one [`TokenBucket`] (at most `burst` actions
//! at once, refilled at `per_second`) per client address, in a bounded table.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use parking_lot::Mutex;

pub use crate::limits::TokenBucket;
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
}

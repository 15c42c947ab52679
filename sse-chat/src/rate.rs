//! A token bucket: at most `burst` actions at once, refilled at `per_second`.

use std::time::{Duration, Instant};

/// One client's allowance.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    burst: f64,
    per_second: f64,
    tokens: f64,
    refilled_at: Instant,
}

impl TokenBucket {
    /// A full bucket of `burst` tokens, refilled at `per_second` (both at least 1).
    pub fn new(burst: u32, per_second: u32) -> Self {
        let burst = f64::from(burst.max(1));
        Self {
            burst,
            per_second: f64::from(per_second.max(1)),
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
    fn a_burst_then_the_refill_rate() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(10, 5);
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

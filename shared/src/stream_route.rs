//! What a route that opens event streams declares: the [`StreamRoute`] mark, which the
//! production stack's hoops find streams by (admission, the end on shutdown), and the
//! [`StreamSettings`] its streams talk to their clients with besides their events.
//!
//! ```
//! use std::time::Duration;
//! use salvo::prelude::*;
//! use sse_shared::stream_route::{StreamRoute, StreamSettings};
//!
//! #[handler]
//! async fn events(res: &mut Response) {
//!     res.render("a stream goes here");
//! }
//!
//! let settings = StreamSettings { retry: Duration::from_secs(5), ..StreamSettings::default() };
//! // Each stream's own `retry:`, spread by up to 25% either way.
//! let retry = settings.retry();
//! assert!(retry >= Duration::from_millis(3750) && retry <= Duration::from_millis(6250));
//! let router = Router::with_path("events").hoop(StreamRoute).get(events);
//! # let _ = router;
//! ```

use std::time::Duration;

use rand::RngExt;
use salvo::prelude::*;

/// How a stream talks to its client besides its events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamSettings {
    /// The `retry:` each stream sends first: how long its client waits to reconnect.
    pub retry: Duration,
    /// Each stream's `retry` spread at random by up to this many percent either way,
    /// so clients dropped together (a deploy) do not all come back at once (0: exact).
    pub retry_jitter_pct: u8,
    /// The longest silence before a keep-alive comment (proxies close idle streams);
    /// at least a second (`event_stream::MIN_KEEP_ALIVE`).
    pub keep_alive: Duration,
}

impl Default for StreamSettings {
    fn default() -> Self {
        Self {
            retry: Duration::from_secs(3),
            retry_jitter_pct: 25,
            keep_alive: Duration::from_secs(15),
        }
    }
}

impl StreamSettings {
    /// The settings the production stack put in the `Depot` (`routes::service`, from
    /// `--retry-ms` and `--keep-alive-secs`); the defaults without it.
    pub fn from_depot(depot: &Depot) -> Self {
        depot.get_typed::<Self>().copied().unwrap_or_default()
    }

    /// One stream's `retry:`: [`StreamSettings::retry`], spread.
    pub fn retry(&self) -> Duration {
        spread(self.retry, self.retry_jitter_pct)
    }
}

/// `duration` spread at random (uniformly) by up to `pct` percent either way.
pub fn spread(duration: Duration, pct: u8) -> Duration {
    let spread = f64::from(pct.min(100)) / 100.0;
    if spread == 0.0 {
        return duration;
    }
    duration.mul_f64(1.0 + rand::rng().random_range(-spread..=spread))
}

/// Marks a router whose `GET` opens an event stream. It does nothing itself: the
/// production stack's hoops (admission, the end on shutdown) find streams by it.
#[derive(Clone, Copy, Debug, Default)]
pub struct StreamRoute;

#[async_trait]
impl Handler for StreamRoute {
    async fn handle(&self, _: &mut Request, _: &mut Depot, _: &mut Response, _: &mut FlowCtrl) {}
}

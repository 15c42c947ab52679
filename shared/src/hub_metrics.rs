//! A hub's Prometheus metrics: [`HubMetrics`], the [`HubObserver`] a `main.rs` gives
//! the hub, so that `GET /metrics` shows the history's size, the streams that lagged
//! and the shared log's health next to the server's own [`Metrics`].
//!
//! ```
//! use bytes::Bytes;
//! use sse_shared::frame::{Frame, FrameError};
//! use sse_shared::hub::{EventId, HistoryLimits, Hub, HubEvent};
//! use sse_shared::hub_metrics::HubMetrics;
//! use sse_shared::metrics::Metrics;
//!
//! struct Note(String);
//! impl HubEvent for Note {
//!     fn frame(&self, id: EventId) -> Result<Bytes, FrameError> {
//!         Ok(Frame::new().id(&id.to_string())?.data(&self.0).finish())
//!     }
//! }
//!
//! let metrics = Metrics::new(); // what `GET /metrics` renders
//! let hub = Hub::with_observer(HistoryLimits::default(), HubMetrics::register(&metrics));
//! hub.publish(Note("hello".into()))?;
//! let text = metrics.render();
//! assert!(text.contains("sse_history_events 1"));
//! assert!(text.contains("sse_events_published_total 1"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;

use crate::hub::HubObserver;
use crate::metrics::Metrics;

/// What a hub counts, on top of the server's [`Metrics`]: the observer a `main.rs`
/// gives the hub. Each metric's help text, where [`HubMetrics::register`] registers it,
/// is its one description.
#[derive(Clone)]
pub struct HubMetrics {
    events_published: Counter,
    history_events: Gauge,
    history_bytes: Gauge,
    streams_lagged: Counter,
    backend_up: Gauge,
    backend_errors: Counter,
    backend_skipped: Counter,
}

impl HubMetrics {
    /// The hub's metrics, registered in `metrics` (events published are the server's
    /// `events_published`).
    pub fn register(metrics: &Metrics) -> Self {
        let gauge = |name, help| metrics.register(name, help, Gauge::default());
        let counter = |name, help| metrics.register(name, help, Counter::default());
        let backend_up = gauge(
            "backend_up",
            "1 while Redis is reachable; always 1 in memory",
        );
        backend_up.set(1);
        Self {
            events_published: metrics.events_published.clone(),
            history_events: gauge("history_events", "Events retained for replay"),
            history_bytes: gauge(
                "history_bytes",
                "Bytes retained for replay: frames, and topics a hub keeps with them",
            ),
            streams_lagged: counter("streams_lagged", "Streams that fell behind the history"),
            backend_up,
            backend_errors: counter("backend_errors", "Failed calls to Redis, any purpose"),
            backend_skipped: counter(
                "backend_skipped_entries",
                "Redis entries the reader could not read and skipped",
            ),
        }
    }
}

impl HubObserver for HubMetrics {
    fn published(&self, n: u64) {
        self.events_published.inc_by(n);
    }
    fn history(&self, events: usize, bytes: usize) {
        self.history_events
            .set(i64::try_from(events).unwrap_or(i64::MAX));
        self.history_bytes
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }
    fn lagged(&self) {
        self.streams_lagged.inc();
    }
    fn backend_up(&self, up: bool) {
        self.backend_up.set(i64::from(up));
    }
    fn backend_error(&self) {
        self.backend_errors.inc();
    }
    fn backend_skipped(&self) {
        self.backend_skipped.inc();
    }
}

//! Prometheus metrics for SSE servers, served as text on `GET /metrics`.
//!
//! One [`Metrics`] per server (not a global), so several servers in one process (as in
//! the tests) keep separate counts. Handles are cheap clones of shared atomics; a hub's
//! own (history size, lagging streams, the backend) are `hub_metrics::HubMetrics`, the
//! observer a `main.rs` gives the hub (`Hub::with_observer`).
//!
//! ```
//! use sse_shared::metrics::Metrics;
//!
//! let metrics = Metrics::new(); // `GET /metrics` renders it (it is a handler too)
//! metrics.open_streams.inc();
//! metrics.reject("per-ip-limit");
//! let text = metrics.render();
//! assert!(text.contains("sse_open_streams 1"));
//! assert!(text.contains(r#"sse_rejected_streams_total{reason="per-ip-limit"} 1"#));
//! ```

use std::sync::Arc;

use parking_lot::Mutex;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Metric, Registry};
use salvo::prelude::*;

/// What every stream counts, under the `sse_` prefix; each metric's help text, given
/// where [`Metrics::new`] registers it, is its one description.
#[derive(Clone)]
pub struct Metrics {
    /// `sse_open_streams`.
    pub open_streams: Gauge,
    /// `sse_events_published_total`.
    pub events_published: Counter,
    /// `sse_frames_written_total`.
    pub frames_written: Counter,
    /// `sse_keep_alives_total`.
    pub keep_alives: Counter,
    /// `sse_streams_closed_slow_total`.
    pub slow_closed: Counter,
    /// By `reason`.
    rejected: Family<[(&'static str, &'static str); 1], Counter>,
    registry: Arc<Mutex<Registry>>,
}

impl Metrics {
    /// A fresh set of metrics.
    pub fn new() -> Self {
        let m = Self {
            open_streams: Gauge::default(),
            events_published: Counter::default(),
            frames_written: Counter::default(),
            keep_alives: Counter::default(),
            slow_closed: Counter::default(),
            rejected: Family::default(),
            registry: Arc::new(Mutex::new(Registry::with_prefix("sse"))),
        };
        m.register("open_streams", "Streams open now", m.open_streams.clone());
        let help = "Events published (once per event, however many clients get it)";
        m.register("events_published", help, m.events_published.clone());
        let help = "Body frames written to clients (a batch of events is one)";
        m.register("frames_written", help, m.frames_written.clone());
        let help = "Keep-alive comments written";
        m.register("keep_alives", help, m.keep_alives.clone());
        let help = "Streams closed because their client stopped reading";
        m.register("streams_closed_slow", help, m.slow_closed.clone());
        let help = "Streams refused before they started";
        m.register("rejected_streams", help, m.rejected.clone());
        // Every reason shows from the start (at 0), so dashboards see the series.
        for reason in ["server-full", "per-ip-limit", "admission-rate"] {
            let _ = m.rejected.get_or_create(&[("reason", reason)]);
        }
        m
    }

    /// Adds `metric` to what `/metrics` shows, as `sse_<name>`; returns it.
    pub fn register<M: Metric + Clone>(&self, name: &str, help: &str, metric: M) -> M {
        self.registry.lock().register(name, help, metric.clone());
        metric
    }

    /// Counts a refused stream: `reason` is `server-full`, `per-ip-limit` or
    /// `admission-rate`.
    pub fn reject(&self, reason: &'static str) {
        self.rejected.get_or_create(&[("reason", reason)]).inc();
    }

    /// The metrics in the Prometheus text exposition format (OpenMetrics flavour).
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut text, &self.registry.lock());
        text
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// The `GET /metrics` handler.
#[handler]
impl Metrics {
    async fn handle(&self, res: &mut Response) {
        let content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
        let _ = res.add_header("content-type", content_type, true);
        let _ = res.write_body(self.render());
    }
}

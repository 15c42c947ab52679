//! Prometheus metrics for SSE servers, served as text on `GET /metrics`.
//!
//! One [`Metrics`] per server (not a global), so several servers in one process (as in
//! the tests) keep separate counts. Handles are cheap clones of shared atomics.

use std::sync::Arc;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use salvo::prelude::*;

/// Why a stream was refused before it started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// The server-wide `--max-streams` was reached.
    ServerFull,
    /// This client address reached `--max-streams-per-ip`.
    PerIpLimit,
}

type ReasonLabel = [(&'static str, &'static str); 1];

/// The server's metrics. Every example exports at least these.
#[derive(Clone)]
pub struct Metrics {
    /// Streams open right now.
    pub open_streams: Gauge,
    /// Events created for delivery (once per event, however many clients receive it).
    pub events_published: Counter,
    /// Body frames written to clients (several events that are ready together make one frame).
    pub frames_written: Counter,
    /// Keep-alive comments written to idle streams.
    pub keep_alives: Counter,
    /// Subscribers that fell behind the retained history and were reset or closed.
    pub streams_lagged: Counter,
    /// Streams closed because their client stopped reading (a write stayed blocked).
    pub slow_closed: Counter,
    /// Events retained in the history now.
    pub history_events: Gauge,
    /// Bytes of frames retained in the history now.
    pub history_bytes: Gauge,
    /// 1 while the shared event log (Redis) is reachable, 0 while it is not; 1 in memory.
    pub backend_up: Gauge,
    /// Failed calls to the shared event log (Redis), for publishing or reading.
    pub backend_errors: Counter,
    rejected: Family<ReasonLabel, Counter>,
    registry: Arc<Registry>,
}

impl Metrics {
    /// A fresh set of metrics with the common ones registered under the `sse_` prefix.
    pub fn new() -> Self {
        Self::with_registry(|_| {})
    }

    /// Like [`Metrics::new`], letting an example register its own metrics too.
    pub fn with_registry(extra: impl FnOnce(&mut Registry)) -> Self {
        let mut registry = Registry::with_prefix("sse");
        let open_streams = Gauge::default();
        let events_published = Counter::default();
        let frames_written = Counter::default();
        let keep_alives = Counter::default();
        let streams_lagged = Counter::default();
        let slow_closed = Counter::default();
        let history_events = Gauge::default();
        let history_bytes = Gauge::default();
        let backend_up = Gauge::default();
        backend_up.set(1);
        let backend_errors = Counter::default();
        let rejected = Family::<ReasonLabel, Counter>::default();
        registry.register("open_streams", "Streams open now", open_streams.clone());
        registry.register(
            "events_published",
            "Events published (counted once, not per client)",
            events_published.clone(),
        );
        registry.register(
            "frames_written",
            "Body frames written to clients",
            frames_written.clone(),
        );
        registry.register(
            "keep_alives",
            "Keep-alive comments written",
            keep_alives.clone(),
        );
        registry.register(
            "streams_lagged",
            "Streams that fell behind the history and were reset or closed as too slow",
            streams_lagged.clone(),
        );
        registry.register(
            "streams_closed_slow",
            "Streams closed as too slow: a write to the client stayed blocked",
            slow_closed.clone(),
        );
        registry.register(
            "history_events",
            "Events retained in the replay history",
            history_events.clone(),
        );
        registry.register(
            "history_bytes",
            "Bytes of frames retained in the replay history",
            history_bytes.clone(),
        );
        registry.register(
            "backend_up",
            "1 while the shared event log (Redis) is reachable; always 1 in memory",
            backend_up.clone(),
        );
        registry.register(
            "backend_errors",
            "Failed calls to the shared event log (Redis)",
            backend_errors.clone(),
        );
        registry.register(
            "rejected_streams",
            "Streams refused before they started, by reason",
            rejected.clone(),
        );
        extra(&mut registry);
        // Both reasons show from the start (at 0), so dashboards see the series.
        for reason in ["server-full", "per-ip-limit"] {
            let _ = rejected.get_or_create(&[("reason", reason)]);
        }
        Self {
            open_streams,
            events_published,
            frames_written,
            keep_alives,
            streams_lagged,
            slow_closed,
            history_events,
            history_bytes,
            backend_up,
            backend_errors,
            rejected,
            registry: Arc::new(registry),
        }
    }

    /// Counts a refused stream.
    pub fn reject(&self, why: Rejection) {
        let reason = match why {
            Rejection::ServerFull => "server-full",
            Rejection::PerIpLimit => "per-ip-limit",
        };
        self.rejected.get_or_create(&[("reason", reason)]).inc();
    }

    /// The metrics in the Prometheus text exposition format (OpenMetrics flavour).
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut text, &self.registry);
        text
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// The `GET /metrics` handler.
#[async_trait]
impl Handler for Metrics {
    async fn handle(
        &self,
        _req: &mut Request,
        _depot: &mut Depot,
        res: &mut Response,
        _ctrl: &mut FlowCtrl,
    ) {
        let _ = res.add_header(
            "content-type",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            true,
        );
        let _ = res.write_body(self.render());
    }
}

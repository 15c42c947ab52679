//! Prometheus metrics for SSE servers, served as text on `GET /metrics`.
//!
//! One [`Metrics`] per server (not a global), so several servers in one process (as in
//! the tests) keep separate counts. Handles are cheap clones of shared atomics. The
//! hub registers its own (history size, lagging streams, the backend) through
//! [`Metrics::register`].

use std::sync::Arc;

use parking_lot::Mutex;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Metric, Registry};
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

/// What every stream counts, under the `sse_` prefix.
#[derive(Clone)]
pub struct Metrics {
    /// Streams open right now.
    pub open_streams: Gauge,
    /// Events created for delivery (once per event, however many clients receive it).
    pub events_published: Counter,
    /// Body frames written to clients (several events ready together make one frame).
    pub frames_written: Counter,
    /// Keep-alive comments written to idle streams.
    pub keep_alives: Counter,
    /// Streams closed because their client stopped reading (a write stayed blocked).
    pub slow_closed: Counter,
    rejected: Family<ReasonLabel, Counter>,
    registry: Arc<Mutex<Registry>>,
}

impl Metrics {
    /// A fresh set of metrics.
    pub fn new() -> Self {
        let metrics = Self {
            open_streams: Gauge::default(),
            events_published: Counter::default(),
            frames_written: Counter::default(),
            keep_alives: Counter::default(),
            slow_closed: Counter::default(),
            rejected: Family::default(),
            registry: Arc::new(Mutex::new(Registry::with_prefix("sse"))),
        };
        metrics.register(
            "open_streams",
            "Streams open now",
            metrics.open_streams.clone(),
        );
        let published = metrics.events_published.clone();
        metrics.register(
            "events_published",
            "Events published (once, not per client)",
            published,
        );
        let frames = metrics.frames_written.clone();
        metrics.register("frames_written", "Body frames written to clients", frames);
        let keep_alives = metrics.keep_alives.clone();
        metrics.register("keep_alives", "Keep-alive comments written", keep_alives);
        let slow = metrics.slow_closed.clone();
        metrics.register(
            "streams_closed_slow",
            "Streams closed: a write stayed blocked",
            slow,
        );
        let rejected = metrics.rejected.clone();
        metrics.register(
            "rejected_streams",
            "Streams refused before they started",
            rejected,
        );
        // Both reasons show from the start (at 0), so dashboards see the series.
        for why in [Rejection::ServerFull, Rejection::PerIpLimit] {
            let _ = metrics.rejected.get_or_create(&[("reason", reason(why))]);
        }
        metrics
    }

    /// Adds `metric` to what `/metrics` shows, as `sse_<name>`; returns it.
    pub fn register<M: Metric + Clone>(&self, name: &str, help: &str, metric: M) -> M {
        self.registry.lock().register(name, help, metric.clone());
        metric
    }

    /// Counts a refused stream.
    pub fn reject(&self, why: Rejection) {
        self.rejected
            .get_or_create(&[("reason", reason(why))])
            .inc();
    }

    /// The metrics in the Prometheus text exposition format (OpenMetrics flavour).
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut text, &self.registry.lock());
        text
    }
}

fn reason(why: Rejection) -> &'static str {
    match why {
        Rejection::ServerFull => "server-full",
        Rejection::PerIpLimit => "per-ip-limit",
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
        let content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
        let _ = res.add_header("content-type", content_type, true);
        let _ = res.write_body(self.render());
    }
}

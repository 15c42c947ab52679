//! [`Streams`]: what every stream handler needs from its server. Its settings (`retry:`,
//! keep-alive), the connection limits it admits through, the metrics, and the shutdown
//! that ends every stream.
//!
//! A handler takes a [`StreamPermit`] with [`Streams::admit`] *before* it starts the
//! stream, so a refusal is a plain `503`/`429` JSON response, and keeps an
//! [`OpenStream`] in the stream: when the client goes away, the body is dropped and
//! with it the guard, which frees the slot.
//!
//! On SIGTERM call [`Streams::shut_down`] *before* `stop_graceful`: a graceful stop
//! waits for every response to finish, and an event stream never finishes by itself.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use prometheus_client::metrics::{counter::Counter, gauge::Gauge};
use rand::RngExt;
use salvo::Request;
use salvo::http::StatusCode;
use tokio_util::sync::CancellationToken;

use crate::error::ApiError;
use crate::limits::{LimitExceeded, StreamLimiter, StreamPermit, TokenBucket, client_ip};
use crate::metrics::{Metrics, Rejection};

/// How streams behave (`ServerArgs::stream_settings` makes them from the options).
#[derive(Debug, Clone)]
pub struct StreamSettings {
    /// Sent as `retry:` at the start of every stream: the client's reconnect delay,
    /// spread per stream by [`StreamSettings::retry_jitter_pct`].
    pub retry: Duration,
    /// How far each stream's `retry:` may be from `retry`, in percent either way, so
    /// clients that dropped together (a deploy, a crash) do not return together.
    pub retry_jitter_pct: u8,
    /// Origins whose pages may open streams (`withCredentials` too) and call the APIs;
    /// empty: none, and no CORS headers at all.
    pub cors_origins: Vec<String>,
    /// On shutdown each stream ends at a random moment within `drain_window` and leaves
    /// its client a random `retry:` of up to `drain_spread`, so the clients of a
    /// stopping server come back spread out, not in one instant (see [`Self::drain`]).
    pub drain_spread: Duration,
    /// The part of the shutdown grace the ends are spread over.
    pub drain_window: Duration,
    /// How long a stream may stay open before it ends (with a last `retry:`) so that
    /// long-lived clients rebalance across instances; spread per stream like `retry:`.
    pub max_lifetime: Option<Duration>,
    /// New streams admitted per second, with a burst of as many (0: no limit), so a
    /// reconnect storm after a deploy is spread instead of all served at once.
    pub max_new_streams_per_sec: u32,
    /// A comment is written after this long without traffic, so proxies and
    /// browsers do not close an idle stream, and a dead client is noticed.
    pub keep_alive: Duration,
    /// Peers whose `X-Forwarded-For` is believed for per-IP limits (your proxies).
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// How long a write to a client may stay blocked before the server closes the
    /// connection (a client that stopped reading); `None`: never.
    pub write_stall: Option<Duration>,
}

impl StreamSettings {
    /// The `retry:` for a new stream: `retry`, spread at random by up to
    /// `retry_jitter_pct` percent either way (uniformly, per stream).
    pub fn jittered_retry(&self) -> Duration {
        self.jittered(self.retry)
    }

    /// `duration` spread at random by up to `retry_jitter_pct` percent either way.
    fn jittered(&self, duration: Duration) -> Duration {
        let spread = f64::from(self.retry_jitter_pct.min(100)) / 100.0;
        if spread == 0.0 {
            return duration;
        }
        duration.mul_f64(1.0 + rand::rng().random_range(-spread..=spread))
    }

    /// This stream's lifetime, if limited: `max_lifetime` spread at random like
    /// `retry:`, so streams opened together do not end together.
    pub fn lifetime(&self) -> Option<Duration> {
        self.max_lifetime.map(|lifetime| self.jittered(lifetime))
    }

    /// A stream's drain, drawn when it opens: how long after the shutdown starts it
    /// ends (uniform within `drain_window`), and the final `retry:` it sends then
    /// (uniform up to `drain_spread`).
    pub fn drain(&self) -> (Duration, Duration) {
        let mut rng = rand::rng();
        let end_after = self.drain_window.mul_f64(rng.random_range(0.0..=1.0));
        let retry = self.drain_spread.mul_f64(rng.random_range(0.0..=1.0));
        (end_after, retry)
    }
}

/// Settings, limits, metrics and the shutdown signal. Cheap to clone.
#[derive(Clone)]
pub struct Streams {
    settings: StreamSettings,
    limiter: StreamLimiter,
    admission: Option<Arc<Mutex<TokenBucket>>>,
    metrics: Metrics,
    shutdown: Shutdown,
}

impl Streams {
    /// Streams with these settings, limits and metrics.
    pub fn new(settings: StreamSettings, limiter: StreamLimiter, metrics: Metrics) -> Self {
        let rate = settings.max_new_streams_per_sec;
        let admission =
            (rate > 0).then(|| Arc::new(Mutex::new(TokenBucket::new(rate, f64::from(rate)))));
        Self {
            admission,
            settings,
            limiter,
            metrics,
            shutdown: Shutdown::default(),
        }
    }

    /// The server's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The stream settings.
    pub fn settings(&self) -> &StreamSettings {
        &self.settings
    }

    /// Ends every open stream (their bodies finish cleanly). Idempotent.
    pub fn shut_down(&self) {
        self.shutdown.start();
    }

    /// The shutdown signal streams watch.
    pub fn shutdown(&self) -> &Shutdown {
        &self.shutdown
    }

    /// A token cancelled when the server shuts down, for producer tasks (a child:
    /// cancelling it stops only its holder).
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.token.child_token()
    }

    /// Takes a stream slot for this request's client, or answers why not: `503` when
    /// the server is full, `429` when this address holds too many streams; both with
    /// `Retry-After`.
    pub fn admit(&self, req: &Request) -> Result<OpenStream, ApiError> {
        // No refusal during shutdown: a stream opened now gets `retry:` and ends at
        // once, so the client comes back after the delay. A 5xx would make a browser's
        // EventSource give up for good.
        if let Some(Err(wait)) = self.admission.as_ref().map(|a| a.lock().try_take()) {
            self.metrics.reject(Rejection::AdmissionRate);
            // Jittered, so the streams refused together do not all return together.
            let jitter = Duration::from_millis(rand::rng().random_range(0..=2000));
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "too-many-new-streams",
                "More new streams than this server admits a second; try again shortly.",
            )
            .retry_after(wait + jitter));
        }
        let ip = client_ip(req, &self.settings.trusted_proxies);
        let refusal = match self.limiter.try_acquire(ip) {
            Ok(permit) => return Ok(OpenStream::new(permit, &self.metrics)),
            Err(refusal) => refusal,
        };
        let (status, code, hint, why) = match refusal {
            LimitExceeded::ServerFull(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "server-full",
                "try again later",
                Rejection::ServerFull,
            ),
            LimitExceeded::PerIp(_) => (
                StatusCode::TOO_MANY_REQUESTS,
                "too-many-streams",
                "close one before opening another",
                Rejection::PerIpLimit,
            ),
        };
        self.metrics.reject(why);
        Err(ApiError::new(status, code, format!("{refusal}; {hint}."))
            .retry_after(self.settings.retry))
    }
}

/// A shutdown that starts once; clones are the same signal. The flag lets a stream
/// check it with one atomic load per wake-up (see `event_stream`).
#[derive(Clone, Default)]
pub struct Shutdown {
    token: CancellationToken,
    started: Arc<AtomicBool>,
}

impl Shutdown {
    /// Starts the shutdown. Idempotent.
    pub fn start(&self) {
        // The flag first: a waiter woken by the token must find it set.
        self.started.store(true, Ordering::Release);
        self.token.cancel();
    }

    /// Whether the shutdown has started.
    pub fn is_started(&self) -> bool {
        self.started.load(Ordering::Acquire)
    }

    /// Completes when the shutdown starts.
    pub async fn wait(&self) {
        self.token.cancelled().await;
    }

    /// The token and the flag, for a future that owns them.
    pub(crate) fn parts(&self) -> (CancellationToken, Arc<AtomicBool>) {
        (self.token.clone(), Arc::clone(&self.started))
    }
}

/// The drop guard of one open stream: holds its slot and the counters a stream
/// touches (not all of [`Metrics`]: every stream carries this), and frees the slot and
/// updates the gauge when the stream ends for any reason.
pub struct OpenStream {
    _permit: StreamPermit,
    open_streams: Gauge,
    /// Body frames written to this stream's client.
    pub frames_written: Counter,
    /// Keep-alive comments written.
    pub keep_alives: Counter,
    /// Streams closed because their client stopped reading.
    pub slow_closed: Counter,
}

impl OpenStream {
    fn new(permit: StreamPermit, metrics: &Metrics) -> Self {
        metrics.open_streams.inc();
        Self {
            _permit: permit,
            open_streams: metrics.open_streams.clone(),
            frames_written: metrics.frames_written.clone(),
            keep_alives: metrics.keep_alives.clone(),
            slow_closed: metrics.slow_closed.clone(),
        }
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.open_streams.dec();
        tracing::debug!("stream closed");
    }
}

/// Waits for SIGINT (Ctrl-C) or SIGTERM (what service managers and `kill` send).
pub async fn shutdown_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                _ = tokio::signal::ctrl_c() => return "SIGINT",
                _ = term.recv() => return "SIGTERM",
            },
            Err(e) => tracing::warn!("cannot listen for SIGTERM ({e}); Ctrl-C still works"),
        }
    }
    let _ = tokio::signal::ctrl_c().await;
    "SIGINT"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_token_for_tasks_is_cancelled_by_the_shutdown_and_only_stops_its_holder() {
        let streams = Streams::from_args(&crate::ServerArgs::default());
        let token = streams.shutdown_token();
        // Cancelling a task's token does not start the shutdown.
        streams.shutdown_token().cancel();
        assert!(!streams.shutdown().is_started());
        assert!(!token.is_cancelled());

        streams.shut_down();
        assert!(streams.shutdown().is_started());
        let cancelled = tokio::time::timeout(Duration::from_secs(10), token.cancelled()).await;
        assert!(cancelled.is_ok());
    }
}

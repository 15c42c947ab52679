//! [`Streams`]: what every stream handler needs from its server: the options
//! ([`ServerArgs`]: `retry:`, keep-alive, drain), admission through the connection
//! [`limits`](crate::limits), the [`metrics`](crate::metrics), and the shutdown that
//! ends every stream.
//!
//! A handler takes an [`OpenStream`] with [`Streams::admit`] *before* it starts the
//! stream, so a refusal is a plain `503`/`429` JSON response, and keeps it in the
//! stream: when the client goes away, the body is dropped and with it the guard, which
//! frees the slot. On SIGTERM call [`Streams::shut_down`] *before* `stop_graceful`: a
//! graceful stop waits for every response to finish, and an event stream never does.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota};
use prometheus_client::metrics::{counter::Counter, gauge::Gauge};
use rand::RngExt;
use salvo::Request;
use salvo::http::StatusCode;
use tokio_util::sync::CancellationToken;

use crate::config::ServerArgs;
use crate::error::ApiError;
use crate::limits::{StreamLimiter, StreamPermit, client_ip};
use crate::metrics::Metrics;

/// Options, limits, metrics and the shutdown signal. Cheap to clone.
#[derive(Clone)]
pub struct Streams {
    args: Arc<ServerArgs>,
    limiter: StreamLimiter,
    /// `--max-new-streams-per-sec`, when set.
    admission: Option<Arc<DefaultDirectRateLimiter>>,
    metrics: Metrics,
    shutdown: Shutdown,
}

impl Streams {
    /// Streams as the options say, with fresh metrics.
    pub fn from_args(args: &ServerArgs) -> Self {
        let rate = args.max_new_streams_per_sec;
        Self {
            args: Arc::new(args.clone()),
            limiter: StreamLimiter::new(args.max_streams, args.max_streams_per_ip),
            // `rate` a second, and as many at once (governor's GCRA).
            admission: NonZeroU32::new(rate)
                .map(|rate| Arc::new(governor::RateLimiter::direct(Quota::per_second(rate)))),
            metrics: Metrics::new(),
            shutdown: Shutdown::default(),
        }
    }

    /// The server's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The options streams follow.
    pub fn settings(&self) -> &ServerArgs {
        &self.args
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

    /// Takes a stream slot for this request's client, or answers why not (with
    /// `Retry-After`): `503` past `--max-new-streams-per-sec` or `--max-streams`, `429`
    /// past `--max-streams-per-ip`. During a shutdown a stream is still admitted: it
    /// gets its `retry:` and ends, where a 5xx would make `EventSource` give up.
    pub fn admit(&self, req: &Request) -> Result<OpenStream, ApiError> {
        let now = DefaultClock::default().now();
        let refused = self.admission.as_ref().map(|a| a.check());
        if let Some(Err(until)) = refused {
            let wait = until.wait_time_from(now);
            self.metrics.reject("admission-rate");
            // Jittered, so the streams refused together do not all return together.
            let jitter = Duration::from_millis(rand::rng().random_range(0..=2000));
            let message = "More new streams than this server admits a second; try again shortly.";
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "too-many-new-streams",
                message,
            )
            .retry_after(wait + jitter));
        }
        let ip = client_ip(req, &self.args.trusted_proxies);
        let retry = Duration::from_millis(self.args.retry_ms);
        match self.limiter.try_acquire(ip) {
            Ok(permit) => Ok(OpenStream::new(permit, &self.metrics)),
            Err(refusal) => {
                self.metrics.reject(refusal.label());
                Err(ApiError::from(refusal).retry_after(retry))
            }
        }
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
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            server: ServerArgs,
        }
        let streams = Streams::from_args(&<Cli as clap::Parser>::parse_from(["t"]).server);
        let token = streams.shutdown_token();
        // Cancelling a task's token does not start the shutdown.
        streams.shutdown_token().cancel();
        assert!(!streams.shutdown().started.load(Ordering::Acquire));
        assert!(!token.is_cancelled());

        streams.shut_down();
        assert!(streams.shutdown().started.load(Ordering::Acquire));
        let cancelled = tokio::time::timeout(Duration::from_secs(10), token.cancelled()).await;
        assert!(cancelled.is_ok());
    }
}

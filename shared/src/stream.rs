//! The SSE response: headers, `retry:` first, coalesced frames, keep-alive comments,
//! an end on server shutdown, and a drop guard that frees the stream's slot.
//!
//! A handler takes a [`StreamPermit`] with [`Streams::admit`] *before* it starts the
//! stream (so a refusal is a plain 503/429 response), then hands a stream of
//! ready-made frames to [`Streams::respond`]:
//!
//! ```ignore
//! let permit = streams.admit(req)?;
//! streams.respond(res, permit, frames);
//! ```
//!
//! Cleanup when the client goes away: hyper drops the response body, which drops the
//! `frames` stream and the permit. Put your own cleanup (presence, unsubscribe) in a
//! `Drop` of something `frames` owns and it runs then too.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use pin_project_lite::pin_project;
use prometheus_client::metrics::{counter::Counter, gauge::Gauge};
use salvo::http::header::{HeaderMap, HeaderValue};
use salvo::prelude::*;
use tokio_util::sync::CancellationToken;

use crate::error::ApiError;
use crate::frame::{Frame, KEEP_ALIVE};
use crate::limits::{LimitExceeded, StreamLimiter, StreamPermit, client_ip};
use crate::metrics::{Metrics, Rejection};
use crate::shutdown::{Shutdown, Started};

/// The most bytes of ready events joined into one body frame.
const MAX_COALESCED: usize = 64 * 1024;

/// How streams behave; the defaults are API.md's.
#[derive(Debug, Clone)]
pub struct StreamSettings {
    /// Sent as `retry:` at the start of every stream: the client's reconnect delay.
    pub retry: Duration,
    /// A comment is written after this long without traffic, so proxies and
    /// browsers do not close an idle stream, and a dead client is noticed.
    pub keep_alive: Duration,
    /// Peers whose `X-Forwarded-For` is believed for per-IP limits (your proxies).
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// How long a write to a client may stay blocked before the server closes the
    /// connection (a client that stopped reading); `None`: never.
    pub write_stall: Option<Duration>,
}

impl Default for StreamSettings {
    fn default() -> Self {
        Self {
            retry: Duration::from_millis(3000),
            keep_alive: Duration::from_secs(15),
            trusted_proxies: Vec::new(),
            write_stall: Some(Duration::from_secs(30)),
        }
    }
}

/// Everything a stream handler needs from its server: settings, the connection
/// limiter, metrics and the shutdown signal. Cheap to clone.
#[derive(Clone)]
pub struct Streams {
    settings: StreamSettings,
    limiter: StreamLimiter,
    metrics: Metrics,
    shutdown: Shutdown,
}

impl Streams {
    /// Streams with these settings, limits and metrics.
    pub fn new(settings: StreamSettings, limiter: StreamLimiter, metrics: Metrics) -> Self {
        Self {
            settings,
            limiter,
            metrics,
            shutdown: Shutdown::new(),
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

    /// Ends every open stream (their bodies finish cleanly) and refuses new ones.
    pub fn shut_down(&self) {
        self.shutdown.start();
    }

    /// A token that is cancelled when the server shuts down, for producer tasks.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.token()
    }

    /// Takes a stream slot for this request's client, or answers why not:
    /// `503` when the server is full, `429` when this address holds
    /// too many streams; both with `Retry-After`.
    pub fn admit(&self, req: &Request) -> Result<StreamPermit, ApiError> {
        // No refusal during shutdown: a stream opened now gets `retry:` and ends at
        // once, so the client comes back after the delay. A 5xx would make a browser's
        // EventSource give up for good.
        let wait = self.settings.retry;
        match self
            .limiter
            .try_acquire(client_ip(req, &self.settings.trusted_proxies))
        {
            Ok(permit) => Ok(permit),
            Err(refusal @ LimitExceeded::ServerFull(_)) => {
                self.metrics.reject(Rejection::ServerFull);
                Err(ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "server-full",
                    format!("{refusal}; try again later."),
                )
                .retry_after(wait))
            }
            Err(refusal @ LimitExceeded::PerIp(_)) => {
                self.metrics.reject(Rejection::PerIpLimit);
                Err(ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too-many-streams",
                    format!("{refusal}; close one before opening another."),
                )
                .retry_after(wait))
            }
        }
    }

    /// Turns `res` into an SSE response streaming `frames` (each item one finished
    /// frame, see [`crate::frame`]). The stream holds `permit` until it ends.
    pub fn respond<S>(&self, res: &mut Response, permit: StreamPermit, frames: S)
    where
        S: Stream<Item = Bytes> + Send + 'static,
    {
        if res.headers().is_empty() {
            // Exactly room for the three below: hyper keeps this map for as long as the
            // connection lives (see `page::security_headers`).
            *res.headers_mut() = HeaderMap::with_capacity(3);
        }
        let headers = res.headers_mut();
        headers.insert(
            "content-type",
            HeaderValue::from_static("text/event-stream"),
        );
        headers.insert("cache-control", HeaderValue::from_static("no-cache"));
        // nginx buffers proxied responses unless told not to.
        headers.insert("x-accel-buffering", HeaderValue::from_static("no"));

        let retry_ms = u64::try_from(self.settings.retry.as_millis()).unwrap_or(u64::MAX);
        let keep_alive = self.settings.keep_alive;
        // Everything a stream holds is in this one value, which salvo boxes once.
        res.stream(Body {
            unasked_since: None,
            write_stall: self.settings.write_stall,
            first: Some(Frame::new().retry(retry_ms).finish()),
            frames,
            keep_alive,
            last_frame: tokio::time::Instant::now(),
            keep_alive_timer: tokio::time::sleep(keep_alive),
            shut_down: self.shutdown.started(),
            guard: OpenStream::new(permit, &self.metrics),
        });
    }
}

/// `frames`, keeping `guard` alive for as long as the stream lives: when the client goes
/// away, the response body is dropped, and with it the guard, so its `Drop` is the place
/// for per-stream cleanup (presence, counters).
pub fn holding<S, G>(frames: S, guard: G) -> impl Stream<Item = Bytes> + Send + 'static
where
    S: Stream<Item = Bytes> + Send + 'static,
    G: Send + 'static,
{
    frames.map(move |frame| {
        let _ = &guard;
        frame
    })
}

pin_project! {
    /// One response body: `retry:` first, then the frames, coalesced, with keep-alive
    /// comments in the silences, until the frames end or the server shuts down.
    struct Body<S> {
        // When the last frame was handed over, until hyper asks for the next: it asks
        // as soon as it has room, so a long wait means the client stopped reading.
        unasked_since: Option<tokio::time::Instant>,
        write_stall: Option<Duration>,
        first: Option<Bytes>,
        #[pin]
        frames: S,
        keep_alive: Duration,
        // When the last frame went out. The keep-alive timer is not reset per frame
        // (that would be a timer operation per event per client): when it fires, it
        // either sends a comment or moves on to `last_frame + keep_alive`.
        last_frame: tokio::time::Instant,
        #[pin]
        keep_alive_timer: tokio::time::Sleep,
        #[pin]
        shut_down: Started,
        guard: OpenStream,
    }

    impl<S> PinnedDrop for Body<S> {
        fn drop(this: Pin<&mut Self>) {
            // Dropped while hyper had not asked for the next frame for a long time: its
            // writes were stuck, and the connection was closed on a client that stopped
            // reading. (An idle stream is one waiting for events, which does not count.)
            let stalled = this
                .write_stall
                .zip(this.unasked_since)
                .is_some_and(|(limit, since)| since.elapsed() >= limit / 2);
            if stalled && !this.shut_down.is_started() {
                this.guard.slow_closed.inc();
                tracing::info!("closed a stream whose client stopped reading");
            }
        }
    }
}

impl<S: Stream<Item = Bytes>> Stream for Body<S> {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut this = self.project();
        *this.unasked_since = None;
        let frame = match this.first.take() {
            Some(first) => first,
            None => {
                if this.shut_down.poll(cx).is_ready() {
                    return Poll::Ready(None);
                }
                match this.frames.as_mut().poll_next(cx) {
                    Poll::Ready(Some(frame)) => coalesce(this.frames, frame),
                    Poll::Ready(None) => return Poll::Ready(None),
                    Poll::Pending => loop {
                        std::task::ready!(this.keep_alive_timer.as_mut().poll(cx));
                        let due = *this.last_frame + *this.keep_alive;
                        if tokio::time::Instant::now() >= due {
                            this.guard.keep_alives.inc();
                            break Bytes::from_static(KEEP_ALIVE);
                        }
                        // Traffic since the timer was set: wait out the rest.
                        this.keep_alive_timer.as_mut().reset(due);
                    },
                }
            }
        };
        let now = tokio::time::Instant::now();
        if *this.last_frame + *this.keep_alive <= now {
            this.keep_alive_timer.reset(now + *this.keep_alive);
        }
        *this.last_frame = now;
        this.guard.frames_written.inc();
        *this.unasked_since = Some(now);
        Poll::Ready(Some(Ok(frame)))
    }
}

/// Joins `first` with whatever else is ready right now into one body frame, so a
/// burst of events costs one write instead of one per event.
fn coalesce<S: Stream<Item = Bytes>>(mut frames: Pin<&mut S>, first: Bytes) -> Bytes {
    // Polled without a waker: the body is polled again (with one) right after this
    // frame is taken, and that poll registers for the next.
    let mut ready_now = || match frames
        .as_mut()
        .poll_next(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(Some(frame)) => Some(frame),
        _ => None,
    };
    let Some(second) = ready_now() else {
        return first;
    };
    let mut joined = BytesMut::with_capacity(first.len() + second.len());
    joined.extend_from_slice(&first);
    joined.extend_from_slice(&second);
    while joined.len() < MAX_COALESCED {
        match ready_now() {
            Some(more) => joined.extend_from_slice(&more),
            None => break,
        }
    }
    joined.freeze()
}

/// The drop guard of one open stream: frees the limiter slot and updates the gauge
/// when the stream ends for any reason, including the client going away. Holds only
/// the counters a stream touches (not all of [`Metrics`]: every stream carries this).
struct OpenStream {
    _permit: StreamPermit,
    open_streams: Gauge,
    frames_written: Counter,
    keep_alives: Counter,
    slow_closed: Counter,
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

//! The SSE response for frames made once and shared: `retry:` first, then the frames
//! (a hub subscription hands over everything ready at once as one), keep-alive
//! comments in the silences, an end on shutdown, and the [`StreamSlot`]
//! guard held until the body is dropped.
//!
//! ```ignore
//! let guard = streams.admit(req)?;                  // 503/429 before anything starts
//! let frames = hub.subscribe(start).into_stream();  // Bytes, one frame or a batch each
//! event_stream::respond(res, &streams, guard, frames);
//! ```
//!
//! Written by hand (not with `async-stream`) because it runs on every wake-up of every
//! stream: everything a stream holds is in one value that salvo boxes once, and the
//! shutdown check is one atomic load.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use pin_project_lite::pin_project;
use salvo::http::header::{HeaderMap, HeaderValue};
use salvo::prelude::*;
use tokio_util::sync::WaitForCancellationFutureOwned;

use crate::frame::{Frame, KEEP_ALIVE};
use crate::streams::{Shutdown, StreamSlot, Streams};

/// Turns `res` into an SSE response streaming `frames` (each item one finished frame
/// or several, see [`crate::frame`]). The body holds `guard` until it ends.
pub fn respond<S>(res: &mut Response, streams: &Streams, guard: StreamSlot, frames: S)
where
    S: Stream<Item = Bytes> + Send + 'static,
{
    if res.headers().is_empty() {
        // Exactly room for the three below: hyper keeps this map for as long as the
        // connection lives (see `routes::security_headers`).
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

    let args = streams.args();
    let retry_ms = u64::try_from(args.jittered_retry().as_millis()).unwrap_or(u64::MAX);
    let (drain_after, drain_retry) = args.drain();
    let lifetime = args.lifetime();
    res.stream(Body {
        lifetime: lifetime.map(|l| Box::pin(tokio::time::sleep(l))),
        drain_after,
        drain_retry,
        draining: None,
        unasked_since: None,
        write_stall: args.write_stall(),
        first: Some(Frame::new().retry(retry_ms).finish()),
        frames,
        keep_alive: args.keep_alive,
        last_frame: tokio::time::Instant::now(),
        keep_alive_timer: tokio::time::sleep(args.keep_alive),
        shut_down: Started::new(streams.shutdown()),
        guard,
    });
}

/// `frames`, keeping `guard` alive for as long as the stream lives: when the client goes
/// away, the response body is dropped, and with it the guard, so its `Drop` is the place
/// for per-stream cleanup (presence, counters).
pub fn with_guard<S, G>(frames: S, guard: G) -> impl Stream<Item = Bytes> + Send + 'static
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
    /// One response body: `retry:` first, then the frames, with keep-alive
    /// comments in the silences, until the frames end or the server shuts down (then
    /// after its drain: a last `retry:` and the end).
    struct Body<S> {
        // This stream's drain (`ServerArgs::drain`), and once the shutdown has
        // started, its end timer and the last frame still to send.
        drain_after: Duration,
        drain_retry: Duration,
        // When this stream ends anyway (`--max-stream-lifetime-secs`), if it does.
        lifetime: Option<Pin<Box<tokio::time::Sleep>>>,
        draining: Option<(Pin<Box<tokio::time::Sleep>>, Option<Bytes>)>,
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
        guard: StreamSlot,
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
            if stalled && !this.shut_down.started.load(Ordering::Acquire) {
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
                let aged =
                    (this.lifetime.as_mut()).is_some_and(|end| end.as_mut().poll(cx).is_ready());
                if aged || this.shut_down.poll(cx).is_ready() {
                    // Frames go on until this stream's moment to end comes (at once for
                    // a stream that reached its lifetime, which was spread already).
                    let drain_after = if aged {
                        Duration::ZERO
                    } else {
                        *this.drain_after
                    };
                    let drain_retry = *this.drain_retry;
                    let (end, last) = this.draining.get_or_insert_with(|| {
                        let retry_ms = u64::try_from(drain_retry.as_millis()).unwrap_or(0);
                        let last = Frame::new().retry(retry_ms).finish();
                        (Box::pin(tokio::time::sleep(drain_after)), Some(last))
                    });
                    if end.as_mut().poll(cx).is_ready() {
                        return Poll::Ready(last.take().map(Ok));
                    }
                }
                match this.frames.as_mut().poll_next(cx) {
                    Poll::Ready(Some(frame)) => frame,
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

pin_project! {
    /// Completes when the shutdown starts. It registers with the shared token once, then
    /// answers from the flag: polling the token's future on every wake-up would take
    /// its locks, shared by every stream, from every worker thread.
    struct Started {
        started: Arc<AtomicBool>,
        #[pin]
        cancelled: WaitForCancellationFutureOwned,
        // The waker the token's waiter list holds for us, once it holds one.
        registered: Option<Waker>,
    }
}

impl Started {
    fn new(shutdown: &Shutdown) -> Self {
        let (token, started) = shutdown.parts();
        Self {
            started,
            cancelled: token.cancelled_owned(),
            registered: None,
        }
    }
}

impl Future for Started {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.project();
        let same_task = this
            .registered
            .as_ref()
            .is_some_and(|waker| waker.will_wake(cx.waker()));
        // Registered with this task's waker and not started: the token will wake us
        // when it is cancelled, and until then there is nothing to look at.
        if same_task && !this.started.load(Ordering::Acquire) {
            return Poll::Pending;
        }
        match this.cancelled.poll(cx) {
            Poll::Ready(()) => Poll::Ready(()),
            Poll::Pending => {
                *this.registered = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! `Started`: every waiter completes when the shutdown starts, whenever it
    //! registered, from whichever task polls it; a waiter not told never completes.
    use std::pin::pin;

    use futures_util::FutureExt;

    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    /// Fails a test that would otherwise hang.
    const LIMIT: Duration = Duration::from_secs(10);

    #[tokio::test]
    async fn waiters_registered_before_the_start_complete() -> TestResult {
        let shutdown = Shutdown::default();
        let waiters: Vec<_> = (0..100)
            .map(|_| {
                let started = Started::new(&shutdown);
                tokio::spawn(started)
            })
            .collect();
        // Each waiter has registered (and gone back to sleep) before the start.
        tokio::task::yield_now().await;
        let mut early = pin!(Started::new(&shutdown));
        assert!(early.as_mut().now_or_never().is_none(), "not started yet");
        assert!(early.as_mut().now_or_never().is_none(), "still not started");
        assert!(
            !shutdown
                .parts()
                .1
                .load(std::sync::atomic::Ordering::Acquire)
        );

        shutdown.clone().start();
        assert!(
            shutdown
                .parts()
                .1
                .load(std::sync::atomic::Ordering::Acquire)
        );
        for waiter in waiters {
            tokio::time::timeout(LIMIT, waiter).await??;
        }
        tokio::time::timeout(LIMIT, early).await?;
        Ok(())
    }

    #[tokio::test]
    async fn a_waiter_made_after_the_start_completes_at_once() -> TestResult {
        let shutdown = Shutdown::default();
        shutdown.start();
        shutdown.start();
        assert!(Started::new(&shutdown).now_or_never().is_some());
        Ok(())
    }

    #[tokio::test]
    async fn a_waiter_moved_to_another_task_is_woken_there() -> TestResult {
        let shutdown = Shutdown::default();
        let mut started = Box::pin(Started::new(&shutdown));
        // Registered with this task's waker (a no-op one) ...
        assert!(started.as_mut().now_or_never().is_none());
        // ... then polled by another task, which must be the one woken.
        let waiter = tokio::spawn(started);
        tokio::task::yield_now().await;
        shutdown.start();
        tokio::time::timeout(LIMIT, waiter).await??;
        Ok(())
    }
}

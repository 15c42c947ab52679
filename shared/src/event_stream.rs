//! The SSE response for frames made once and shared: `retry:` first, then the frames
//! (a hub subscription hands over everything ready at once as one), keep-alive
//! comments in the silences. Nothing else: admission, the end on shutdown, a stream's
//! lifetime and a client that stopped reading are the production stack's, a hoop that
//! wraps this body (`Streams`, in the `streams` module); it finds the routes that open
//! streams by their [`StreamRoute`](crate::stream_route::StreamRoute) mark.
//!
//! ```
//! use bytes::Bytes;
//! use salvo::prelude::*;
//! use sse_shared::event_stream;
//! use sse_shared::stream_route::{StreamRoute, StreamSettings};
//!
//! #[handler]
//! async fn events(res: &mut Response) {
//!     let frames = futures_util::stream::iter([Bytes::from_static(b"data: hello\n\n")]);
//!     event_stream::respond(res, &StreamSettings::default(), frames);
//! }
//!
//! let router = Router::with_path("events").hoop(StreamRoute).get(events);
//! # let _ = router;
//! ```
//!
//! Written by hand (not with `async-stream`) because it runs on every wake-up of every
//! stream: everything a stream holds is in one value, boxed once as hyper's `Body`
//! (salvo's `ResBody::Boxed`), with no adapter between hyper and the frames.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use pin_project_lite::pin_project;
use salvo::BoxedError;
use salvo::http::body::{Body, Frame as BodyFrame, ResBody};
use salvo::http::header::{HeaderMap, HeaderValue};
use salvo::prelude::*;
use sync_wrapper::SyncWrapper;

use crate::frame::{Frame, KEEP_ALIVE};
use crate::stream_route::StreamSettings;

/// The shortest silence before a keep-alive comment, whatever the settings say.
pub const MIN_KEEP_ALIVE: Duration = Duration::from_secs(1);

/// Turns `res` into an SSE response streaming `frames` (each item one finished frame
/// or several, see [`crate::frame`]).
pub fn respond<S>(res: &mut Response, settings: &StreamSettings, frames: S)
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

    let retry_ms = u64::try_from(settings.retry().as_millis()).unwrap_or(u64::MAX);
    // A keep-alive every instant would be a loop that never waits: at least a second.
    let keep_alive = settings.keep_alive.max(MIN_KEEP_ALIVE);
    res.body(ResBody::Boxed(Box::pin(EventBody {
        first: Some(Frame::new().retry(retry_ms).finish()),
        // hyper's bodies are `Sync`; the frames need not be, as only `&mut` reaches them.
        frames: SyncWrapper::new(frames),
        keep_alive,
        last_frame: tokio::time::Instant::now(),
        keep_alive_timer: tokio::time::sleep(keep_alive),
    })));
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
    /// One response body: `retry:` first, then the frames, with keep-alive comments in
    /// the silences, until the frames end.
    struct EventBody<S> {
        first: Option<Bytes>,
        #[pin]
        frames: SyncWrapper<S>,
        keep_alive: Duration,
        // When the last frame went out. The keep-alive timer is not reset per frame
        // (that would be a timer operation per event per client): when it fires, it
        // either sends a comment or moves on to `last_frame + keep_alive`.
        last_frame: tokio::time::Instant,
        #[pin]
        keep_alive_timer: tokio::time::Sleep,
    }
}

impl<S: Stream<Item = Bytes>> Body for EventBody<S> {
    type Data = Bytes;
    type Error = BoxedError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<BodyFrame<Bytes>, BoxedError>>> {
        let mut this = self.project();
        let frame = match this.first.take() {
            Some(first) => first,
            None => match this.frames.as_mut().get_pin_mut().poll_next(cx) {
                Poll::Ready(Some(frame)) => frame,
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => loop {
                    std::task::ready!(this.keep_alive_timer.as_mut().poll(cx));
                    let due = *this.last_frame + *this.keep_alive;
                    if tokio::time::Instant::now() >= due {
                        break Bytes::from_static(KEEP_ALIVE);
                    }
                    // Traffic since the timer was set: wait out the rest.
                    this.keep_alive_timer.as_mut().reset(due);
                },
            },
        };
        let now = tokio::time::Instant::now();
        if *this.last_frame + *this.keep_alive <= now {
            this.keep_alive_timer.reset(now + *this.keep_alive);
        }
        *this.last_frame = now;
        Poll::Ready(Some(Ok(BodyFrame::data(frame))))
    }
}

#[cfg(test)]
mod tests {
    use futures_util::{FutureExt, StreamExt};
    use salvo::Response;

    use super::*;

    /// Settings are plain structs: a zero keep-alive must not make a body that is
    /// ready for ever (it sent a comment on every poll, without waiting).
    #[tokio::test(start_paused = true)]
    async fn a_zero_keep_alive_still_waits() {
        let mut res = Response::new();
        let settings = StreamSettings {
            keep_alive: Duration::ZERO,
            ..StreamSettings::default()
        };
        respond(&mut res, &settings, futures_util::stream::pending());
        let mut body = res.take_body();
        let mut ready = 0;
        while ready < 100 && body.next().now_or_never().is_some() {
            ready += 1;
        }
        assert_eq!(ready, 1, "only `retry:` is ready before any time passes");
    }
}

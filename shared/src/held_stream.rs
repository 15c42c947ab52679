//! What the production stack does to an event stream's body once its handler has
//! written it ([`crate::streams::Streams`] wraps it): holds the stream's slot until
//! the body is dropped, ends it on shutdown at its own moment with a last `retry:`
//! (the drain) or when it reaches its lifetime, notices a client that stopped reading,
//! and counts the frames written.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use pin_project_lite::pin_project;
use salvo::BoxedError;
use salvo::http::body::{Body, Frame as BodyFrame};
use std::future::Future;
use std::sync::atomic::Ordering;

use crate::config::ServerArgs;
use crate::frame::{Frame, KEEP_ALIVE};
use crate::shutdown::{Shutdown, Started};
use crate::streams::StreamSlot;

pin_project! {
    /// A stream's body (`body`: the frames its handler writes), held.
    pub struct HeldStream<B> {
        #[pin]
        body: B,
        // This stream's drain (`ServerArgs::drain`), and once the shutdown has
        // started, its end timer and the last frame still to send.
        drain_after: Duration,
        drain_retry: Duration,
        draining: Option<(Pin<Box<tokio::time::Sleep>>, Option<Bytes>)>,
        // When this stream ends anyway (`--max-stream-lifetime-secs`), if it does.
        lifetime: Option<Pin<Box<tokio::time::Sleep>>>,
        // When the last frame was handed over, until hyper asks for the next: it asks
        // as soon as it has room, so a long wait means the client stopped reading.
        unasked_since: Option<tokio::time::Instant>,
        write_stall: Option<Duration>,
        #[pin]
        shut_down: Started,
        slot: StreamSlot,
    }

    impl<B> PinnedDrop for HeldStream<B> {
        fn drop(this: Pin<&mut Self>) {
            // Dropped while hyper had not asked for the next frame for a long time: its
            // writes were stuck, and the connection was closed on a client that stopped
            // reading. (An idle stream is one waiting for events, which does not count.)
            let stalled = this
                .write_stall
                .zip(this.unasked_since)
                .is_some_and(|(limit, since)| since.elapsed() >= limit / 2);
            if stalled && !this.shut_down.started().load(Ordering::Acquire) {
                this.slot.slow_closed.inc();
                tracing::info!("closed a stream whose client stopped reading");
            }
        }
    }
}

impl<B> HeldStream<B> {
    /// `body`, holding `slot`, under the options `args` and the `shutdown`.
    pub fn new(body: B, slot: StreamSlot, args: &ServerArgs, shutdown: &Shutdown) -> Self {
        let (drain_after, drain_retry) = args.drain();
        Self {
            body,
            drain_after,
            drain_retry,
            draining: None,
            lifetime: args.lifetime().map(|l| Box::pin(tokio::time::sleep(l))),
            unasked_since: None,
            write_stall: args.write_stall(),
            shut_down: Started::new(shutdown),
            slot,
        }
    }
}

/// Boxed as hyper's `Body` (salvo's `ResBody::Boxed`) over the handler's own body: one
/// call from hyper to the frames, no stream adapters in between.
impl<B> Body for HeldStream<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxedError>,
{
    type Data = Bytes;
    type Error = BoxedError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<BodyFrame<Bytes>, BoxedError>>> {
        let mut this = self.project();
        *this.unasked_since = None;
        let aged = (this.lifetime.as_mut()).is_some_and(|end| end.as_mut().poll(cx).is_ready());
        if aged || this.shut_down.as_mut().poll(cx).is_ready() {
            // Frames go on until this stream's moment to end comes (at once for a
            // stream that reached its lifetime, which was spread already).
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
                return Poll::Ready(last.take().map(|last| Ok(BodyFrame::data(last))));
            }
        }
        loop {
            let frame = match std::task::ready!(this.body.as_mut().poll_frame(cx)) {
                None => return Poll::Ready(None),
                Some(Err(e)) => return Poll::Ready(Some(Err(e.into()))),
                Some(Ok(frame)) => frame,
            };
            // Only data frames reach an event stream's client (no trailers).
            let Ok(data) = frame.into_data() else {
                continue;
            };
            if data.as_ref() == KEEP_ALIVE {
                this.slot.keep_alives.inc();
            }
            this.slot.frames_written.inc();
            *this.unasked_since = Some(tokio::time::Instant::now());
            return Poll::Ready(Some(Ok(BodyFrame::data(data))));
        }
    }
}

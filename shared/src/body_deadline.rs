//! A deadline for the whole request body, as a hoop (what tower-http's
//! `RequestBodyTimeoutLayer` is to axum): salvo's fuse ends a body that stops arriving
//! ([`BODY_STALL`](crate::body::BODY_STALL) without a byte), but not one that trickles a
//! byte every few seconds for hours. Past the deadline the body's next read fails as
//! timed out, which the `body` module's readers answer with `408 body-timeout`.
//!
//! ```
//! use std::time::Duration;
//! use salvo::prelude::*;
//! use sse_shared::body_deadline::BodyDeadline;
//!
//! #[handler]
//! async fn echo(req: &mut Request) -> String {
//!     let body = req.payload().await.map(|b| b.to_vec()).unwrap_or_default();
//!     String::from_utf8_lossy(&body).into_owned()
//! }
//!
//! let router = Router::new()
//!     .hoop(BodyDeadline::new(Duration::from_secs(30)))
//!     .post(echo);
//! # let _ = router;
//! ```

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use salvo::BoxedError;
use salvo::http::ReqBody;
use salvo::http::body::{Body, Frame, SizeHint};
use salvo::prelude::*;
use tokio::time::{Instant, Sleep, sleep_until};

/// How long a whole request body may take to arrive by default (`--body-deadline-secs`).
pub const BODY_DEADLINE: Duration = Duration::from_secs(30);

/// The hoop: every request body behind it must arrive within its deadline.
#[derive(Debug, Clone, Copy)]
pub struct BodyDeadline {
    deadline: Duration,
}

impl BodyDeadline {
    /// Bodies must arrive within `deadline` of the request reaching this hoop.
    pub fn new(deadline: Duration) -> Self {
        Self { deadline }
    }
}

#[handler]
impl BodyDeadline {
    async fn handle(&self, req: &mut Request) {
        if req.body().is_end_stream() {
            return; // no body (a `GET`, a stream): nothing to time
        }
        let inner = req.take_body();
        let body = WithinDeadline {
            inner,
            deadline: self.deadline,
            timer: Box::pin(sleep_until(Instant::now() + self.deadline)),
        };
        req.replace_body(ReqBody::Boxed {
            inner: Box::pin(body),
            fuse_config: None,
        });
    }
}

/// A request body that fails as timed out once its deadline has passed.
struct WithinDeadline {
    inner: ReqBody,
    deadline: Duration,
    timer: Pin<Box<Sleep>>,
}

impl Body for WithinDeadline {
    type Data = Bytes;
    type Error = BoxedError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxedError>>> {
        if self.timer.as_mut().poll(cx).is_ready() {
            let secs = self.deadline.as_secs();
            let late = format!("the body took longer than {secs} s to arrive");
            return Poll::Ready(Some(Err(
                io::Error::new(io::ErrorKind::TimedOut, late).into()
            )));
        }
        Pin::new(&mut self.inner)
            .poll_frame(cx)
            .map_err(BoxedError::from)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

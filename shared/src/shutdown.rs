//! The shutdown that ends every stream: [`Shutdown`], a signal that starts once, which
//! a stream checks with one atomic load per wake-up ([`Started`]), and
//! [`shutdown_signal`], what starts it (SIGINT, SIGTERM).
//!
//! ```
//! use sse_shared::shutdown::Shutdown;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), tokio::task::JoinError> {
//! let shutdown = Shutdown::default();
//! let waiting = tokio::spawn({
//!     let shutdown = shutdown.clone();
//!     async move { shutdown.wait().await }
//! });
//! shutdown.start(); // on SIGTERM, before salvo's graceful stop
//! waiting.await?;
//! # Ok(())
//! # }
//! ```

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};

use pin_project_lite::pin_project;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// A shutdown that starts once; clones are the same signal. The flag lets a stream
/// check it with one atomic load per wake-up ([`Started`]).
#[derive(Clone, Default)]
pub struct Shutdown {
    pub(crate) token: CancellationToken,
    pub(crate) started: Arc<AtomicBool>,
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

pin_project! {
    /// Completes when the shutdown starts. It registers with the shared token once, then
    /// answers from the flag: polling the token's future on every wake-up would take
    /// its locks, shared by every stream, from every worker thread.
    pub struct Started {
        started: Arc<AtomicBool>,
        #[pin]
        cancelled: WaitForCancellationFutureOwned,
        // The waker the token's waiter list holds for us, once it holds one.
        registered: Option<Waker>,
    }
}

impl Started {
    /// Whether the shutdown has started.
    pub fn started(&self) -> &AtomicBool {
        &self.started
    }

    /// Waits for `shutdown`.
    pub fn new(shutdown: &Shutdown) -> Self {
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
    //! `Started`: every waiter completes when the shutdown starts, whenever it
    //! registered, from whichever task polls it; a waiter not told never completes.
    use std::pin::pin;
    use std::time::Duration;

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

//! A shutdown signal that every stream and connection can watch for the cost of one
//! atomic load per wake-up.
//!
//! A `CancellationToken` shared by thousands of streams is awkward on a hot path:
//! polling its `cancelled()` future takes the token's lock and the lock of its waiter
//! list, on every wake-up of every stream, from every worker thread. A child token
//! per stream avoids the contention but not the locks, and costs an allocation each.
//! [`Started`] registers with the shared token once, then only looks at a flag until
//! the shutdown starts (or the task polling it changes).
//!
//! ```ignore
//! let shutdown = Shutdown::new();
//! tokio::select! {
//!     () = shutdown.started() => {} // ends here once `shutdown.start()` runs
//!     frame = frames.next() => {}
//! }
//! ```

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};

use pin_project_lite::pin_project;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// A shutdown that starts once and wakes everything that waits for it. Cheap to clone;
/// clones are the same signal.
#[derive(Clone, Default)]
pub struct Shutdown {
    token: CancellationToken,
    started: Arc<AtomicBool>,
}

impl Shutdown {
    /// A shutdown that has not started.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts the shutdown: every [`Started`] future completes. Idempotent.
    pub fn start(&self) {
        // The flag first: a waiter woken by the token must find it set.
        self.started.store(true, Ordering::Release);
        self.token.cancel();
    }

    /// Whether the shutdown has started.
    pub fn is_started(&self) -> bool {
        self.started.load(Ordering::Acquire)
    }

    /// A token cancelled when the shutdown starts, for tasks that select on a
    /// `CancellationToken` (a child: cancelling it stops only its holder).
    pub fn token(&self) -> CancellationToken {
        self.token.child_token()
    }

    /// A future that completes when the shutdown starts. It owns what it needs, so a
    /// response body can hold it.
    pub fn started(&self) -> Started {
        Started {
            started: Arc::clone(&self.started),
            cancelled: self.token.clone().cancelled_owned(),
            registered: None,
        }
    }
}

pin_project! {
    /// Completes when its [`Shutdown`] starts (see [`Shutdown::started`]).
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
    pub fn is_started(&self) -> bool {
        self.started.load(Ordering::Acquire)
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

//! `Shutdown`: every waiter completes when it starts, whenever it registered, from
//! whichever task polls it; a waiter that has not been told never completes.

use std::error::Error;
use std::pin::pin;
use std::time::Duration;

use futures_util::FutureExt;
use sse_shared::shutdown::Shutdown;

type TestResult = Result<(), Box<dyn Error>>;

/// Fails a test that would otherwise hang.
const LIMIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn waiters_registered_before_the_start_complete() -> TestResult {
    let shutdown = Shutdown::new();
    let waiters: Vec<_> = (0..100)
        .map(|_| {
            let started = shutdown.started();
            tokio::spawn(started)
        })
        .collect();
    // Each waiter has registered (and gone back to sleep) before the start.
    tokio::task::yield_now().await;
    let mut early = pin!(shutdown.started());
    assert!(early.as_mut().now_or_never().is_none(), "not started yet");
    assert!(early.as_mut().now_or_never().is_none(), "still not started");
    assert!(!shutdown.is_started());

    shutdown.clone().start();
    assert!(shutdown.is_started());
    for waiter in waiters {
        tokio::time::timeout(LIMIT, waiter).await??;
    }
    tokio::time::timeout(LIMIT, early).await?;
    Ok(())
}

#[tokio::test]
async fn a_waiter_made_after_the_start_completes_at_once() -> TestResult {
    let shutdown = Shutdown::new();
    shutdown.start();
    shutdown.start();
    assert!(shutdown.started().now_or_never().is_some());
    Ok(())
}

#[tokio::test]
async fn a_waiter_moved_to_another_task_is_woken_there() -> TestResult {
    let shutdown = Shutdown::new();
    let mut started = Box::pin(shutdown.started());
    // Registered with this task's waker (a no-op one) ...
    assert!(started.as_mut().now_or_never().is_none());
    // ... then polled by another task, which must be the one woken.
    let waiter = tokio::spawn(started);
    tokio::task::yield_now().await;
    shutdown.start();
    tokio::time::timeout(LIMIT, waiter).await??;
    Ok(())
}

#[tokio::test]
async fn the_token_for_tasks_is_cancelled_by_the_start_and_only_stops_its_holder() -> TestResult {
    let shutdown = Shutdown::new();
    let token = shutdown.token();
    // Cancelling a task's token does not start the shutdown.
    shutdown.token().cancel();
    assert!(!shutdown.is_started());
    assert!(!token.is_cancelled());
    assert!(shutdown.started().now_or_never().is_none());

    shutdown.start();
    tokio::time::timeout(LIMIT, token.cancelled()).await?;
    Ok(())
}

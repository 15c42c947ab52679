//! Filters that may cost more than a comparison (an event's topics matched against a
//! subscriber's patterns): [`Matching`], and [`Hub::subscribe_matching`], which keeps
//! them from holding the hub's lock or the runtime's workers. What such a filter can
//! tell cheaply is asked on the workers; what it cannot (an expression to evaluate)
//! runs on a blocking thread, for one subscriber at a time per two cores, in slices of
//! 10 ms: however many subscribers bring costly patterns, the publishers and every other
//! subscriber keep the rest of the machine.
//!
//! ```
//! use bytes::Bytes;
//! use sse_shared::frame::{Frame, FrameError};
//! use sse_shared::hub::{EventId, HistoryLimits, Hub, HubEvent, Start};
//! use sse_shared::matching::Matching;
//!
//! struct Note(u32);
//! impl HubEvent for Note {
//!     fn frame(&self, id: EventId) -> Result<Bytes, FrameError> {
//!         Ok(Frame::new().id(&id.to_string())?.data(&self.0.to_string()).finish())
//!     }
//! }
//!
//! /// Notes divisible by a number: a stand-in for a pattern that takes an expression.
//! struct DivisibleBy(u32);
//! impl Matching<Note> for DivisibleBy {
//!     fn quick(&self, note: &Note) -> Option<bool> {
//!         (self.0 == 1).then_some(true) // the cheap case; otherwise ask `test`
//!     }
//!     fn test(&self, note: &Note) -> bool {
//!         note.0 % self.0 == 0
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let hub = Hub::new(HistoryLimits::default());
//! for n in 1..=6 {
//!     hub.publish(Note(n))?;
//! }
//! let mut threes = hub.subscribe_matching(Start::Recent(10), DivisibleBy(3));
//! let batch = threes.next_batch().await.ok_or("the hub is gone")?;
//! let text = String::from_utf8_lossy(&batch);
//! assert!(text.contains("data: 3\n") && text.contains("data: 6\n"));
//! assert!(!text.contains("data: 4\n"));
//! # Ok(())
//! # }
//! ```

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use tokio::sync::Semaphore;

use crate::hub::{EventId, Hub, HubEvent, MAX_BATCH, Start};
use crate::subscription::{Batch, Sift, Subscription, Taken};

/// How long a costly filter runs on a blocking thread before it lets the next
/// subscriber waiting for one have it.
const COSTLY_SLICE: Duration = Duration::from_millis(10);
/// How long a costly filter's quick answers may run on a runtime worker per wake-up
/// before the rest of what it took goes to the blocking thread.
const QUICK_TIME: Duration = Duration::from_millis(2);

/// A filter that may cost more than a comparison (matching an event's topics against
/// patterns), for [`Hub::subscribe_matching`]: what it can tell cheaply is asked on the
/// runtime's workers; the rest is asked on a blocking thread.
pub trait Matching<E>: Send + Sync + 'static {
    /// Whether `event` passes, if that takes no more than comparisons and lookups;
    /// `None` if it takes evaluating an expression.
    fn quick(&self, event: &E) -> Option<bool>;
    /// Whether `event` passes, whatever it takes.
    fn test(&self, event: &E) -> bool;
}

/// How many subscribers may run a costly filter at once: one per two cores.
fn turns() -> usize {
    std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))
}

impl<E: HubEvent> Hub<E> {
    /// Like [`Hub::subscribe_filtered`], for a filter that costs more than a comparison
    /// (matching topics against patterns). When the subscriber is more than a few
    /// events behind, it runs outside the hub's lock, on at most 64 events at a time,
    /// so publishing never waits on it however far back the subscriber starts. What
    /// [`Matching::quick`] cannot tell is asked of [`Matching::test`] on a blocking
    /// thread, when the subscriber's turn comes: at most one subscriber per two cores
    /// does so at a time, for 10 ms at a time, so no number of costly subscribers
    /// takes the runtime's workers from the rest. A subscriber whose matching cannot
    /// keep up falls behind like a slow client (`reset`, `lagged`).
    pub fn subscribe_matching(&self, start: Start, matching: impl Matching<E>) -> Subscription<E> {
        let matching: Arc<dyn Matching<E>> = Arc::new(matching);
        let test = Arc::clone(&matching);
        let filter = move |event: &E| test.test(event);
        self.subscribe_sifted(start, filter, Arc::new(Costly(matching)))
    }
}

/// A [`Matching`] as a subscription's [`Sift`].
struct Costly<E>(Arc<dyn Matching<E>>);

impl<E: HubEvent> Sift<E> for Costly<E> {
    fn quick(&self, event: &E) -> Option<bool> {
        self.0.quick(event)
    }

    fn sift<'a>(
        &'a self,
        hub: &'a Hub<E>,
        taken: &'a mut VecDeque<Taken<E>>,
        cursor: &'a mut EventId,
        batch: &'a mut Batch,
    ) -> BoxFuture<'a, Option<()>> {
        Box::pin(self.filter_taken(hub, taken, cursor, batch))
    }
}

impl<E: HubEvent> Costly<E> {
    /// Filters the events a subscription took out of the lock into `batch`, up to
    /// [`MAX_BATCH`] bytes (the rest stay taken for the next read): quickly where the
    /// filter can, for at most [`QUICK_TIME`]; the rest on a blocking thread when this
    /// subscriber's turn comes (see [`Hub::subscribe_matching`]). `None` only if the
    /// blocking thread panicked.
    async fn filter_taken(
        &self,
        hub: &Hub<E>,
        taken: &mut VecDeque<Taken<E>>,
        cursor: &mut EventId,
        batch: &mut Batch,
    ) -> Option<()> {
        let matching = &self.0;
        let started = std::time::Instant::now();
        while batch.bytes < MAX_BATCH {
            let Some((id, event, frame)) = taken.front() else {
                break;
            };
            // Quick answers here, for at most `QUICK_TIME` a wake-up: a replay of many
            // topics against many patterns adds up even without expressions.
            let over_time = started.elapsed() >= QUICK_TIME;
            let quick = if over_time {
                None
            } else {
                matching.quick(event)
            };
            if let Some(pass) = quick {
                *cursor = (*cursor).max(*id);
                if pass {
                    batch.push(frame);
                }
                taken.pop_front();
                continue;
            }
            let turns = hub
                .inner
                .turns
                .get_or_init(|| Arc::new(Semaphore::new(turns())));
            let turn = Arc::clone(turns).acquire_owned().await.ok()?;
            // Subscribers with the same patterns queue together for a new topic: the
            // first one's answer is usually remembered by the time the next one's turn
            // comes, and a quick answer needs no blocking thread.
            if !over_time
                && let Some((_, event, _)) = taken.front()
                && matching.quick(event).is_some()
            {
                continue;
            }
            let events = std::mem::take(taken);
            let matching = Arc::clone(matching);
            let room = MAX_BATCH - batch.bytes;
            let (tested, rest) = tokio::task::spawn_blocking(move || {
                let _turn = turn;
                let started = std::time::Instant::now();
                let (mut events, mut tested, mut bytes) = (events, Vec::new(), 0);
                while let Some((id, event, frame)) = events.pop_front() {
                    let passed = matching.test(&event).then_some(frame);
                    bytes += passed.as_ref().map_or(0, Bytes::len);
                    tested.push((id, passed));
                    if started.elapsed() >= COSTLY_SLICE || bytes >= room {
                        break;
                    }
                }
                (tested, events)
            })
            .await
            .ok()?;
            for (id, frame) in tested {
                *cursor = (*cursor).max(id);
                if let Some(frame) = frame {
                    batch.push(&frame);
                }
            }
            *taken = rest;
        }
        Some(())
    }
}

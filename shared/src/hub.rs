//! The event hub: one bounded history that is also every subscriber's queue.
//!
//! ```text
//! publish(event) -> id = next, frame = event.frame(id) (serialized once), append,
//!                   evict past the bounds, wake subscribers
//! subscriber     -> a cursor (the last id it has) into the history; on each wake-up it
//!                   reads everything after the cursor, as one batch of shared frames
//! ```
//!
//! **Replay and live are the same read.** A subscriber that resumes after id 40 reads
//! 41.. from the history, then waits, then reads again after its cursor: there is no
//! hand-over from "replay" to "live" where an event could be lost or sent twice. The
//! wake-up is a `tokio::sync::watch` channel whose version is marked seen *before* each
//! read, so a publish that lands between the read and the wait still wakes it.
//!
//! **Memory.** The history holds at most `max_events` events and `max_bytes` bytes of
//! frames (the newest event is never larger than `max_bytes`: such a publish is refused).
//! A subscriber is a cursor, a receiver and a filter: a few dozen bytes, however far
//! behind it is. A subscriber whose cursor falls off the history (its client reads too
//! slowly) gets `event: reset` with reason `lagged` and goes on from the newest event; it
//! never holds back the publisher or anyone else. What a slow client has not read yet is
//! at most one batch (64 KiB) in its response plus hyper's and the kernel's buffers.
//! Events of a kind any visitor can cause (a topic hub's announcements of who
//! subscribed: [`HubEvent::kept_apart`]) are kept in a history of their own with the same
//! bounds, so a flood of them never evicts the events clients resume from.
//!
//! **Cost.** A publish builds one frame, appends one entry and bumps one version under a
//! write lock, then wakes the waiting subscribers (those that wait on every publish, and
//! those that wait on one of its keys: [`HubEvent::wake_keys`], [`Subscription::wake_on`],
//! so a hub of many topics wakes a topic's subscribers, not every stream): nothing is
//! copied per subscriber. A
//! wake-up takes a read lock, binary-searches the cursor (`O(log n)`), and clones the
//! frames after it (reference counts, not bytes); joining a batch into one body frame
//! happens outside the lock. A read looks at at most 4,096 events under the lock, and a
//! filter that costs more than a comparison (the `matching` module's) runs outside it,
//! 64 events at a time: however far back a subscriber starts, publishing never waits
//! on it.

use std::collections::VecDeque;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use tokio::sync::{Semaphore, watch};
use tokio::time::Instant;

pub use crate::event_id::{EventId, InvalidEventId};
use crate::frame::FrameError;
pub use crate::publish_error::PublishError;
use crate::resume::ResetReason;
use crate::subscription::{Filter, Sift};
pub use crate::subscription::{Live, Subscription, reset_frame};
use crate::wake::{Keyed, Wake};

/// The most bytes of frames one wake-up reads; the rest follows on the next read.
pub(crate) const MAX_BATCH: usize = 64 * 1024;
/// The most retained events one read looks at under the hub's lock (a filtered
/// subscriber far behind may pass over many before one is its own).
pub(crate) const MAX_SCAN: usize = 4096;
/// The most events a subscriber with a costly filter takes out of the hub's lock at a
/// time (see the `matching` module).
pub(crate) const MAX_SCAN_UNLOCKED: usize = 64;
/// Up to this many new events, a costly filter still runs under the lock: a live
/// subscriber usually finds one or two, and taking them out costs two shared reference
/// counts each.
pub(crate) const FILTER_UNDER_LOCK: usize = 4;

/// How long a subscriber of a hub fed by a shared log waits for an id it has not seen
/// yet (another instance published it, and this one's reader is behind) before it
/// gets `reset` with `unknown-id`.
pub const WAIT_FOR_NEWER: Duration = Duration::from_secs(2);

/// An event the hub can carry: it knows how to become a frame once it has an id.
pub trait HubEvent: Send + Sync + 'static {
    /// The complete frame for this event with this id (usually with `id:` set to it).
    /// Called once per event, under the hub's write lock: keep it to serializing.
    fn frame(&self, id: EventId) -> Result<Bytes, FrameError>;

    /// Whether [`Start::Recent`] counts this event towards its `n` (a chat counts
    /// messages, not joins and leaves, which still come along in between).
    fn counts_as_recent(&self) -> bool {
        true
    }

    /// Whether this event is of a kind kept apart: in a history of its own, with the
    /// same bounds, so that many of them never evict the events clients resume from
    /// (a topic hub's announcements of who subscribed, which any visitor can cause).
    /// A subscriber reads both, in id order; one whose cursor is older than the oldest
    /// retained event kept apart goes on without a reset (clients do not resume them).
    fn kept_apart(&self) -> bool {
        false
    }

    /// Bytes this event holds besides its frame (a topic hub's topics, which no client
    /// is sent), counted against the history's byte bound with the frame.
    fn held_bytes(&self) -> usize {
        0
    }

    /// The id as a client sees it in this event's frame (the hub's `id`, unless the
    /// event shows another), for the `oldest` and `latest` of a `reset`.
    fn shown_id(&self, id: EventId) -> String {
        id.to_string()
    }

    /// The keys of this event (a topic hub's topics), each passed to `key`: a
    /// subscriber that waits on keys ([`Subscription::wake_on`]) is woken only by
    /// events naming one of its keys. None by default.
    fn wake_keys(&self, key: &mut dyn FnMut(&str)) {
        let _ = key;
    }
}

/// How much history the hub keeps.
#[derive(Debug, Clone, Copy)]
pub struct HistoryLimits {
    /// Most events kept.
    pub max_events: usize,
    /// Most bytes kept: frames, and what events hold besides ([`HubEvent::held_bytes`]).
    pub max_bytes: usize,
}

impl Default for HistoryLimits {
    fn default() -> Self {
        Self {
            max_events: 1000,
            max_bytes: 4 * 1024 * 1024,
        }
    }
}

/// Where a new subscription starts.
#[derive(Debug, Clone)]
pub enum Start {
    /// Only events published from now on.
    Live,
    /// From the `n`-th last retained event that passes the filter and
    /// [`HubEvent::counts_as_recent`], then live.
    Recent(usize),
    /// After the id the client sent (`Last-Event-ID`), replaying what it missed. An id
    /// that is not an id, was never issued, or is older than the history earns a
    /// `reset` and a live start. On a hub fed by a shared log, an id newer than any
    /// this hub has seen is waited for, at most [`WAIT_FOR_NEWER`], before that reset.
    After(String),
}

impl Start {
    /// `After(id)` when the client sent one, else `otherwise`.
    pub fn resume_or(last_event_id: Option<String>, otherwise: Start) -> Self {
        last_event_id.map_or(otherwise, Start::After)
    }
}

pub(crate) struct Stored<E> {
    pub(crate) id: EventId,
    /// Shared, so a costly filter can read it outside the lock.
    pub(crate) event: Arc<E>,
    pub(crate) frame: Bytes,
}

impl<E: HubEvent> Stored<E> {
    /// What it counts against the history's byte bound.
    fn size(&self) -> usize {
        self.frame.len() + self.event.held_bytes()
    }
}

/// The events of one kind, oldest first, and the bytes they hold.
pub(crate) struct Lane<E> {
    pub(crate) events: VecDeque<Stored<E>>,
    bytes: usize,
}

impl<E> Lane<E> {
    fn new() -> Self {
        Self {
            events: VecDeque::new(),
            bytes: 0,
        }
    }

    /// The events after `cursor`, oldest first.
    pub(crate) fn after(
        &self,
        cursor: EventId,
    ) -> std::collections::vec_deque::Iter<'_, Stored<E>> {
        let start = self.events.partition_point(|s| s.id <= cursor);
        self.events.range(start..)
    }
}

/// `a` and `b` (each in id order: oldest first, or newest first when `newest_first`)
/// merged in that order.
pub(crate) fn merge<'a, E: 'a>(
    a: impl Iterator<Item = &'a Stored<E>>,
    b: impl Iterator<Item = &'a Stored<E>>,
    newest_first: bool,
) -> impl Iterator<Item = &'a Stored<E>> {
    let (mut a, mut b) = (a.peekable(), b.peekable());
    std::iter::from_fn(move || {
        let from_a = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) => (x.id < y.id) != newest_first,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if from_a { a.next() } else { b.next() }
    })
}

pub(crate) struct History<E> {
    /// The events clients resume from.
    pub(crate) main: Lane<E>,
    /// The events kept apart ([`HubEvent::kept_apart`]).
    pub(crate) apart: Lane<E>,
    /// The run an in-memory hub's ids name; `None` for a hub fed by a shared log, whose
    /// ids are the log's.
    pub(crate) run: Option<u64>,
    next_seq: u64,
    /// The newest id ever published.
    pub(crate) latest: Option<EventId>,
    /// The newest id evicted: a cursor below it has missed something.
    pub(crate) evicted_up_to: Option<EventId>,
}

impl<E: HubEvent> History<E> {
    /// Every retained event, oldest first.
    pub(crate) fn oldest_first(&self) -> impl Iterator<Item = &Stored<E>> {
        merge(self.main.events.iter(), self.apart.events.iter(), false)
    }

    /// Every retained event, newest first.
    pub(crate) fn newest_first(&self) -> impl Iterator<Item = &Stored<E>> {
        let (main, apart) = (
            self.main.events.iter().rev(),
            self.apart.events.iter().rev(),
        );
        merge(main, apart, true)
    }

    /// A `reset`, naming the oldest event a client can resume from and the newest, as
    /// clients see their ids.
    pub(crate) fn reset(&self, reason: ResetReason) -> Bytes {
        let shown = |s: &Stored<E>| s.event.shown_id(s.id);
        let oldest = self.main.events.front().map(shown);
        let newest = self.newest_first().next();
        let latest = match newest {
            Some(s) if Some(s.id) == self.latest => Some(shown(s)),
            _ => self.latest.map(|id| id.to_string()),
        };
        reset_frame(reason, oldest, latest)
    }
}

pub(crate) struct Inner<E> {
    pub(crate) history: RwLock<History<E>>,
    /// Wakes the subscribers that wake on every publish.
    pub(crate) wake: watch::Sender<()>,
    /// The subscribers that wake on their keys only. A publisher takes this lock
    /// before the history's and rings after releasing that: bells ring in id order.
    pub(crate) keyed: Arc<Mutex<Keyed>>,
    /// Turns on a blocking thread for costly filters (the `matching` module's).
    pub(crate) turns: OnceLock<Arc<Semaphore>>,
    limits: HistoryLimits,
    pub(crate) observer: Arc<dyn HubObserver>,
}

/// What a hub reports as it works, for whoever watches it (in the examples, the
/// Prometheus metrics: `hub_metrics::HubMetrics`). Every method does nothing unless
/// implemented; `()` watches nothing.
pub trait HubObserver: Send + Sync + 'static {
    /// `n` events were published.
    fn published(&self, n: u64) {
        let _ = n;
    }
    /// The history now holds `events` events of `bytes` bytes (frames and
    /// [`HubEvent::held_bytes`]).
    fn history(&self, events: usize, bytes: usize) {
        let _ = (events, bytes);
    }
    /// A subscriber fell behind the history (and was sent `reset`, `lagged`).
    fn lagged(&self) {}
    /// The shared log that feeds the hub (Redis) became reachable (`true`) or not.
    fn backend_up(&self, up: bool) {
        let _ = up;
    }
    /// A call to the shared log failed.
    fn backend_error(&self) {}
    /// The shared log held an entry its reader could not read, and skipped it.
    fn backend_skipped(&self) {}
}

impl HubObserver for () {}

/// A bounded, replayable event hub. Cheap to clone; clones share the history.
pub struct Hub<E> {
    pub(crate) inner: Arc<Inner<E>>,
}

impl<E> Clone for Hub<E> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

/// Rings the bells of the keyed subscribers of each of `events` (in id order).
pub(crate) fn ring<E: HubEvent>(keyed: &Keyed, events: &[(EventId, Arc<E>)]) {
    for (id, event) in events {
        event.wake_keys(&mut |key| keyed.ring(key, *id));
    }
}

/// The millisecond a hub is made, naming its run (at least 1, so ids always show it).
fn run_start() -> u64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    since.map_or(1, |d| {
        u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
    })
}

impl<E: HubEvent> Hub<E> {
    /// An empty hub keeping at most `limits`.
    pub fn new(limits: HistoryLimits) -> Self {
        Self::with_observer(limits, ())
    }

    /// An empty hub keeping at most `limits`, reporting to `observer`.
    pub fn with_observer(limits: HistoryLimits, observer: impl HubObserver) -> Self {
        let (wake, _) = watch::channel(());
        Self {
            inner: Arc::new(Inner {
                history: RwLock::new(History {
                    main: Lane::new(),
                    apart: Lane::new(),
                    run: Some(run_start()),
                    next_seq: 1,
                    latest: None,
                    evicted_up_to: None,
                }),
                wake,
                keyed: Arc::default(),
                turns: OnceLock::new(),
                limits,
                observer: Arc::new(observer),
            }),
        }
    }

    /// Publishes `event` under the next id and wakes every subscriber.
    pub fn publish(&self, event: E) -> Result<EventId, PublishError> {
        let ids = self.publish_batch(vec![event])?;
        Ok(ids.first().copied().unwrap_or(EventId::ZERO)) // one event in, one id out
    }

    /// Publishes `events` under consecutive ids as one unit: no subscriber sees part of
    /// the batch without the rest being there too, and subscribers wake once. All or
    /// nothing: if one event cannot be framed, none is published.
    pub fn publish_batch(&self, events: Vec<E>) -> Result<Vec<EventId>, PublishError> {
        let keyed = self.inner.keyed.lock();
        let mut rung = Vec::new();
        let ids = {
            let mut history = self.inner.history.write();
            let (next, ms) = (history.next_seq, history.run.unwrap_or(0));
            let stored = (next..)
                .zip(events)
                .map(|(seq, e)| self.store(EventId { ms, seq }, e));
            let stored = stored.collect::<Result<Vec<_>, _>>()?;
            history.next_seq += stored.len() as u64;
            let ids: Vec<EventId> = stored.iter().map(|s| s.id).collect();
            for stored in stored {
                if !keyed.is_empty() {
                    rung.push((stored.id, Arc::clone(&stored.event)));
                }
                self.append(&mut history, stored);
            }
            ids
        };
        ring(&keyed, &rung);
        drop(keyed);
        self.inner.observer.published(ids.len() as u64);
        self.inner.wake.send_replace(());
        Ok(ids)
    }

    /// Whether `event` could be published: it frames, and fits the history (with the
    /// longest id there can be). A shared log checks this before appending, so no
    /// instance meets an entry it cannot carry.
    pub fn check(&self, event: &E) -> Result<(), PublishError> {
        let longest = EventId {
            ms: u64::MAX,
            seq: u64::MAX,
        };
        self.frame(longest, event).map(|_| ())
    }

    /// `event`'s frame under `id`; refused when it alone is larger than the whole
    /// history may be.
    fn frame(&self, id: EventId, event: &E) -> Result<Bytes, PublishError> {
        let frame = event.frame(id)?;
        let (max, size) = (
            self.inner.limits.max_bytes,
            frame.len() + event.held_bytes(),
        );
        if size > max {
            return Err(PublishError::TooLarge { size, max });
        }
        Ok(frame)
    }

    pub(crate) fn store(&self, id: EventId, event: E) -> Result<Stored<E>, PublishError> {
        let frame = self.frame(id, &event)?;
        let event = Arc::new(event);
        Ok(Stored { id, event, frame })
    }

    pub(crate) fn append(&self, history: &mut History<E>, stored: Stored<E>) {
        history.latest = Some(stored.id);
        let apart = stored.event.kept_apart();
        let lane = if apart {
            &mut history.apart
        } else {
            &mut history.main
        };
        lane.bytes += stored.size();
        lane.events.push_back(stored);
        let limits = self.inner.limits;
        while lane.events.len() > limits.max_events || lane.bytes > limits.max_bytes {
            let Some(evicted) = lane.events.pop_front() else {
                break;
            };
            lane.bytes -= evicted.size();
            if !apart {
                history.evicted_up_to = Some(evicted.id);
            }
        }
        let (main, apart) = (&history.main, &history.apart);
        let events = main.events.len() + apart.events.len();
        self.inner
            .observer
            .history(events, main.bytes + apart.bytes);
    }

    /// The run this hub's own ids name (the `RUN` of `RUN-N`); `None` once it is fed
    /// by a shared log.
    pub fn run(&self) -> Option<u64> {
        self.inner.history.read().run
    }

    /// The bounds this hub keeps.
    pub fn limits(&self) -> HistoryLimits {
        self.inner.limits
    }

    /// What this hub reports to (for a shared log's reader, which reports there too).
    pub fn observer(&self) -> Arc<dyn HubObserver> {
        Arc::clone(&self.inner.observer)
    }

    /// An `event: reset` for `reason`, naming the oldest retained event and the newest
    /// as clients see their ids ([`HubEvent::shown_id`]).
    pub fn reset(&self, reason: ResetReason) -> Bytes {
        self.inner.history.read().reset(reason)
    }

    /// The newest id published, if any.
    pub fn latest(&self) -> Option<EventId> {
        self.inner.history.read().latest
    }

    /// Every event, from `start`, as a stream of frames (see [`Subscription`]).
    pub fn subscribe(&self, start: Start) -> Subscription<E> {
        self.subscribe_filtered(start, |_| true)
    }

    /// The events that pass `filter`, from `start`. The filter runs once per event per
    /// subscriber, under the read lock: keep it to a comparison.
    pub fn subscribe_filtered(
        &self,
        start: Start,
        filter: impl Fn(&E) -> bool + Send + Sync + 'static,
    ) -> Subscription<E> {
        // Subscribe to wake-ups before reading, so no publish falls in between.
        let wake = self.inner.wake.subscribe();
        let history = self.inner.history.read();
        self.start_at(&history, start, Box::new(filter), Wake::Every(wake))
    }

    /// Like [`Hub::subscribe_filtered`], with a filter asked under the lock only what it
    /// can tell at once; the rest is taken out of the lock and handed to it (`matching`).
    pub(crate) fn subscribe_sifted(
        &self,
        start: Start,
        filter: impl Fn(&E) -> bool + Send + Sync + 'static,
        sift: Arc<dyn Sift<E>>,
    ) -> Subscription<E> {
        let mut subscription = self.subscribe_filtered(start, filter);
        subscription.sift = Some(sift);
        subscription
    }

    /// A subscription whose cursor is fixed under `history`'s lock.
    pub(crate) fn start_at(
        &self,
        history: &History<E>,
        start: Start,
        filter: Filter<E>,
        wake: Wake,
    ) -> Subscription<E> {
        // Before the first event: `RUN-0` for an in-memory hub.
        let before_all = EventId {
            ms: history.run.unwrap_or(0),
            seq: 0,
        };
        let live = history.latest.unwrap_or(before_all);
        let replaying = !matches!(start, Start::Live);
        let mut ahead_until = None;
        let (cursor, reset) = match start {
            Start::Live => (live, None),
            Start::Recent(n) => {
                let mut cursor = history.evicted_up_to.unwrap_or(EventId::ZERO);
                let mut matched = 0;
                // Everything retained (`n` past their number): no event to look at.
                let all = n > history.main.events.len() + history.apart.events.len();
                for stored in history.newest_first().take_while(|_| !all) {
                    if matched == n {
                        cursor = stored.id;
                        break;
                    }
                    if stored.event.counts_as_recent() && filter(&stored.event) {
                        matched += 1;
                    }
                }
                (cursor, None)
            }
            Start::After(raw) => match raw.parse::<EventId>() {
                Err(_) => (live, Some(ResetReason::InvalidId)),
                // An id of another run (this process restarted): it says nothing about
                // what this run published, so the client hears that, not a replay.
                Ok(id) if id != EventId::ZERO && history.run.is_some_and(|run| id.ms != run) => {
                    (live, Some(ResetReason::UnknownId))
                }
                // Fed by a shared log: another instance may have published it, and
                // our reader is behind. Wait for it (bounded) from there.
                Ok(id) if id > live && history.run.is_none() => {
                    ahead_until = Some(Instant::now() + WAIT_FOR_NEWER);
                    (id, None)
                }
                Ok(id) if id > live => (live, Some(ResetReason::UnknownId)),
                Ok(id) if history.evicted_up_to.is_some_and(|e| id < e) => {
                    (live, Some(ResetReason::HistoryGap))
                }
                Ok(id) => (id, None),
            },
        };
        let pending: Vec<Bytes> = reset
            .map(|reason| history.reset(reason))
            .into_iter()
            .collect();
        Subscription {
            was_reset: !pending.is_empty(),
            hub: self.clone(),
            cursor,
            filter,
            sift: None,
            taken: VecDeque::new(),
            replaying,
            wake,
            pending,
            live_marker: false,
            ahead_until,
        }
    }
}

//! One subscriber of a [`Hub`]: a cursor into its history, read as batches of shared
//! frames (see the `hub` module for the model). Its types are the hub's:
//! `sse_shared::hub::{Subscription, Live}`.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures_util::Stream;
use futures_util::future::BoxFuture;
use salvo_oapi::ToSchema;
use serde::Serialize;
use tokio::time::Instant;

use crate::frame::Frame;
use crate::hub::{
    EventId, FILTER_UNDER_LOCK, History, Hub, HubEvent, HubObserver, MAX_BATCH, MAX_SCAN,
    MAX_SCAN_UNLOCKED, merge,
};
use crate::resume::{Reset, ResetReason};
use crate::wake::{KeyedWake, Next, Wake};

/// A filter that runs once per event per subscriber, under the hub's read lock.
pub(crate) type Filter<E> = Box<dyn Fn(&E) -> bool + Send + Sync>;

/// An event taken out of the history to be filtered outside its lock.
pub(crate) type Taken<E> = (EventId, Arc<E>, Bytes);

/// A filter that may be costly (the `matching` module's): asked under the lock only
/// what it can tell at once; what it cannot is taken out of the lock and handed to
/// [`Sift::sift`].
pub(crate) trait Sift<E>: Send + Sync {
    /// Whether `event` passes, if that can be told at once.
    fn quick(&self, event: &E) -> Option<bool>;
    /// Moves what passes of `taken` into `batch` (and the cursor past what it looked
    /// at), up to [`MAX_BATCH`] bytes; the rest stays taken. `None` ends the stream.
    fn sift<'a>(
        &'a self,
        hub: &'a Hub<E>,
        taken: &'a mut VecDeque<Taken<E>>,
        cursor: &'a mut EventId,
        batch: &'a mut Batch,
    ) -> BoxFuture<'a, Option<()>>;
}

/// One subscriber: a cursor into the history. Turn it into the frames to send with
/// [`Subscription::into_stream`].
pub struct Subscription<E> {
    pub(crate) hub: Hub<E>,
    pub(crate) cursor: EventId,
    pub(crate) filter: Filter<E>,
    /// A costly filter, run outside the hub's lock (the `matching` module's).
    pub(crate) sift: Option<Arc<dyn Sift<E>>>,
    /// Events after the cursor taken out of the lock, still to be filtered.
    pub(crate) taken: VecDeque<Taken<E>>,
    /// Whether it has not yet read up to the newest event once.
    pub(crate) replaying: bool,
    pub(crate) wake: Wake,
    /// Frames to send before the next read (a reset, a snapshot).
    pub(crate) pending: Vec<Bytes>,
    pub(crate) was_reset: bool,
    pub(crate) live_marker: bool,
    /// The cursor is an id this hub has not seen yet; until when to wait for it.
    pub(crate) ahead_until: Option<Instant>,
}

/// Frames gathered for one write: a single frame is passed on as it is (shared, no
/// copy); several are joined into one buffer.
#[derive(Default)]
pub(crate) struct Batch {
    first: Option<Bytes>,
    joined: Option<BytesMut>,
    /// The bytes pushed.
    pub(crate) bytes: usize,
}

impl Batch {
    /// Takes `frame` by reference: a frame that is copied into a joined buffer is never
    /// cloned, as a clone and its drop are two atomic operations on a reference count
    /// that every subscriber shares (measured: ~5% of the server's CPU at 19,000 clients).
    pub(crate) fn push(&mut self, frame: &Bytes) {
        self.bytes += frame.len();
        match (&mut self.joined, self.first.take()) {
            (Some(joined), _) => joined.extend_from_slice(frame),
            (None, None) => self.first = Some(frame.clone()),
            (None, Some(first)) => {
                let mut joined = BytesMut::with_capacity((first.len() + frame.len()) * 2);
                joined.extend_from_slice(&first);
                joined.extend_from_slice(frame);
                self.joined = Some(joined);
            }
        }
    }

    fn finish(self) -> Option<Bytes> {
        self.joined.map(BytesMut::freeze).or(self.first)
    }
}

impl<E: HubEvent> Subscription<E> {
    /// The next batch of frames, waiting for a publish when there is nothing new.
    /// `None` only if the hub is gone.
    pub async fn next_batch(&mut self) -> Option<Bytes> {
        loop {
            // Marked seen first: a publish after this wakes us. A subscriber woken by
            // its keys alone reads from its first own event since it last read (what
            // is between is not its own, and may have left the history without this
            // being a lag), or has nothing to read (see the `wake` module).
            let idle = self.pending.is_empty() && self.taken.is_empty();
            let next = self.wake.before_read(idle && self.ahead_until.is_none());
            match next {
                Next::Wait => {
                    self.wake.wait().await?;
                    continue;
                }
                Next::ReadFrom(first) => self.cursor = self.cursor.max(first.just_before()),
                _ => {}
            }
            let mut batch = Batch::default();
            for frame in std::mem::take(&mut self.pending) {
                batch.push(&frame);
            }
            // What was taken out of the lock and not yet filtered comes first.
            let read_all = self.taken.is_empty() && self.read(&mut batch);
            // The usual wake-up (a live subscriber) took nothing out: nothing to sift.
            if !self.taken.is_empty()
                && let Some(sift) = self.sift.clone()
            {
                let (hub, taken) = (&self.hub, &mut self.taken);
                sift.sift(hub, taken, &mut self.cursor, &mut batch).await?;
            }
            let caught_up = read_all && self.taken.is_empty();
            self.replaying &= !caught_up;
            if caught_up && std::mem::take(&mut self.live_marker) {
                let run = self.hub.inner.history.read().run.unwrap_or(0);
                let before_all = EventId { ms: run, seq: 0 };
                batch.push(&live_marker(self.cursor, before_all));
            }
            if let Some(frames) = batch.finish() {
                return Some(frames);
            }
            if !caught_up {
                // Passed over events that were not its own: let others run, go on.
                tokio::task::yield_now().await;
                continue;
            }
            match self.ahead_until {
                None => self.wake.wait().await?,
                Some(until) => match tokio::time::timeout_at(until, self.wake.wait()).await {
                    Ok(changed) => changed?,
                    Err(_) => self.give_up_waiting(),
                },
            }
        }
    }

    /// The id this subscriber resumed after never came: say so, and go on live.
    fn give_up_waiting(&mut self) {
        let history = self.hub.inner.history.read();
        if history.latest.is_none_or(|latest| latest < self.cursor) {
            self.cursor = history.latest.unwrap_or(EventId::ZERO);
            self.wake.forget_read();
            self.pending.push(history.reset(ResetReason::UnknownId));
            self.was_reset = true;
        }
        self.ahead_until = None;
    }

    /// Adds what passes the filter after the cursor to `batch`: at most [`MAX_BATCH`]
    /// bytes, looking at at most [`MAX_SCAN`] events. A costly filter is asked under
    /// the lock only what it can tell quickly, and only on the few events a live
    /// subscriber usually finds ([`FILTER_UNDER_LOCK`]); further behind, or at the
    /// first event it cannot tell quickly, up to [`MAX_SCAN_UNLOCKED`] events are
    /// taken out of the lock for [`Sift::sift`]. Whether it read (or took) up to the
    /// newest.
    fn read(&mut self, batch: &mut Batch) -> bool {
        let history = self.hub.inner.history.read();
        let observer = &*self.hub.inner.observer;
        if lagged(&mut self.cursor, &history, observer, self.replaying, batch) {
            if !self.replaying {
                self.wake.read_up_to(self.cursor);
            }
            return !self.replaying; // a replay goes on from the oldest retained
        }
        if history.latest.is_some_and(|latest| latest >= self.cursor) {
            self.ahead_until = None; // the id it waited for has arrived
        }
        let (main, apart) = (
            history.main.after(self.cursor),
            history.apart.after(self.cursor),
        );
        let mut behind = main.len() + apart.len();
        let mut events = merge(main, apart, false).peekable();
        let mut bytes = 0;
        let mut scanned = 0;
        // A keyed subscriber passes over the events of other keys unasked, and asks
        // up to four of its own under the lock however far behind it is.
        let keyed = self.wake.is_keyed();
        let mut own = 0;
        while let Some(stored) = events.peek() {
            if bytes >= MAX_BATCH || scanned == MAX_SCAN {
                return false;
            }
            let wanted = self.wake.wants(&*stored.event);
            own += usize::from(wanted);
            let pass = match &self.sift {
                _ if !wanted => Some(false),
                None => Some((self.filter)(&stored.event)),
                Some(_) if (if keyed { own } else { behind }) > FILTER_UNDER_LOCK => None,
                Some(sift) => sift.quick(&stored.event),
            };
            let Some(pass) = pass else {
                // At most `MAX_SCAN_UNLOCKED` events and about `MAX_BATCH` bytes: what
                // a subscriber holds outside the history is one batch at most. A keyed
                // one takes its own only, and its cursor goes past the rest now (the
                // sift moves it no further back).
                let (mut taken_bytes, mut looked) = (0, 0);
                for stored in events.by_ref().take(MAX_SCAN_UNLOCKED) {
                    looked += 1;
                    if keyed {
                        self.cursor = stored.id;
                        if !self.wake.wants(&*stored.event) {
                            continue;
                        }
                    }
                    taken_bytes += stored.frame.len();
                    let taken = (stored.id, Arc::clone(&stored.event), stored.frame.clone());
                    self.taken.push_back(taken);
                    if taken_bytes >= MAX_BATCH {
                        break;
                    }
                }
                let read_all = behind <= looked;
                if read_all {
                    self.wake.read_up_to(self.cursor);
                }
                return read_all;
            };
            self.cursor = stored.id;
            if pass {
                bytes += stored.frame.len();
                batch.push(&stored.frame);
            }
            events.next();
            scanned += 1;
            behind -= 1;
        }
        // Up to the newest, stored under the lock: whatever comes after rings after.
        self.wake.read_up_to(self.cursor);
        true
    }

    /// From now on this subscription is woken only by the events that name one of
    /// `keys` ([`HubEvent::wake_keys`]), not by every publish: for a subscriber whose
    /// filter passes no other event (a topic hub's subscriber of exact topics), so that
    /// a hub of many keys does not wake every subscriber for every event.
    pub fn wake_on(mut self, keys: impl IntoIterator<Item = impl Into<Box<str>>>) -> Self {
        let keys = keys.into_iter().map(Into::into).collect();
        self.wake = Wake::Keys(KeyedWake::new(&self.hub.inner.keyed, keys));
        self
    }

    /// The frames to send, for [`crate::event_stream::respond`].
    pub fn into_stream(self) -> impl Stream<Item = Bytes> + Send + 'static {
        futures_util::stream::unfold(self, |mut subscription| async move {
            let batch = subscription.next_batch().await?;
            Some((batch, subscription))
        })
    }
}

/// Whether `cursor` fell off the history; if so, says so in `batch` and moves it: to
/// the newest event (or to the floor, when a shared log lost entries past what this
/// hub has seen), or, for a subscriber still `replaying` (it has not caught up once:
/// `earliest` on a full history loses its first event to the next publish), to the
/// oldest retained, so it still gets what was retained.
fn lagged<E: HubEvent>(
    cursor: &mut EventId,
    history: &History<E>,
    observer: &dyn HubObserver,
    replaying: bool,
    batch: &mut Batch,
) -> bool {
    let Some(floor) = history.evicted_up_to.filter(|floor| *cursor < *floor) else {
        return false;
    };
    observer.lagged();
    tracing::debug!(cursor = %cursor, "subscriber lagged");
    *cursor = match replaying {
        true => floor,
        false => history.latest.map_or(floor, |latest| latest.max(floor)),
    };
    batch.push(&history.reset(ResetReason::Lagged));
    true
}

/// The `event: reset` frame (see `resume`). It carries no `id:`, so the client's
/// cursor is unchanged until the next real event.
pub fn reset_frame<T: fmt::Display>(
    reason: ResetReason,
    oldest: Option<T>,
    latest: Option<T>,
) -> Bytes {
    let reset = Reset::new(reason, oldest, latest);
    // Serializing an enum and two ids cannot fail; an empty reset is still a reset.
    match Frame::new().event("reset").and_then(|f| f.json(&reset)) {
        Ok(frame) => frame.finish(),
        Err(_) => Bytes::from_static(b"event: reset\ndata: {}\n\n"),
    }
}

/// The `data` of `event: live`, sent once the replay is over.
#[derive(Serialize, ToSchema)]
pub struct Live {
    /// The id the live events follow: the last event replayed, or, when none was, the
    /// newest when the stream started (`null`: there was none yet).
    pub after: Option<String>,
}

/// The `live` marker after `cursor` (see `snapshot`'s `with_live_marker`);
/// `before_all`, the cursor before this hub's first event, names no event.
fn live_marker(cursor: EventId, before_all: EventId) -> Bytes {
    let after = (cursor != EventId::ZERO && cursor != before_all).then(|| cursor.to_string());
    match Frame::new()
        .event("live")
        .and_then(|f| f.json(&Live { after }))
    {
        Ok(frame) => frame.finish(),
        Err(_) => Bytes::from_static(b"event: live\ndata: {}\n\n"),
    }
}

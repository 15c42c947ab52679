//! Which subscribers a publish wakes. By default every subscriber wakes on every
//! publish (one `watch` channel) and its filter decides; a subscriber that only ever
//! wants events carrying certain keys (a topic hub's subscriber of exact topics, a
//! user's private notifications) can wait on those keys instead
//! ([`crate::hub::Subscription::wake_on`]): then a publish wakes only the subscribers
//! of its keys ([`crate::hub::HubEvent::wake_keys`]), and a hub of many topics does
//! not wake every stream for every update.
//!
//! A keyed subscriber has a bell: a [`Notify`], where its last read ended (when it read
//! up to the newest event) and the oldest event of its keys published after that.
//! Woken, it reads from just before that event instead of from its cursor: the events
//! of other keys in between are not its own, and may long have left the history
//! without that being a lag; with no such event it goes back to waiting without
//! reading. Bells are rung in id order (a publisher holds the registry's lock from
//! taking its ids to ringing) and a read's end is stored under the history's read
//! lock, so an event after it is always rung after it is stored. A subscriber whose
//! first own event since is kept apart ([`crate::hub::HubEvent::kept_apart`]) while
//! the main history moved past it is told it lagged, as any subscriber that far behind.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::{Notify, watch};

use crate::event_id::EventId;
use crate::hub::HubEvent;

/// A keyed subscriber's bell.
#[derive(Default)]
struct Bell {
    state: Mutex<BellState>,
    notify: Notify,
}

#[derive(Default)]
struct BellState {
    /// Where the subscriber's last read ended, when it read up to the newest event
    /// (stored under the history's read lock, so every event after it is rung after).
    read_up_to: Option<EventId>,
    /// The oldest event of its keys after `read_up_to` (stale when not after it).
    first: Option<EventId>,
    /// Something other than its own events happened (the history's floor rose).
    recheck: bool,
}

impl Bell {
    /// Notifies only when `first` changes: while it holds an unread event, the wake-up
    /// that put it there is still to come, and the read it brings reads this one too.
    fn ring(&self, id: EventId) {
        let mut state = self.state.lock();
        let stale = match (state.first, state.read_up_to) {
            (None, _) => true,
            (Some(first), Some(read)) => first <= read,
            (Some(_), None) => false,
        };
        if stale {
            state.first = Some(id);
            drop(state);
            self.notify.notify_one();
        }
    }
}

/// What a subscriber does next, woken or not.
pub(crate) enum Next {
    /// Read after its cursor.
    Read,
    /// Read from just before this event: none of its own lies between.
    ReadFrom(EventId),
    /// Wait: nothing of its own was published since its last read.
    Wait,
}

/// The keyed subscribers of a hub, by key.
#[derive(Default)]
pub(crate) struct Keyed {
    next: u64,
    /// Each key once, shared by its subscribers (a subscription holds no copy).
    by_key: HashMap<Arc<str>, HashMap<u64, Arc<Bell>>>,
}

impl Keyed {
    /// Whether no subscriber waits on keys.
    pub(crate) fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// Rings the bells of `key`'s subscribers for the event `id`.
    pub(crate) fn ring(&self, key: &str, id: EventId) {
        for bell in self.by_key.get(key).into_iter().flat_map(HashMap::values) {
            bell.ring(id);
        }
    }

    /// Wakes every keyed subscriber to read (the history's floor rose: each checks
    /// whether it lagged).
    pub(crate) fn wake_all(&self) {
        for bell in self.by_key.values().flat_map(HashMap::values) {
            bell.state.lock().recheck = true;
            bell.notify.notify_one();
        }
    }
}

/// How a subscription is woken.
pub(crate) enum Wake {
    /// On every publish.
    Every(watch::Receiver<()>),
    /// On the publishes of its keys.
    Keys(KeyedWake),
}

impl Wake {
    /// Called before each read: from here on a publish wakes the next [`Wake::wait`].
    /// A keyed subscriber that read up to the newest event last time reads from its
    /// first own event since, or waits if there is none.
    pub(crate) fn before_read(&mut self, may_wait: bool) -> Next {
        match self {
            // Not `borrow_and_update`: that takes the channel's read lock, which every
            // subscriber shares, on every wake-up.
            Wake::Every(receiver) => {
                receiver.mark_unchanged();
                Next::Read
            }
            Wake::Keys(keyed) => {
                let mut state = keyed.bell.state.lock();
                let first = state.first.take();
                // A risen floor first: entries of its own may be among those lost.
                let read_up_to = state.read_up_to.take().filter(|_| !state.recheck);
                state.recheck = false;
                match (read_up_to, first) {
                    (Some(read), Some(first)) if first > read => Next::ReadFrom(first),
                    (Some(read), _) if may_wait => {
                        state.read_up_to = Some(read);
                        Next::Wait
                    }
                    _ => Next::Read,
                }
            }
        }
    }

    /// Whether `event` may be this subscriber's: for a keyed one, whether it names one
    /// of its keys (its filter passes no other, so the rest are passed over unasked).
    pub(crate) fn wants<E: HubEvent>(&self, event: &E) -> bool {
        let Wake::Keys(keyed) = self else {
            return true;
        };
        let mut wanted = false;
        event.wake_keys(&mut |key| {
            wanted = wanted || keyed.keys.binary_search_by(|k| (**k).cmp(key)).is_ok();
        });
        wanted
    }

    /// Whether it wakes on its keys alone.
    pub(crate) fn is_keyed(&self) -> bool {
        matches!(self, Wake::Keys(_))
    }

    /// Forgets where the last read ended (the cursor moved back from there).
    pub(crate) fn forget_read(&self) {
        if let Wake::Keys(keyed) = self {
            keyed.bell.state.lock().read_up_to = None;
        }
    }

    /// Says that a read ended at `cursor`, the newest event: called under the
    /// history's read lock.
    pub(crate) fn read_up_to(&self, cursor: EventId) {
        if let Wake::Keys(keyed) = self {
            keyed.bell.state.lock().read_up_to = Some(cursor);
        }
    }

    /// Waits for a publish after the last [`Wake::before_read`]; `None` if the hub is
    /// gone.
    pub(crate) async fn wait(&mut self) -> Option<()> {
        match self {
            Wake::Every(receiver) => receiver.changed().await.ok(),
            Wake::Keys(keyed) => {
                keyed.bell.notify.notified().await;
                Some(())
            }
        }
    }
}

/// A subscriber's place among a hub's keyed subscribers; leaves it when dropped.
pub(crate) struct KeyedWake {
    bell: Arc<Bell>,
    id: u64,
    /// Sorted.
    keys: Vec<Arc<str>>,
    registry: Arc<Mutex<Keyed>>,
}

impl KeyedWake {
    /// Registers a bell for `keys` in `registry`.
    pub(crate) fn new(registry: &Arc<Mutex<Keyed>>, mut keys: Vec<Box<str>>) -> Self {
        keys.sort_unstable();
        keys.dedup();
        let bell = Arc::new(Bell::default());
        let mut keyed = registry.lock();
        let id = keyed.next;
        keyed.next += 1;
        let keys = keys
            .into_iter()
            .map(|key| {
                let shared = match keyed.by_key.get_key_value(&*key) {
                    Some((shared, _)) => Arc::clone(shared),
                    None => Arc::from(key),
                };
                let bells = keyed.by_key.entry(Arc::clone(&shared)).or_default();
                bells.insert(id, Arc::clone(&bell));
                shared
            })
            .collect();
        drop(keyed);
        Self {
            bell,
            id,
            keys,
            registry: Arc::clone(registry),
        }
    }
}

impl Drop for KeyedWake {
    fn drop(&mut self) {
        let mut keyed = self.registry.lock();
        for key in &self.keys {
            if let Some(bells) = keyed.by_key.get_mut(&**key) {
                bells.remove(&self.id);
                if bells.is_empty() {
                    keyed.by_key.remove(&**key);
                }
            }
        }
    }
}

impl EventId {
    /// The greatest id before this one: a cursor there reads this event next.
    pub(crate) fn just_before(self) -> EventId {
        match (self.ms, self.seq) {
            (0, 0) => EventId::ZERO,
            (ms, 0) => EventId {
                ms: ms.saturating_sub(1),
                seq: u64::MAX,
            },
            (ms, seq) => EventId { ms, seq: seq - 1 },
        }
    }
}

//! The hub's promises: every subscriber gets exactly the events after its cursor, in
//! order, once, whether replayed or live and however publishes race subscribes; a
//! subscriber that falls off the history gets `reset` first; memory stays bounded.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::FutureExt;
use proptest::prelude::*;
use rand::{RngExt, SeedableRng};
use sse_shared::hub::{EventId, HistoryLimits, Hub, HubEvent, HubObserver, Start, Subscription};
use sse_shared::matching::Matching;
use sse_shared::{Frame, FrameError};

/// A test event: a payload of some bytes.
struct Note(String);

impl HubEvent for Note {
    fn frame(&self, id: EventId) -> Result<Bytes, FrameError> {
        Ok(Frame::new().id(&id.to_string())?.data(&self.0).finish())
    }
}

fn hub(max_events: usize) -> Hub<Note> {
    hub_reporting(max_events, Reports::default())
}

fn hub_reporting(max_events: usize, reports: Reports) -> Hub<Note> {
    let limits = HistoryLimits {
        max_events,
        max_bytes: usize::MAX,
    };
    Hub::with_observer(limits, reports)
}

/// What a hub reported to its observer (the seam the metrics use).
#[derive(Clone, Default)]
struct Reports(Arc<Reported>);

#[derive(Default)]
struct Reported {
    lagged: AtomicU64,
    events: AtomicUsize,
    bytes: AtomicUsize,
}

impl HubObserver for Reports {
    fn history(&self, events: usize, bytes: usize) {
        self.0.events.store(events, Ordering::Relaxed);
        self.0.bytes.store(bytes, Ordering::Relaxed);
    }
    fn lagged(&self) {
        self.0.lagged.fetch_add(1, Ordering::Relaxed);
    }
}

impl Reports {
    fn lagged(&self) -> u64 {
        self.0.lagged.load(Ordering::Relaxed)
    }

    /// Events and bytes the hub retains now, as it last reported.
    fn retained(&self) -> (usize, usize) {
        let seen = &self.0;
        (
            seen.events.load(Ordering::Relaxed),
            seen.bytes.load(Ordering::Relaxed),
        )
    }
}

/// The id of this hub's `seq`-th event: `RUN-seq`.
fn at(hub: &Hub<Note>, seq: u64) -> EventId {
    EventId {
        ms: hub.run().unwrap_or(0),
        seq,
    }
}

/// What a subscriber saw: event sequence numbers, or `reset:<reason>`.
fn blocks(batch: &Bytes) -> Vec<String> {
    let text = String::from_utf8_lossy(batch);
    text.split("\n\n")
        .filter(|block| !block.is_empty())
        .map(|block| {
            if let Some(id) = block.lines().find_map(|l| l.strip_prefix("id: ")) {
                // RUN-N: the sequence is what these tests follow.
                return id.rsplit('-').next().unwrap_or(id).to_owned();
            }
            if block.starts_with("event: reset") {
                let reason = block
                    .split("\"reason\":\"")
                    .nth(1)
                    .unwrap_or("")
                    .split('"')
                    .next()
                    .unwrap_or("");
                return format!("reset:{reason}");
            }
            format!("other:{block}")
        })
        .collect()
}

/// Everything available to `sub` right now, without waiting.
/// Bounded, so a subscriber that never runs dry fails instead of hanging.
fn drain<E: HubEvent>(sub: &mut Subscription<E>) -> Vec<String> {
    let mut seen = Vec::new();
    for _ in 0..100_000 {
        match sub.next_batch().now_or_never() {
            Some(Some(batch)) => seen.extend(blocks(&batch)),
            _ => return seen,
        }
    }
    panic!("the subscription never ran dry; last: {:?}", seen.last());
}

#[derive(Debug, Clone)]
enum Op {
    Publish(usize),
    Subscribe(Option<u64>),
    SubscribeGarbage,
    Read(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (1usize..8).prop_map(Op::Publish),
        1 => prop::option::of(0u64..80).prop_map(Op::Subscribe),
        1 => Just(Op::SubscribeGarbage),
        3 => any::<usize>().prop_map(Op::Read),
    ]
}

/// The reference: what a subscriber with this cursor should see next.
struct Model {
    published: u64,
    evicted_up_to: u64,
}

impl Model {
    /// A subscriber that fell off the history is reset; one still replaying (it has not
    /// read up to the newest once) goes on from the oldest retained, the others live.
    fn expect(&self, (cursor, replaying): &mut (u64, bool), out: &mut Vec<String>) {
        if *cursor < self.evicted_up_to {
            out.push("reset:lagged".into());
            *cursor = if *replaying {
                self.evicted_up_to
            } else {
                self.published
            };
        }
        out.extend((*cursor + 1..=self.published).map(|i| i.to_string()));
        *cursor = self.published;
        *replaying = false;
    }
}

/// A subscription, its cursor in the model and whether it is replaying, what it got,
/// what it should have got.
type Tracked = (Subscription<Note>, (u64, bool), Vec<String>, Vec<String>);

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn every_subscriber_gets_exactly_what_follows_its_cursor(
        ops in prop::collection::vec(op(), 1..60),
        max_events in 1usize..20,
    ) {
        let hub = hub(max_events);
        let mut model = Model { published: 0, evicted_up_to: 0 };
        let mut subs: Vec<Tracked> = Vec::new();
        for op in ops {
            match op {
                Op::Publish(n) => {
                    for _ in 0..n {
                        let id = hub.publish(Note("x".into())).map_err(|e| TestCaseError::fail(e.to_string()))?;
                        model.published += 1;
                        prop_assert_eq!(id, at(&hub, model.published));
                        model.evicted_up_to = model.published.saturating_sub(max_events as u64);
                    }
                }
                Op::Subscribe(last) => {
                    let start = last.map_or(Start::Live, |id| Start::After(at(&hub, id).to_string()));
                    let sub = hub.subscribe(start);
                    let mut expected = Vec::new();
                    let cursor = match last {
                        None => model.published,
                        Some(id) if id > model.published => { expected.push("reset:unknown-id".into()); model.published }
                        Some(id) if id < model.evicted_up_to => { expected.push("reset:history-gap".into()); model.published }
                        Some(id) => id,
                    };
                    subs.push((sub, (cursor, last.is_some()), Vec::new(), expected));
                }
                Op::SubscribeGarbage => {
                    let sub = hub.subscribe(Start::After("x1".into()));
                    subs.push((sub, (model.published, true), Vec::new(), vec!["reset:invalid-id".into()]));
                }
                Op::Read(i) => {
                    if subs.is_empty() { continue; }
                    let k = i % subs.len();
                    let (sub, cursor, got, expected) = &mut subs[k];
                    got.extend(drain(sub));
                    model.expect(cursor, expected);
                }
            }
        }
        for (mut sub, mut cursor, mut got, mut expected) in subs {
            got.extend(drain(&mut sub));
            model.expect(&mut cursor, &mut expected);
            prop_assert_eq!(got, expected);
        }
    }
}

#[test]
fn recent_replays_the_last_n_matching_events() {
    let hub = hub(100);
    for i in 0..10 {
        let body = if i % 2 == 0 { "even" } else { "odd" };
        assert!(hub.publish(Note(body.into())).is_ok());
    }
    let mut evens = hub.subscribe_filtered(Start::Recent(3), |n: &Note| n.0 == "even");
    // Events 1..=10; the evens are 1, 3, 5, 7, 9: the last three are 5, 7, 9.
    assert_eq!(drain(&mut evens), ["5", "7", "9"]);
    let mut all = hub.subscribe(Start::Recent(100));
    assert_eq!(drain(&mut all).len(), 10);
}

#[test]
fn the_history_is_bounded_by_bytes_and_oversized_events_are_refused() {
    let reports = Reports::default();
    let limits = HistoryLimits {
        max_events: 1_000_000,
        max_bytes: 10_000,
    };
    let hub: Hub<Note> = Hub::with_observer(limits, reports.clone());
    for _ in 0..1_000 {
        assert!(hub.publish(Note("y".repeat(100))).is_ok());
    }
    let (events, bytes) = reports.retained();
    assert!(
        bytes <= 10_000 && events < 100,
        "{events} events, {bytes} bytes"
    );
    assert!(hub.publish(Note("z".repeat(20_000))).is_err());
}

#[test]
fn a_live_marker_follows_the_replay() {
    let hub = hub(100);
    for _ in 0..3 {
        assert!(hub.publish(Note("n".into())).is_ok());
    }
    let mut sub = hub
        .subscribe(Start::After(at(&hub, 1).to_string()))
        .with_live_marker();
    let first = sub
        .next_batch()
        .now_or_never()
        .flatten()
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&first);
    assert!(
        text.ends_with(&format!(
            "event: live\ndata: {{\"after\":\"{}\"}}\n\n",
            at(&hub, 3)
        )),
        "{text}"
    );
    assert_eq!(blocks(&first)[..2], ["2", "3"]);
}

/// 8 publishers x 10,000 events; 100 subscribers that drop their subscription at
/// random points and resume from the last id they saw. Each must end with the whole
/// sequence, exactly once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_publishers_and_resuming_subscribers_see_everything_once() {
    const PUBLISHERS: u64 = 8;
    const EACH: u64 = 10_000;
    const TOTAL: u64 = PUBLISHERS * EACH;
    let hub = hub(TOTAL as usize);

    let subscribers: Vec<_> = (0..100u64)
        .map(|seed| {
            let hub = hub.clone();
            tokio::spawn(async move {
                let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
                let mut seen: Vec<u64> = Vec::with_capacity(TOTAL as usize);
                let mut sub = hub.subscribe(Start::After("0".into()));
                while seen.last() != Some(&TOTAL) {
                    let batch =
                        tokio::time::timeout(std::time::Duration::from_secs(30), sub.next_batch())
                            .await
                            .unwrap_or_else(|_| {
                                panic!("subscriber {seed} starved at {:?}", seen.last())
                            })
                            .unwrap_or_else(|| panic!("the hub went away"));
                    for block in blocks(&batch) {
                        seen.push(
                            block
                                .parse()
                                .unwrap_or_else(|_| panic!("unexpected block {block}")),
                        );
                    }
                    if rng.random_range(0..10) == 0 {
                        // Disconnect, then resume from the last id seen.
                        let last = seen.last().copied().unwrap_or(0);
                        sub = hub.subscribe(Start::After(at(&hub, last).to_string()));
                    }
                }
                seen
            })
        })
        .collect();

    let publishers: Vec<_> = (0..PUBLISHERS)
        .map(|p| {
            let hub = hub.clone();
            tokio::spawn(async move {
                for i in 0..EACH {
                    if let Err(e) = hub.publish(Note(format!("{p}-{i}"))) {
                        panic!("publish failed: {e}");
                    }
                    if i % 64 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
            })
        })
        .collect();
    for publisher in publishers {
        assert!(publisher.await.is_ok());
    }
    let expected: Vec<u64> = (1..=TOTAL).collect();
    for subscriber in subscribers {
        let seen = subscriber.await.unwrap_or_else(|e| panic!("{e}"));
        assert!(
            seen == expected,
            "a subscriber saw {} events, not each of 1..={TOTAL} once",
            seen.len()
        );
    }
}

#[test]
fn a_subscriber_that_falls_off_the_history_is_reset_and_goes_on() {
    let reports = Reports::default();
    let hub = hub_reporting(100, reports.clone());
    let mut slow = hub.subscribe(Start::Live);
    let mut fast = hub.subscribe(Start::Live);
    let mut fast_seen = VecDeque::new();
    for _ in 0..1_000 {
        assert!(hub.publish(Note("e".into())).is_ok());
        fast_seen.extend(drain(&mut fast));
    }
    assert_eq!(fast_seen.len(), 1_000, "the fast one is not held back");
    assert_eq!(drain(&mut slow), ["reset:lagged"]);
    assert_eq!(reports.lagged(), 1);
    assert!(hub.publish(Note("after".into())).is_ok());
    assert_eq!(drain(&mut slow), ["1001"], "it goes on live");
}

/// sse-notify's streams are filtered (each user sees broadcasts and their own): a
/// filtered subscriber that falls off the history is reset too, and then sees only what
/// its filter lets through.
#[test]
fn a_filtered_subscriber_that_falls_off_the_history_is_reset_and_goes_on_filtered() {
    let reports = Reports::default();
    let hub = hub_reporting(100, reports.clone());
    let mine = |n: &Note| n.0.starts_with("bob");
    let mut slow = hub.subscribe_filtered(Start::Live, mine);
    let mut idle = hub.subscribe_filtered(Start::Live, mine);
    for i in 0..1_000 {
        let who = if i % 10 == 0 { "bob" } else { "alice" };
        assert!(hub.publish(Note(format!("{who} {i}"))).is_ok());
        // An idle subscriber that keeps reading moves its cursor past what it does not
        // see: it never lags, however little passes its filter.
        // (Bob's are events 1, 11, 21, ...)
        let seen = drain(&mut idle);
        assert!(
            seen.iter()
                .all(|seq| seq.parse::<u64>().is_ok_and(|n| n % 10 == 1)),
            "{seen:?}"
        );
    }
    assert_eq!(drain(&mut slow), ["reset:lagged"]);
    assert_eq!(reports.lagged(), 1, "the idle one never lagged");
    assert!(hub.publish(Note("alice after".into())).is_ok());
    assert!(hub.publish(Note("bob after".into())).is_ok());
    assert_eq!(
        drain(&mut slow),
        ["1002"],
        "it goes on live, filtered: bob's, not alice's 1001"
    );
}

#[test]
fn an_id_from_another_run_is_unknown_not_a_position() {
    // Two runs of one process: ids from the first mean nothing to the second.
    let before = hub(100);
    for _ in 0..5 {
        assert!(before.publish(Note("old".into())).is_ok());
    }
    let old_id = at(&before, 5).to_string();
    std::thread::sleep(std::time::Duration::from_millis(2)); // a later millisecond
    let after = hub(100);
    for _ in 0..10 {
        assert!(after.publish(Note("new".into())).is_ok());
    }
    assert_ne!(before.run(), after.run());
    let mut sub = after.subscribe(Start::After(old_id));
    assert_eq!(drain(&mut sub), ["reset:unknown-id"], "no replay of 6..10");
    // Its own ids, and 0 (before everything), still resume.
    let mut own = after.subscribe(Start::After(at(&after, 8).to_string()));
    assert_eq!(drain(&mut own), ["9", "10"]);
    let mut all = after.subscribe(Start::After("0".into()));
    assert_eq!(drain(&mut all).len(), 10);
}

/// A hub fed by a shared log, holding its entries `1000-1` ..= `1000-n`.
fn shared_hub(n: u64) -> Hub<Note> {
    let hub = hub(100);
    for seq in 1..=n {
        append(&hub, seq);
    }
    hub
}

/// The shared log's entry `1000-seq` reaches the hub (its reader delivers it).
fn append(hub: &Hub<Note>, seq: u64) {
    let id = EventId { ms: 1000, seq };
    assert_eq!(hub.append_with_id(id, Note("x".into())).ok(), Some(true));
}

#[tokio::test(start_paused = true)]
async fn on_a_shared_log_an_id_this_hub_has_not_read_yet_is_waited_for() {
    // Another instance published 4 and 5; a client that read them there resumes here,
    // where the reader has delivered only up to 3.
    let hub = shared_hub(3);
    let mut sub = hub.subscribe(Start::After("1000-5".into()));
    assert_eq!(
        drain(&mut sub),
        Vec::<String>::new(),
        "no reset, nothing yet"
    );
    for seq in 4..=6 {
        append(&hub, seq);
    }
    assert_eq!(drain(&mut sub), ["6"], "what came after its id, once");
}

#[tokio::test(start_paused = true)]
async fn an_id_that_never_arrives_is_unknown_after_the_wait() {
    let hub = shared_hub(3);
    let mut sub = hub.subscribe(Start::After("1000-9".into()));
    let started = tokio::time::Instant::now();
    let batch = sub.next_batch().await.map(|b| blocks(&b));
    assert_eq!(batch, Some(vec!["reset:unknown-id".to_owned()]));
    assert_eq!(started.elapsed(), sse_shared::hub::WAIT_FOR_NEWER);
    append(&hub, 4);
    assert_eq!(drain(&mut sub), ["4"], "then live");
}

/// An event that is kept apart, or not.
struct Mixed {
    apart: bool,
}

impl HubEvent for Mixed {
    fn frame(&self, id: EventId) -> Result<Bytes, FrameError> {
        Ok(Frame::new().id(&id.to_string())?.data("m").finish())
    }

    fn kept_apart(&self) -> bool {
        self.apart
    }
}

/// Hostile round three (5): events kept apart have their own bounds: a flood of them
/// never evicts the others, and a subscriber reads both in id order, without a reset
/// for the ones kept apart it can no longer get.
#[test]
fn events_kept_apart_never_evict_the_others() {
    let limits = HistoryLimits {
        max_events: 10,
        max_bytes: usize::MAX,
    };
    let hub = Hub::new(limits);
    let publish = |apart| assert!(hub.publish(Mixed { apart }).is_ok());
    (0..5).for_each(|_| publish(false)); // 1..=5
    (0..100).for_each(|_| publish(true)); // 6..=105, the last ten kept
    publish(false); // 106
    let second = EventId {
        ms: hub.run().unwrap_or(0),
        seq: 2,
    };
    let mut sub = hub.subscribe(Start::After(second.to_string()));
    let expected: Vec<String> = (3..=5)
        .chain(96..=106)
        .map(|n: u64| n.to_string())
        .collect();
    assert_eq!(drain(&mut sub), expected);
}

/// A costly filter for the tests below: it can tell nothing quickly, and its test
/// waits (bounded) until the test thread lets it go, saying when it starts.
struct Blocking {
    entered: std::sync::mpsc::Sender<()>,
    release: Release,
    running: Arc<AtomicUsize>,
    most: Arc<AtomicUsize>,
    /// The longest it waits.
    hold: Duration,
}

impl Matching<Note> for Blocking {
    fn quick(&self, _: &Note) -> Option<bool> {
        None
    }

    fn test(&self, _: &Note) -> bool {
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
        let _ = self.entered.send(());
        let (released, signal) = &*self.release;
        let guard = released.lock().unwrap_or_else(|e| e.into_inner());
        let wait = signal.wait_timeout_while(guard, self.hold, |r| !*r);
        drop(wait);
        self.running.fetch_sub(1, Ordering::SeqCst);
        true
    }
}

/// Set once the test thread lets the filter go.
type Release = Arc<(Mutex<bool>, Condvar)>;

fn blocking(hold: Duration) -> (Blocking, std::sync::mpsc::Receiver<()>, Release) {
    let (entered, entries) = std::sync::mpsc::channel();
    let release = Arc::new((Mutex::new(false), Condvar::new()));
    let filter = Blocking {
        entered,
        release: Arc::clone(&release),
        running: Arc::default(),
        most: Arc::default(),
        hold,
    };
    (filter, entries, release)
}

fn let_go(release: &(Mutex<bool>, Condvar)) {
    *release.0.lock().unwrap_or_else(|e| e.into_inner()) = true;
    release.1.notify_all();
}

/// Hostile round three (3): a costly filter ([`Hub::subscribe_matching`]) runs
/// outside the hub's lock and off the runtime's workers: while one is busy, a publish
/// goes through and another subscriber, on the runtime's only worker, reads it.
#[test]
fn a_costly_filter_holds_neither_the_lock_nor_a_worker() -> Result<(), Box<dyn std::error::Error>> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let hub = hub(100);
    for _ in 0..10 {
        hub.publish(Note("n".into()))?;
    }
    let (filter, entries, release) = blocking(Duration::from_secs(20));
    let mut costly = hub.subscribe_matching(Start::Recent(usize::MAX), filter);
    let costly = runtime.spawn(async move {
        let mut seen = Vec::new();
        while seen.len() < 11 {
            match costly.next_batch().await {
                Some(batch) => seen.extend(blocks(&batch)),
                None => break,
            }
        }
        seen
    });
    entries.recv_timeout(Duration::from_secs(10))?;
    // The filter is busy now.
    let mut plain = hub.subscribe(Start::Live);
    let (read, outcome) = std::sync::mpsc::channel();
    runtime.spawn(async move {
        let _ = read.send(plain.next_batch().await.map(|b| blocks(&b)));
    });
    let (published, done) = std::sync::mpsc::channel();
    let publisher = hub.clone();
    std::thread::spawn(move || {
        let _ = published.send(publisher.publish(Note("late".into())).is_ok());
    });
    let publish = done.recv_timeout(Duration::from_secs(5));
    let other = outcome.recv_timeout(Duration::from_secs(5));
    let_go(&release);
    assert_eq!(publish, Ok(true), "the publish waited for the filter");
    assert_eq!(
        other,
        Ok(Some(vec!["11".to_owned()])),
        "the worker waited for the filter"
    );
    let seen = runtime
        .block_on(async { tokio::time::timeout(Duration::from_secs(10), costly).await })??;
    let expected: Vec<String> = (1..=11).map(|n: u64| n.to_string()).collect();
    assert_eq!(seen, expected);
    Ok(())
}

/// Hostile round three: however many subscribers bring costly filters, at most one
/// per two cores runs one at a time; each still gets its events.
#[test]
fn costly_filters_take_turns() -> Result<(), Box<dyn std::error::Error>> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let turns = std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1));
    let hub = hub(100);
    hub.publish(Note("n".into()))?;
    // Each holds its turn 300 ms, long enough for all to be running at once if
    // nothing made them take turns.
    let (filter, entries, release) = blocking(Duration::from_millis(300));
    let most = Arc::clone(&filter.most);
    let filter = Arc::new(filter);
    let readers: Vec<_> = (0..turns + 3)
        .map(|_| {
            let shared = Shared(Arc::clone(&filter));
            let mut sub = hub.subscribe_matching(Start::Recent(usize::MAX), shared);
            runtime.spawn(async move { sub.next_batch().await.map(|b| blocks(&b)) })
        })
        .collect();
    for _ in 0..turns + 3 {
        entries.recv_timeout(Duration::from_secs(10))?;
    }
    let_go(&release);
    for reader in readers {
        let seen = runtime
            .block_on(async { tokio::time::timeout(Duration::from_secs(10), reader).await })??;
        assert_eq!(seen, Some(vec!["1".to_owned()]));
    }
    let most = most.load(Ordering::SeqCst);
    assert!(
        most <= turns,
        "{most} costly filters ran at once (turns: {turns})"
    );
    Ok(())
}

/// Reads `sub` until `n` events (sequence numbers) have come, within 10 s; the size
/// of the largest batch too.
async fn read_n(sub: &mut Subscription<Note>, n: usize) -> (Vec<String>, usize) {
    let (mut seen, mut largest) = (Vec::new(), 0);
    let reading = async {
        while seen.len() < n {
            match sub.next_batch().await {
                Some(batch) => {
                    largest = largest.max(batch.len());
                    seen.extend(blocks(&batch));
                }
                None => break,
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(10), reading).await;
    (seen, largest)
}

/// A costly filter that answers every event quickly (`true`), taking `quick_time`
/// to do so, and counts the events its full test had to answer.
struct Slow {
    quick_time: Duration,
    tested: Arc<AtomicUsize>,
}

impl Matching<Note> for Slow {
    fn quick(&self, _: &Note) -> Option<bool> {
        std::thread::sleep(self.quick_time);
        Some(true)
    }

    fn test(&self, _: &Note) -> bool {
        self.tested.fetch_add(1, Ordering::SeqCst);
        true
    }
}

/// Hostile round three: a replay through a costly filter holds at most one batch
/// (64 KiB and a frame) outside the history, however large the events it takes out
/// of the lock, and still gets every event once, in order.
#[tokio::test]
async fn a_costly_replay_holds_one_batch_at_a_time() -> Result<(), Box<dyn std::error::Error>> {
    let hub = hub(1000);
    let big = "x".repeat(55_000);
    for _ in 0..80 {
        hub.publish(Note(big.clone()))?;
    }
    let filter = Slow {
        quick_time: Duration::ZERO,
        tested: Arc::default(),
    };
    let mut sub = hub.subscribe_matching(Start::Recent(usize::MAX), filter);
    let (seen, largest) = read_n(&mut sub, 80).await;
    let expected: Vec<String> = (1..=80).map(|n: u64| n.to_string()).collect();
    assert_eq!(seen, expected);
    assert!(largest <= 64 * 1024 + 56_000, "a batch of {largest} bytes");
    Ok(())
}

/// Hostile round three: quick answers that add up (many topics against many patterns)
/// run on a runtime worker for a short while per wake-up; the rest of what was taken
/// goes to the blocking thread. Every event still comes once, in order.
#[tokio::test]
async fn quick_answers_that_add_up_move_off_the_worker() -> Result<(), Box<dyn std::error::Error>> {
    let hub = hub(100);
    for _ in 0..20 {
        hub.publish(Note("n".into()))?;
    }
    let tested = Arc::new(AtomicUsize::new(0));
    let filter = Slow {
        quick_time: Duration::from_millis(3),
        tested: Arc::clone(&tested),
    };
    let mut sub = hub.subscribe_matching(Start::Recent(usize::MAX), filter);
    let (seen, _) = read_n(&mut sub, 20).await;
    let expected: Vec<String> = (1..=20).map(|n: u64| n.to_string()).collect();
    assert_eq!(seen, expected);
    assert!(
        tested.load(Ordering::SeqCst) > 0,
        "every answer ran on the worker"
    );
    Ok(())
}

/// One [`Blocking`] filter shared by several subscribers.
struct Shared(Arc<Blocking>);

impl Matching<Note> for Shared {
    fn quick(&self, note: &Note) -> Option<bool> {
        self.0.quick(note)
    }

    fn test(&self, note: &Note) -> bool {
        self.0.test(note)
    }
}

/// Hostile round three (5): `earliest` on a full history loses its first event to the
/// next publish before it reads anything; it is told so (`reset`), and still gets every
/// event retained, not a jump to the newest.
#[test]
fn a_replay_that_lags_before_its_first_read_goes_on_from_the_oldest_retained() {
    let hub = hub(10);
    for _ in 0..10 {
        assert!(hub.publish(Note("n".into())).is_ok()); // 1..=10, the history full
    }
    let mut sub = hub.subscribe(Start::Recent(usize::MAX));
    assert!(hub.publish(Note("n".into())).is_ok()); // 11 evicts 1
    let mut expected = vec!["reset:lagged".to_owned()];
    expected.extend((2..=11).map(|n: u64| n.to_string()));
    assert_eq!(drain(&mut sub), expected);
}

/// The `live` marker names the id live events follow, and no id that names no event:
/// on a hub with nothing published, `after` is `null` (it said `RUN-0`).
#[test]
fn the_live_marker_names_only_ids_of_events() {
    let hub = hub(10);
    let marker = |start| {
        let mut sub = hub.subscribe(start).with_live_marker();
        let batch = sub
            .next_batch()
            .now_or_never()
            .flatten()
            .unwrap_or_default();
        String::from_utf8_lossy(&batch).into_owned()
    };
    assert!(marker(Start::Live).contains(r#"data: {"after":null}"#));
    assert!(marker(Start::Recent(5)).contains(r#"data: {"after":null}"#));
    assert!(hub.publish(Note("one".into())).is_ok());
    let first = at(&hub, 1).to_string();
    assert!(marker(Start::Live).contains(&format!(r#"data: {{"after":"{first}"}}"#)));
    assert!(marker(Start::Recent(5)).contains(&format!(r#"data: {{"after":"{first}"}}"#)));
}

/// An event with a key, as a topic hub's update has its topics.
struct Keyed(&'static str);

impl HubEvent for Keyed {
    fn frame(&self, id: EventId) -> Result<Bytes, FrameError> {
        Ok(Frame::new().id(&id.to_string())?.data(self.0).finish())
    }

    fn wake_keys(&self, key: &mut dyn FnMut(&str)) {
        key(self.0);
    }
}

/// A subscriber of key `a` only, woken by its events only.
fn keyed_subscriber(hub: &Hub<Keyed>, start: Start) -> Subscription<Keyed> {
    hub.subscribe_filtered(start, |e: &Keyed| e.0 == "a")
        .wake_on(["a"])
}

fn keyed_hub(max_events: usize, reports: Reports) -> Hub<Keyed> {
    let limits = HistoryLimits {
        max_events,
        max_bytes: usize::MAX,
    };
    Hub::with_observer(limits, reports)
}

/// A subscriber woken by its keys alone is not moved along by the others' events: when
/// they have left the history, it goes on from its next own event, with no reset (it
/// missed nothing).
#[test]
fn a_keyed_subscriber_goes_past_the_others_events_without_a_reset() {
    let reports = Reports::default();
    let hub = keyed_hub(10, reports.clone());
    let mut sub = keyed_subscriber(&hub, Start::Live);
    assert!(drain(&mut sub).is_empty());
    assert!(hub.publish(Keyed("a")).is_ok());
    assert_eq!(drain(&mut sub), ["1"]);
    for _ in 0..100 {
        assert!(hub.publish(Keyed("b")).is_ok());
    }
    assert!(drain(&mut sub).is_empty(), "no event of its own yet");
    assert!(hub.publish(Keyed("a")).is_ok());
    assert!(hub.publish(Keyed("b")).is_ok());
    assert!(hub.publish(Keyed("a")).is_ok());
    assert_eq!(drain(&mut sub), ["102", "104"]);
    assert_eq!(reports.lagged(), 0);
}

/// One whose own event left the history before it read it has lagged, keyed or not.
#[test]
fn a_keyed_subscriber_that_missed_its_own_event_is_reset() {
    let reports = Reports::default();
    let hub = keyed_hub(10, reports.clone());
    let mut sub = keyed_subscriber(&hub, Start::Live);
    assert!(drain(&mut sub).is_empty());
    assert!(hub.publish(Keyed("a")).is_ok());
    for _ in 0..100 {
        assert!(hub.publish(Keyed("b")).is_ok());
    }
    assert_eq!(drain(&mut sub), ["reset:lagged"]);
    assert_eq!(reports.lagged(), 1);
    assert!(hub.publish(Keyed("a")).is_ok());
    assert_eq!(drain(&mut sub), ["102"], "it goes on live");
}

/// A keyed subscriber waiting for its events is woken by them.
#[tokio::test]
async fn a_keyed_subscriber_is_woken_by_its_own_events() {
    let hub = keyed_hub(100, Reports::default());
    let mut sub = keyed_subscriber(&hub, Start::Live);
    let reader = tokio::spawn(async move { sub.next_batch().await.map(|b| blocks(&b)) });
    tokio::task::yield_now().await;
    assert!(hub.publish(Keyed("b")).is_ok());
    assert!(hub.publish(Keyed("a")).is_ok());
    let seen = tokio::time::timeout(Duration::from_secs(10), reader).await;
    let seen = seen.ok().and_then(Result::ok).flatten();
    assert_eq!(seen, Some(vec!["2".to_owned()]));
}

/// Publishers racing on two keys, keyed subscribers of one: each sees every event of
/// its key once, in order (none skipped by a jump past the others').
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_publishers_and_keyed_subscribers_see_their_events_once() {
    const PUBLISHERS: usize = 4;
    const EACH: usize = 5_000;
    let hub = keyed_hub(PUBLISHERS * EACH, Reports::default());
    let subscribers: Vec<_> = (0..20)
        .map(|_| {
            let mut sub = keyed_subscriber(&hub, Start::After("0".into()));
            tokio::spawn(async move {
                let mut seen: Vec<u64> = Vec::new();
                while seen.len() < PUBLISHERS * EACH / 2 {
                    let wait = Duration::from_secs(30);
                    let batch = tokio::time::timeout(wait, sub.next_batch()).await;
                    let batch = batch
                        .unwrap_or_else(|_| panic!("starved after {} events", seen.len()))
                        .unwrap_or_else(|| panic!("the hub went away"));
                    for block in blocks(&batch) {
                        seen.push(block.parse().unwrap_or_else(|_| panic!("{block}")));
                    }
                }
                seen
            })
        })
        .collect();
    let publishers: Vec<_> = (0..PUBLISHERS)
        .map(|_| {
            let hub = hub.clone();
            tokio::spawn(async move {
                for i in 0..EACH {
                    let key = if i % 2 == 0 { "a" } else { "b" };
                    assert!(hub.publish(Keyed(key)).is_ok());
                    if i % 16 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
            })
        })
        .collect();
    for publisher in publishers {
        assert!(publisher.await.is_ok());
    }
    let history = hub.subscribe(Start::After("0".into()));
    let all = drain(&mut { history });
    let own: Vec<u64> = {
        // The ids of `a`'s events, from a subscriber of everything.
        let mut every = hub.subscribe_filtered(Start::After("0".into()), |e: &Keyed| e.0 == "a");
        drain(&mut every)
            .iter()
            .map(|b| b.parse().unwrap_or(0))
            .collect()
    };
    assert_eq!(all.len(), PUBLISHERS * EACH);
    assert_eq!(own.len(), PUBLISHERS * EACH / 2);
    for subscriber in subscribers {
        let seen = subscriber.await.unwrap_or_else(|e| panic!("{e}"));
        assert!(
            seen == own,
            "a keyed subscriber saw {} events, not each of its own once",
            seen.len()
        );
    }
}

/// A keyed subscriber's filter is asked about its own keys' events only: the others'
/// are passed over unasked, however many there are.
#[test]
fn a_keyed_subscribers_filter_is_asked_about_its_own_events_only() {
    let hub = keyed_hub(1_000, Reports::default());
    let asked = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&asked);
    let mut sub = hub
        .subscribe_filtered(Start::After("0".into()), move |e: &Keyed| {
            counter.fetch_add(1, Ordering::Relaxed);
            e.0 == "a"
        })
        .wake_on(["a"]);
    for i in 0..300 {
        assert!(
            hub.publish(Keyed(if i % 100 == 0 { "a" } else { "b" }))
                .is_ok()
        );
    }
    assert_eq!(drain(&mut sub), ["1", "101", "201"]);
    assert_eq!(asked.load(Ordering::Relaxed), 3);
}

/// A shared log that lost entries while this instance was not reading: a keyed
/// subscriber hears of it (its own may be among them), as every subscriber does.
#[test]
fn a_keyed_subscriber_hears_of_a_shared_logs_lost_entries() {
    let hub = keyed_hub(100, Reports::default());
    hub.take_ids_from_shared_log();
    let id = |seq| EventId { ms: 1, seq };
    let mut sub = keyed_subscriber(&hub, Start::Live);
    assert!(drain(&mut sub).is_empty());
    assert_eq!(hub.append_with_id(id(1), Keyed("a")).ok(), Some(true));
    assert_eq!(drain(&mut sub), ["1"]);
    hub.raise_floor(id(3)); // 2 and 3 were trimmed before this instance read them
    assert_eq!(hub.append_with_id(id(4), Keyed("a")).ok(), Some(true));
    assert_eq!(drain(&mut sub), ["reset:lagged"]);
    assert_eq!(hub.append_with_id(id(5), Keyed("a")).ok(), Some(true));
    assert_eq!(drain(&mut sub), ["5"]);
}

/// A keyed event whose filter answer takes the slow path (out of the lock).
struct Tagged {
    key: &'static str,
    costly: bool,
}

impl HubEvent for Tagged {
    fn frame(&self, id: EventId) -> Result<Bytes, FrameError> {
        Ok(Frame::new().id(&id.to_string())?.data(self.key).finish())
    }

    fn wake_keys(&self, key: &mut dyn FnMut(&str)) {
        key(self.key);
    }
}

struct OfA;

impl Matching<Tagged> for OfA {
    fn quick(&self, event: &Tagged) -> Option<bool> {
        (!event.costly).then_some(event.key == "a")
    }
    fn test(&self, event: &Tagged) -> bool {
        event.key == "a"
    }
}

/// A keyed subscriber whose own event went through the slow path still goes past the
/// others' events that left the history afterwards, without a reset.
#[tokio::test]
async fn a_keyed_subscriber_goes_on_past_the_others_after_a_costly_answer() {
    let limits = HistoryLimits {
        max_events: 10,
        max_bytes: usize::MAX,
    };
    let reports = Reports::default();
    let hub: Hub<Tagged> = Hub::with_observer(limits, reports.clone());
    let mut sub = hub.subscribe_matching(Start::Live, OfA).wake_on(["a"]);
    let wait = Duration::from_secs(10);
    let publish = |key, costly| assert!(hub.publish(Tagged { key, costly }).is_ok());
    publish("a", true);
    let first = tokio::time::timeout(wait, sub.next_batch()).await;
    assert_eq!(
        first.ok().flatten().map(|b| blocks(&b)),
        Some(vec!["1".to_owned()])
    );
    for _ in 0..30 {
        publish("b", false);
    }
    publish("a", false);
    let next = tokio::time::timeout(wait, sub.next_batch()).await;
    assert_eq!(
        next.ok().flatten().map(|b| blocks(&b)),
        Some(vec!["32".to_owned()])
    );
    assert_eq!(reports.lagged(), 0);
}

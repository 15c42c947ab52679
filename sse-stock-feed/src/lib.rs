//! # sse-stock-feed: one market, many viewers
//!
//! One simulator task per process moves every symbol's price by a random walk each tick
//! and publishes one `price` event per symbol into a shared history. Every client reads
//! the same events, serialized once, so two viewers always see the same prices. A
//! stream starts with `snapshot` (the current prices) and goes on with `price` events,
//! each with an id: a reconnect replays the ticks it missed, or, when its id is too old,
//! gets `reset` and a fresh snapshot.
//!
//! With `--redis` (the `sse-redis` crate, wired in `main.rs`), the history is a Redis
//! stream that every instance reads, and one instance at a time (the [`Producer`])
//! runs the simulator; when it dies, another takes over within seconds and goes on
//! from the last prices.
//!
//! The tutorial ran a separate random walk inside every connection: each viewer saw its
//! own made-up market, and a reconnect started a new one.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{SecondsFormat, Utc};
use rand::RngExt;
use salvo::affix_state;
use salvo::prelude::*;
use salvo_oapi::{ToSchema, endpoint};
use serde::{Deserialize, Serialize};
use sse_shared::error::ApiError;
use sse_shared::event_stream;
use sse_shared::frame::{Frame, FrameError};
use sse_shared::hub::{EventId, HubEvent, PublishError, Start};
use sse_shared::page;
use sse_shared::producer::{Held, Producer};
use sse_shared::publish::Publisher;
use sse_shared::resume::last_event_id;
use sse_shared::snapshot::{find_newest, subscribe_with};
use sse_shared::stream_route::{StreamRoute, StreamSettings};
use tokio::time::{MissedTickBehavior, interval};
use tokio_util::sync::CancellationToken;

const FILES: [(&str, &str); 2] = [
    ("stocks.css", include_str!("../static/stocks.css")),
    ("stocks.js", include_str!("../static/stocks.js")),
];

/// One symbol's price after a tick: the `data` of `event: price`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Quote {
    #[salvo(schema(value_type = String))]
    pub symbol: Arc<str>,
    /// In currency units, rounded to cents.
    pub price: f64,
    /// Since the previous tick, rounded to cents.
    pub change: f64,
    /// When the tick was (RFC 3339, milliseconds, UTC).
    #[salvo(schema(value_type = String))]
    pub at: Arc<str>,
}

/// The `data` of `event: snapshot`: the latest price of each symbol asked for.
#[derive(Serialize, ToSchema)]
pub struct Snapshot {
    pub prices: Vec<Quote>,
}

/// What the history carries: one price per symbol per tick.
#[derive(Serialize, Deserialize)]
pub struct PriceEvent(pub Quote);

impl HubEvent for PriceEvent {
    fn frame(&self, id: EventId) -> Result<Bytes, FrameError> {
        Ok(Frame::new()
            .id(&id.to_string())?
            .event("price")?
            .json(&self.0)?
            .finish())
    }
}

/// The simulator's state: each symbol's price in whole cents (so rounding never
/// drifts). Owned by the task that runs the simulator.
pub struct Walks(HashMap<Arc<str>, i64>);

/// The one market: its symbols and the log of its ticks.
pub struct Market {
    symbols: Vec<Arc<str>>,
    log: Publisher<PriceEvent>,
}

impl Market {
    /// A market over `symbols` (already validated), publishing into `log`.
    pub fn new(symbols: Vec<String>, log: Publisher<PriceEvent>) -> Arc<Self> {
        Arc::new(Self {
            symbols: symbols.into_iter().map(Arc::from).collect(),
            log,
        })
    }

    /// The market's log, for tests.
    pub fn log(&self) -> &Publisher<PriceEvent> {
        &self.log
    }

    /// Where the simulator goes on from: the last published prices (another instance's,
    /// after a takeover), or the opening prices.
    pub fn walks(&self) -> Walks {
        let hub = self.log.hub();
        let cents = self
            .symbols
            .iter()
            .map(|symbol| {
                let last = find_newest(hub, |e| (e.0.symbol == *symbol).then_some(e.0.price));
                let cents = last.map_or_else(
                    || opening_cents(symbol),
                    |price| (price * 100.0).round() as i64,
                );
                (Arc::clone(symbol), cents)
            })
            .collect();
        Walks(cents)
    }

    /// Moves every price one step and publishes the tick as one batch (only while
    /// this instance is the `producer`).
    pub async fn tick(
        &self,
        walks: &mut Walks,
        producer: &mut Producer<PriceEvent>,
    ) -> Result<(), PublishError> {
        let at: Arc<str> = Utc::now()
            .to_rfc3339_opts(SecondsFormat::Millis, true)
            .into();
        let quotes: Vec<PriceEvent> = {
            let mut rng = rand::rng();
            self.symbols
                .iter()
                .map(|symbol| {
                    let cents = walks
                        .0
                        .entry(Arc::clone(symbol))
                        .or_insert_with(|| opening_cents(symbol));
                    let next = step(*cents, &mut rng);
                    let change = next - *cents;
                    *cents = next;
                    PriceEvent(Quote {
                        symbol: Arc::clone(symbol),
                        price: next as f64 / 100.0,
                        change: change as f64 / 100.0,
                        at: Arc::clone(&at),
                    })
                })
                .collect()
        };
        producer.publish(quotes).await.map(|_| ())
    }

    /// Ticks every `every` until `shutdown`, while this instance is the `producer`
    /// (always, without Redis). A new producer goes on from the last published prices;
    /// with Redis, a tick is appended only while the producer's lease is its own.
    pub async fn run(
        self: Arc<Self>,
        mut producer: Producer<PriceEvent>,
        every: Duration,
        shutdown: CancellationToken,
    ) {
        let mut ticks = interval(every);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
        let mut walks = self.walks();
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = ticks.tick() => {}
            }
            match producer.holds().await {
                Held::No => continue,
                Held::Taken => walks = self.walks(),
                Held::Still => {}
            }
            if let Err(e) = self.tick(&mut walks, &mut producer).await {
                tracing::warn!("cannot publish a tick: {e}");
            }
        }
        producer.release().await;
    }

    /// The frames for a client watching `wanted` from `start`: a snapshot first when it
    /// starts fresh or could not resume, then the price events.
    fn watch(
        &self,
        wanted: BTreeSet<Arc<str>>,
        start: Start,
    ) -> Result<impl futures_util::Stream<Item = Bytes> + Send + 'static, ApiError> {
        let fresh = matches!(start, Start::Live);
        let filter = {
            let wanted = wanted.clone();
            move |event: &PriceEvent| wanted.contains(&event.0.symbol)
        };
        // The snapshot is read from the history under the same lock that fixes the
        // subscription's cursor, so no tick falls between "the prices now" and "after".
        let (subscription, mut latest) =
            subscribe_with(self.log.hub(), start, filter, |newest_first| {
                let mut latest: HashMap<Arc<str>, Quote> = HashMap::new();
                for event in newest_first {
                    if latest.len() == wanted.len() {
                        break;
                    }
                    if wanted.contains(&event.0.symbol) && !latest.contains_key(&event.0.symbol) {
                        latest.insert(Arc::clone(&event.0.symbol), event.0.clone());
                    }
                }
                latest
            });
        if !(fresh || subscription.starts_with_reset()) {
            return Ok(subscription.into_stream());
        }
        let quotes: Vec<Quote> = self
            .symbols
            .iter()
            .filter_map(|s| latest.remove(s))
            .collect();
        let snapshot = Frame::new()
            .event("snapshot")
            .and_then(|f| f.json(&Snapshot { prices: quotes }))
            .map_err(|e| ApiError::internal(e.to_string()))?
            .finish();
        Ok(subscription.send_first(snapshot).into_stream())
    }

    /// `?symbols=A,B`: the set asked for (all when absent), or `400` naming the valid ones.
    fn wanted(&self, query: Option<&str>) -> Result<BTreeSet<Arc<str>>, ApiError> {
        let Some(query) = query else {
            return Ok(self.symbols.iter().cloned().collect());
        };
        let valid = self.symbols.join(", ");
        let mut wanted = BTreeSet::new();
        for asked in query.split(',').map(str::trim) {
            let known = self
                .symbols
                .iter()
                .find(|s| ***s == *asked)
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "unknown-symbol",
                        format!("Unknown symbol {asked:?}; valid symbols: {valid}."),
                    )
                })?;
            wanted.insert(Arc::clone(known));
        }
        Ok(wanted)
    }
}

/// One move of a price: up to 0.5% either way, at least a cent; never below one cent.
fn step(cents: i64, rng: &mut impl rand::Rng) -> i64 {
    let max_step = (cents / 200).max(1);
    (cents + rng.random_range(-max_step..=max_step)).max(1)
}

/// A stable opening price from the symbol's name (the tutorial's three as it had them).
fn opening_cents(symbol: &str) -> i64 {
    match symbol {
        "AAPL" => 15_000,
        "GOOGL" => 14_000,
        "MSFT" => 38_000,
        other => {
            let hash = other
                .bytes()
                .fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
            5_000 + (hash % 45_000) as i64
        }
    }
}

/// The `--symbols` option: 1 to 100 unique symbols.
#[derive(Debug, Clone)]
pub struct SymbolList(pub Vec<String>);

/// Parses `--symbols`: symbols of 1 to 12 letters, digits, `.` or `-`, comma-separated.
pub fn parse_symbols(list: &str) -> Result<SymbolList, String> {
    let mut symbols: Vec<String> = Vec::new();
    for symbol in list.split(',').map(str::trim) {
        let ok = (1..=12).contains(&symbol.len())
            && symbol
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
        if !ok {
            return Err(format!(
                "{symbol:?} is not a symbol (1 to 12 letters, digits, '.', '-')"
            ));
        }
        if !symbols.iter().any(|s| s == symbol) {
            symbols.push(symbol.to_owned());
        }
    }
    if symbols.len() > 100 {
        return Err("at most 100 symbols".into());
    }
    Ok(SymbolList(symbols))
}

/// The routes: `GET /symbols`, `GET /prices` and the page. The market is in every
/// handler's `Depot` (salvo's `affix_state`). (`#[endpoint]` describes a route for
/// OpenAPI; `main.rs` serves the description, see `contract.rs`.)
pub fn router(market: &Arc<Market>) -> Router {
    Router::new()
        .hoop(affix_state::inject(Arc::clone(market)))
        .push(Router::with_path("symbols").get(list_symbols))
        .push(
            Router::with_path("prices")
                .hoop(StreamRoute)
                .get(watch_prices),
        )
        .push(page::routes(
            "SSE stock feed",
            include_str!("../static/index.html"),
            &FILES,
        ))
}

/// `GET /symbols`: the market's symbols, as a JSON list.
#[endpoint(responses((status_code = 200, description = "The symbols, in order.", body = Vec<String>)))]
async fn list_symbols(depot: &mut Depot, res: &mut Response) -> Result<(), ApiError> {
    res.render(Json(&market(depot)?.symbols));
    Ok(())
}

/// `GET /prices?symbols=..`: a snapshot of the symbols' prices, then each `price` as
/// it moves; resumed after `Last-Event-ID` with no tick missed.
#[endpoint(
    status_codes(200, 400, 429, 503),
    parameters(
        ("symbols" = Option<String>, Query, description = "Comma-separated symbols (all when absent); an unknown one is a 400 naming the valid ones."),
        ("last-event-id" = Option<String>, Header, description = "The last id seen: replay the ticks after it."),
        ("lastEventId" = Option<String>, Query, description = "The same, for a page that reconnects by hand (the header wins).")
    )
)]
async fn watch_prices(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<(), ApiError> {
    let market = market(depot)?;
    let wanted = market.wanted(req.query::<String>("symbols").as_deref())?;
    let start = Start::resume_or(last_event_id(req), Start::Live);
    let frames = market.watch(wanted, start)?;
    event_stream::respond(res, &StreamSettings::from_depot(depot), frames);
    Ok(())
}

/// The market [`router`] puts in the `Depot`.
fn market(depot: &Depot) -> Result<Arc<Market>, ApiError> {
    let market = depot.get_typed::<Arc<Market>>().cloned();
    market.map_err(|_| ApiError::internal("The market is not set up."))
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    #[test]
    fn a_price_walks_down_to_one_cent_and_no_further() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut cents = 5;
        let mut floor_hits = 0;
        for _ in 0..10_000 {
            cents = super::step(cents, &mut rng);
            assert!(cents >= 1, "{cents}");
            floor_hits += usize::from(cents == 1);
        }
        assert!(floor_hits > 0, "the walk never reached the floor");
    }
}

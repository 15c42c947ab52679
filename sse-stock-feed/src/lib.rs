//! # sse-stock-feed: one market, many viewers
//!
//! One simulator task per process moves every symbol's price by a random walk each tick
//! and publishes one `price` event per symbol into a shared history. Every client reads
//! the same events, serialized once, so two viewers always see the same prices. A
//! stream starts with `snapshot` (the current prices) and goes on with `price` events,
//! each with an id: a reconnect replays the ticks it missed, or, when its id is too old,
//! gets `reset` and a fresh snapshot.
//!
//! The tutorial ran a separate random walk inside every connection: each viewer saw its
//! own made-up market, and a reconnect started a new one.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{SecondsFormat, Utc};
use parking_lot::Mutex;
use rand::RngExt;
use salvo::prelude::*;
use serde::Serialize;
use sse_shared::page::{self, StaticFile};
use sse_shared::resume::last_event_id;
use sse_shared::{
    ApiError, EventId, Frame, FrameError, HistoryLimits, Hub, HubEvent, Start, Streams,
};
use tokio::time::{MissedTickBehavior, interval};
use tokio_util::sync::CancellationToken;

const FILES: [StaticFile; 2] = [
    StaticFile::style("stocks.css", include_str!("../static/stocks.css")),
    StaticFile::script("stocks.js", include_str!("../static/stocks.js")),
];

/// One symbol's price after a tick.
#[derive(Debug, Clone, Serialize)]
pub struct Quote {
    pub symbol: Arc<str>,
    /// In currency units, rounded to cents.
    pub price: f64,
    /// Since the previous tick, rounded to cents.
    pub change: f64,
    pub at: Arc<str>,
}

/// The `snapshot` event's data.
#[derive(Serialize)]
struct Snapshot<'a> {
    prices: &'a [Quote],
}

/// What the history carries: one price per symbol per tick.
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

/// Prices are kept in whole cents, so rounding never drifts.
struct Walk {
    cents: i64,
    last_change: i64,
}

/// The one market: its symbols, their current prices, and the history of ticks.
pub struct Market {
    symbols: Vec<Arc<str>>,
    /// Current prices. Ticks are published while this lock is held, so a snapshot
    /// and a subscription taken under it agree exactly.
    prices: Mutex<HashMap<Arc<str>, Walk>>,
    hub: Hub<PriceEvent>,
}

impl Market {
    /// A market over `symbols` (already validated: non-empty, unique).
    pub fn new(symbols: Vec<String>, history: HistoryLimits, streams: &Streams) -> Arc<Self> {
        let symbols: Vec<Arc<str>> = symbols.into_iter().map(Arc::from).collect();
        let prices = symbols
            .iter()
            .map(|s| {
                let walk = Walk {
                    cents: opening_cents(s),
                    last_change: 0,
                };
                (Arc::clone(s), walk)
            })
            .collect();
        Arc::new(Self {
            symbols,
            prices: Mutex::new(prices),
            hub: Hub::new(history, streams.metrics().clone()),
        })
    }

    /// The market's history, for tests.
    pub fn hub(&self) -> &Hub<PriceEvent> {
        &self.hub
    }

    /// Moves every price one step and publishes the tick as one batch.
    pub fn tick(&self) {
        let at: Arc<str> = Utc::now()
            .to_rfc3339_opts(SecondsFormat::Millis, true)
            .into();
        let mut rng = rand::rng();
        let mut prices = self.prices.lock();
        let mut quotes = Vec::with_capacity(self.symbols.len());
        for symbol in &self.symbols {
            let Some(walk) = prices.get_mut(symbol) else {
                continue;
            };
            // A step of up to 0.5% either way, at least a cent; never below one cent.
            let max_step = (walk.cents / 200).max(1);
            let next = (walk.cents + rng.random_range(-max_step..=max_step)).max(1);
            walk.last_change = next - walk.cents;
            walk.cents = next;
            quotes.push(PriceEvent(quote(symbol, walk, &at)));
        }
        if let Err(e) = self.hub.publish_batch(quotes) {
            tracing::error!("cannot publish a tick: {e}");
        }
    }

    /// Ticks every `every` until `shutdown`.
    pub async fn run(self: Arc<Self>, every: Duration, shutdown: CancellationToken) {
        let mut ticks = interval(every);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = ticks.tick() => self.tick(),
            }
        }
    }

    /// The subscription for a client watching `wanted`, from `start`, led by a snapshot
    /// when it starts fresh or could not resume.
    fn watch(
        &self,
        wanted: BTreeSet<Arc<str>>,
        start: Start,
    ) -> Result<impl futures_util::Stream<Item = Bytes> + Send + 'static, ApiError> {
        let fresh = matches!(start, Start::Live);
        // Under the prices lock, no tick can land between the snapshot and the cursor.
        let prices = self.prices.lock();
        let filter = {
            let wanted = wanted.clone();
            move |event: &PriceEvent| wanted.contains(&event.0.symbol)
        };
        let subscription = self.hub.subscribe_filtered(start, filter);
        if !(fresh || subscription.starts_with_reset()) {
            return Ok(subscription.into_stream());
        }
        let at: Arc<str> = Utc::now()
            .to_rfc3339_opts(SecondsFormat::Millis, true)
            .into();
        let quotes: Vec<Quote> = self
            .symbols
            .iter()
            .filter(|s| wanted.contains(*s))
            .filter_map(|s| prices.get(s).map(|walk| quote(s, walk, &at)))
            .collect();
        let snapshot = Frame::new()
            .event("snapshot")
            .and_then(|f| f.json(&Snapshot { prices: &quotes }))
            .map_err(|e| {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
            })?
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

fn quote(symbol: &Arc<str>, walk: &Walk, at: &Arc<str>) -> Quote {
    Quote {
        symbol: Arc::clone(symbol),
        price: walk.cents as f64 / 100.0,
        change: walk.last_change as f64 / 100.0,
        at: Arc::clone(at),
    }
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

/// The routes: `GET /symbols`, `GET /prices`, and the page.
pub fn router(streams: &Streams, market: &Arc<Market>) -> Router {
    Router::new()
        .push(Router::with_path("symbols").get(Symbols {
            market: Arc::clone(market),
        }))
        .push(Router::with_path("prices").get(Prices {
            streams: streams.clone(),
            market: Arc::clone(market),
        }))
        .push(page::routes(
            "SSE stock feed",
            include_str!("../static/index.html"),
            &FILES,
        ))
}

/// `GET /symbols`: the market's symbols, as a JSON list.
struct Symbols {
    market: Arc<Market>,
}

#[handler]
impl Symbols {
    async fn handle(&self, res: &mut Response) {
        res.render(Json(&self.market.symbols));
    }
}

/// `GET /prices?symbols=..`: snapshot, then price events.
struct Prices {
    streams: Streams,
    market: Arc<Market>,
}

#[handler]
impl Prices {
    async fn handle(&self, req: &mut Request, res: &mut Response) -> Result<(), ApiError> {
        let wanted = self
            .market
            .wanted(req.query::<String>("symbols").as_deref())?;
        let permit = self.streams.admit(req)?;
        let frames = self
            .market
            .watch(wanted, Start::resume_or(last_event_id(req), Start::Live))?;
        self.streams.respond(res, permit, frames);
        Ok(())
    }
}

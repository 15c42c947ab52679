//! [`Streams`]: the hoop that makes a server's event streams production grade.
//! Around every route marked [`StreamRoute`] (a `GET` that opens a stream) it takes a
//! stream slot *before* the handler runs, so a refusal is a plain `503`/`429` JSON
//! response (a server-wide cap, one per client [`address`](crate::address), a rate of
//! new streams); once the handler has written its stream, it wraps the body
//! (`held_stream.rs`): the slot is held until the body is dropped (the client went away),
//! the stream ends on shutdown with a last `retry:` or at its lifetime, a client that
//! stopped reading is noticed, and frames are counted in the [`metrics`](crate::metrics).
//! This is why salvo's `max_concurrency` hoop is not enough: it frees its slot when the
//! handler returns, which for a stream is right away.
//!
//! ```
//! use salvo::prelude::*;
//! use sse_shared::event_stream;
//! use sse_shared::stream_route::{StreamRoute, StreamSettings};
//! use sse_shared::{ServerArgs, Streams};
//!
//! #[handler]
//! async fn events(res: &mut Response) {
//!     let frames = futures_util::stream::pending();
//!     event_stream::respond(res, &StreamSettings::default(), frames);
//! }
//!
//! #[derive(clap::Parser)]
//! struct Cli {
//!     #[command(flatten)]
//!     server: ServerArgs,
//! }
//!
//! let cli = <Cli as clap::Parser>::parse_from(["app", "--max-streams", "1000"]);
//! let streams = Streams::from_args(&cli.server);
//! let app = Router::with_path("events").hoop(StreamRoute).get(events);
//! let app = streams.guard(app); // what `routes::service` does
//! # let _ = app;
//! ```
//!
//! On SIGTERM call [`Streams::shut_down`] *before* `stop_graceful`: a graceful stop
//! waits for every response to finish, and an event stream never does.

use std::any::TypeId;
use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota};
use parking_lot::Mutex;
use prometheus_client::metrics::{counter::Counter, gauge::Gauge};
use rand::RngExt;
use salvo::http::body::ResBody;
use salvo::http::{Method, StatusCode};
use salvo::prelude::*;
use tokio_util::sync::CancellationToken;

use crate::address::{StreamClient, client_ip, limit_key};
use crate::config::ServerArgs;
use crate::error::ApiError;
use crate::held_stream::HeldStream;
use crate::metrics::Metrics;
use crate::shutdown::Shutdown;
use crate::stream_route::{StreamRoute, StreamSettings};

/// Options, limits, metrics and the shutdown signal. Cheap to clone.
#[derive(Clone)]
pub struct Streams {
    args: Arc<ServerArgs>,
    /// The open streams, in all and per client address.
    slots: Arc<Mutex<Slots>>,
    /// `--max-new-streams-per-sec`, when set.
    admission: Option<Arc<DefaultDirectRateLimiter>>,
    metrics: Metrics,
    shutdown: Shutdown,
}

impl Streams {
    /// Streams as the options say, with fresh metrics.
    pub fn from_args(args: &ServerArgs) -> Self {
        let rate = args.max_new_streams_per_sec;
        Self {
            args: Arc::new(args.clone()),
            slots: Arc::default(),
            // `rate` a second, and as many at once (governor's GCRA).
            admission: NonZeroU32::new(rate)
                .map(|rate| Arc::new(governor::RateLimiter::direct(Quota::per_second(rate)))),
            metrics: Metrics::new(),
            shutdown: Shutdown::default(),
        }
    }

    /// The server's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The options streams follow.
    pub fn args(&self) -> &ServerArgs {
        &self.args
    }

    /// What the options say about how a stream talks to its client, for handlers.
    pub fn settings(&self) -> StreamSettings {
        self.args.stream_settings()
    }

    /// Ends every open stream (their bodies finish cleanly). Idempotent.
    pub fn shut_down(&self) {
        self.shutdown.start();
    }

    /// The shutdown signal streams watch.
    pub fn shutdown(&self) -> &Shutdown {
        &self.shutdown
    }

    /// A token cancelled when the server shuts down, for producer tasks (a child:
    /// cancelling it stops only its holder).
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.token.child_token()
    }

    /// Takes a stream slot for this request's client, or answers why not (with
    /// `Retry-After`): `503` past `--max-new-streams-per-sec` or `--max-streams`, `429`
    /// past `--max-streams-per-ip`. During a shutdown a stream is still admitted: it
    /// gets its `retry:` and ends, where a 5xx would make `EventSource` give up.
    pub fn admit(&self, req: &Request) -> Result<StreamSlot, ApiError> {
        let now = DefaultClock::default().now();
        let refused = self.admission.as_ref().map(|a| a.check());
        if let Some(Err(until)) = refused {
            let wait = until.wait_time_from(now);
            self.metrics.reject("admission-rate");
            // Jittered, so the streams refused together do not all return together.
            let jitter = Duration::from_millis(rand::rng().random_range(0..=2000));
            let message = "More new streams than this server admits a second; try again shortly.";
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "too-many-new-streams",
                message,
            )
            .retry_after(wait + jitter));
        }
        self.take_slot(client_ip(req, &self.args.trusted_proxies))
    }

    /// Takes a slot for a stream from `ip` (counted by [`limit_key`]; `None`, a peer
    /// without an IP: only the server-wide cap applies), or refuses with `503
    /// server-full` / `429 too-many-streams` and `Retry-After: --retry-ms`.
    fn take_slot(&self, ip: Option<IpAddr>) -> Result<StreamSlot, ApiError> {
        let (max_total, max_per_ip) = (self.args.max_streams, self.args.max_streams_per_ip);
        let ip = ip.map(limit_key);
        let refusal = {
            let mut slots = self.slots.lock();
            let held = ip.map_or(0, |ip| slots.per_ip.get(&ip).copied().unwrap_or(0));
            if slots.total >= max_total {
                let message = format!(
                    "The server has reached its limit of {max_total} open streams; try again later."
                );
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "server-full",
                    "server-full",
                    message,
                )
            } else if held >= max_per_ip {
                let message = format!(
                    "This address has reached its limit of {max_per_ip} open streams; close one first."
                );
                (
                    StatusCode::TOO_MANY_REQUESTS,
                    "too-many-streams",
                    "per-ip-limit",
                    message,
                )
            } else {
                // Counted only when admitted: a refused address leaves no entry behind.
                slots.total += 1;
                if let Some(ip) = ip {
                    *slots.per_ip.entry(ip).or_default() += 1;
                }
                drop(slots);
                return Ok(StreamSlot::new(Arc::clone(&self.slots), ip, &self.metrics));
            }
        };
        let (status, code, label, message) = refusal;
        self.metrics.reject(label);
        let retry = self.args.retry;
        Err(ApiError::new(status, code, message).retry_after(retry))
    }
}

impl Streams {
    /// `router`, with this hoop on every router in it marked [`StreamRoute`].
    pub fn guard(&self, mut router: Router) -> Router {
        let marked = router
            .hoops()
            .iter()
            .any(|hoop| Handler::type_id(hoop.as_ref()) == TypeId::of::<StreamRoute>());
        if marked {
            router.hoops_mut().push(Arc::new(self.clone()));
        }
        let routers = std::mem::take(router.routers_mut());
        *router.routers_mut() = routers.into_iter().map(|r| self.guard(r)).collect();
        router
    }
}

#[async_trait]
impl Handler for Streams {
    async fn handle(
        &self,
        req: &mut Request,
        depot: &mut Depot,
        res: &mut Response,
        ctrl: &mut FlowCtrl,
    ) {
        if req.method() != Method::GET {
            return;
        }
        let slot = match self.admit(req) {
            Ok(slot) => slot,
            Err(refusal) => {
                res.render(refusal);
                ctrl.skip_rest();
                return;
            }
        };
        depot.insert_typed(StreamClient(slot.client()));
        ctrl.call_next(req, depot, res).await;
        let streaming = res
            .headers()
            .get("content-type")
            .is_some_and(|t| t.as_bytes().starts_with(b"text/event-stream"));
        // Not a stream (a refusal): the slot is dropped, and freed, here.
        if streaming {
            let body = res.take_body();
            let held = HeldStream::new(body, slot, &self.args, &self.shutdown);
            res.body(ResBody::Boxed(Box::pin(held)));
        }
    }
}

/// Open streams, in all and per client address.
#[derive(Default)]
struct Slots {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// The drop guard of one open stream: holds its slot and the counters a stream
/// touches (not all of [`Metrics`]: every stream carries this), and frees the slot and
/// updates the gauge when the stream ends for any reason.
pub struct StreamSlot {
    slots: Arc<Mutex<Slots>>,
    /// The address this stream is counted under.
    ip: Option<IpAddr>,
    open_streams: Gauge,
    /// Body frames written to this stream's client.
    pub frames_written: Counter,
    /// Keep-alive comments written.
    pub keep_alives: Counter,
    /// Streams closed because their client stopped reading.
    pub slow_closed: Counter,
}

impl StreamSlot {
    /// The address this stream is counted under (IPv6 by its /64), if its client has
    /// one: the key for any other per-client bound.
    pub fn client(&self) -> Option<IpAddr> {
        self.ip
    }

    fn new(slots: Arc<Mutex<Slots>>, ip: Option<IpAddr>, metrics: &Metrics) -> Self {
        metrics.open_streams.inc();
        Self {
            slots,
            ip,
            open_streams: metrics.open_streams.clone(),
            frames_written: metrics.frames_written.clone(),
            keep_alives: metrics.keep_alives.clone(),
            slow_closed: metrics.slow_closed.clone(),
        }
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut slots = self.slots.lock();
        slots.total -= 1;
        if let Some(ip) = self.ip
            && let Some(count) = slots.per_ip.get_mut(&ip)
        {
            *count -= 1;
            if *count == 0 {
                // Keep the map as small as the set of addresses with open streams.
                slots.per_ip.remove(&ip);
            }
        }
        drop(slots);
        self.open_streams.dec();
        tracing::debug!("stream closed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        server: ServerArgs,
    }

    /// Streams under these options (e.g. `["--max-streams", "3"]`).
    fn streams(options: &[&str]) -> Streams {
        let args = ["t"].iter().chain(options);
        Streams::from_args(&<Cli as clap::Parser>::parse_from(args).server)
    }

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

    /// The error code a refusal answers with.
    fn code(taken: Result<StreamSlot, ApiError>) -> Option<&'static str> {
        taken.err().map(|e| e.code)
    }

    #[test]
    fn per_ip_then_global_limits_apply_and_slots_come_back() {
        let streams = streams(&["--max-streams", "3", "--max-streams-per-ip", "2"]);
        let a1 = streams.take_slot(Some(A));
        let a2 = streams.take_slot(Some(A));
        assert!(a1.is_ok() && a2.is_ok());
        assert_eq!(code(streams.take_slot(Some(A))), Some("too-many-streams"));
        let b1 = streams.take_slot(Some(B));
        assert!(b1.is_ok());
        assert_eq!(code(streams.take_slot(Some(B))), Some("server-full"));
        drop(a1);
        assert!(
            streams.take_slot(Some(B)).is_ok(),
            "the freed slot is reusable"
        );
        drop((a2, b1));
        assert_eq!(streams.slots.lock().total, 0);
        assert!(streams.slots.lock().per_ip.is_empty());
    }

    #[test]
    fn a_refused_address_leaves_no_entry() {
        let streams = streams(&["--max-streams", "1"]);
        let _held = streams.take_slot(Some(A));
        for last in 0..=255 {
            let ip = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 1, last));
            assert_eq!(code(streams.take_slot(Some(ip))), Some("server-full"));
        }
        assert_eq!(streams.slots.lock().per_ip.len(), 1);
    }

    #[test]
    fn ipv6_clients_are_counted_per_64_and_mapped_ipv4_as_ipv4() {
        let streams = streams(&["--max-streams-per-ip", "2"]);
        let host = |last: u16| {
            Some(IpAddr::V6(std::net::Ipv6Addr::new(
                0x2001, 0xdb8, 0, 7, 0, 0, 0, last,
            )))
        };
        let (first, second) = (streams.take_slot(host(1)), streams.take_slot(host(2)));
        assert!(first.is_ok() && second.is_ok());
        // A third address in the same /64 is the same client.
        assert_eq!(code(streams.take_slot(host(3))), Some("too-many-streams"));
        let other = IpAddr::V6(std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 8, 0, 0, 0, 1));
        assert!(streams.take_slot(Some(other)).is_ok());

        let mapped = IpAddr::V6(std::net::Ipv4Addr::new(10, 0, 0, 1).to_ipv6_mapped());
        let (a, b) = (streams.take_slot(Some(A)), streams.take_slot(Some(mapped)));
        assert!(a.is_ok() && b.is_ok());
        assert_eq!(code(streams.take_slot(Some(A))), Some("too-many-streams"));
    }

    #[tokio::test]
    async fn the_token_for_tasks_is_cancelled_by_the_shutdown_and_only_stops_its_holder() {
        let streams = streams(&[]);
        let token = streams.shutdown_token();
        // Cancelling a task's token does not start the shutdown.
        streams.shutdown_token().cancel();
        assert!(
            !streams
                .shutdown()
                .started
                .load(std::sync::atomic::Ordering::Acquire)
        );
        assert!(!token.is_cancelled());

        streams.shut_down();
        assert!(
            streams
                .shutdown()
                .started
                .load(std::sync::atomic::Ordering::Acquire)
        );
        let cancelled = tokio::time::timeout(Duration::from_secs(10), token.cancelled()).await;
        assert!(cancelled.is_ok());
    }
}

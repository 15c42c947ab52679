#![deny(missing_docs)]
//! Server-Sent Events for Salvo: a core that writes and fans out streams, and the
//! production stack that wraps it, one concern per module. Each module opens with an
//! example; each can be copied into another project with the modules it imports.
//!
//! # Layout
//!
//! **The core** imports nothing but itself (no options, limits, metrics, contract,
//! HTTP error mapping, origin or address code): settings reach it as plain structs.
//!
//! - [`frame`]: SSE frames, serialized once to `Bytes`, framing-safe for any input;
//!   [`event_id`]: ids (`MS-N`), parsed strictly from what clients send back.
//! - [`stream_route`]: the [`StreamRoute`](stream_route::StreamRoute) mark on routes that
//!   open streams, and their [`StreamSettings`](stream_route::StreamSettings);
//!   [`event_stream`]: the response that writes shared frames (`retry:`, keep-alive).
//! - [`hub`]: one bounded history that is every subscriber's queue (gapless replay,
//!   the slow-client policy, a [`HubObserver`]), its subscribers' reads in
//!   `subscription.rs` (private: its types are the hub's, `hub::Subscription`), and
//!   which publishes wake which subscribers in `wake.rs` (private);
//!   [`matching`]: filters that cost more than a comparison, kept off the lock and the
//!   workers; [`resume`]: reading `Last-Event-ID`, and the `reset` event's data;
//!   [`snapshot`]: what a stream that starts with a snapshot needs.
//! - [`publish`]: the [`Publisher`] seam (into the hub, or through a log several
//!   instances share: the `sse-redis` crate); [`shared_log`]: what a hub fed by such a
//!   log needs; [`producer`]: one job across instances; [`publish_error`]: why a
//!   publish failed.
//!
//! **What handlers use** besides the core: [`error`] (the one JSON error type, and how
//! a failed publish is answered), [`body`] (request bodies with limits), [`page`]
//! (the page layout and static files), [`names`] (display names), [`secret`] (tokens,
//! bearer auth), `issuers` (feature `issuers`: several token issuers, each with its
//! keys: secrets, PEM public keys, JWKS), [`rate`] (rate limits), [`address`] (the client's address behind
//! proxies) and [`origin`] (is this request from our own pages?).
//!
//! **The production stack**, hoops a `main.rs` stacks around an example's router:
//! [`streams`] ([`Streams`]: admission per server and per client address around every
//! route marked `StreamRoute`, then the end on [`shutdown`], the lifetime and the
//! write-stall watch on the body the handler wrote); [`routes`] (the panic net,
//! security headers, the same-origin rule, CORS, the body deadline ([`body_deadline`]), `/healthz`,
//! `/metrics`, JSON errors); [`post_limit`] (what each client address may post);
//! [`metrics`] and [`hub_metrics`] (Prometheus).
//!
//! **Options and serving**: [`config`] ([`ServerArgs`]), [`history_args`]
//! ([`HistoryArgs`]), [`connection`] (per-connection bounds), [`logging`], and
//! [`server`] (serving on `salvo::Server` with a clean shutdown). [`openapi`]: the
//! `GET /openapi.json` contract each example's `contract.rs` builds.
//!
//! `testing` (feature `testing`): tools for tests over real TCP, real processes and a
//! real Chromium.

pub mod address;
pub mod body;
pub mod body_deadline;
pub mod config;
pub mod connection;
pub mod error;
pub mod event_id;
pub mod event_stream;
pub mod frame;
mod held_stream;
pub mod history_args;
pub mod hub;
pub mod hub_metrics;
#[cfg(feature = "issuers")]
pub mod issuers;
pub mod logging;
pub mod matching;
pub mod metrics;
pub mod names;
pub mod openapi;
pub mod origin;
pub mod page;
pub mod post_limit;
pub mod producer;
pub mod publish;
pub mod publish_error;
pub mod rate;
pub mod resume;
pub mod routes;
pub mod secret;
pub mod server;
pub mod shared_log;
pub mod shutdown;
pub mod snapshot;
pub mod stream_route;
pub mod streams;
mod subscription;
#[cfg(feature = "testing")]
pub mod testing;
mod wake;

pub use config::ServerArgs;
pub use error::ApiError;
pub use frame::{Frame, FrameError};
pub use history_args::HistoryArgs;
pub use hub::{EventId, HistoryLimits, Hub, HubEvent, HubObserver, PublishError, Start};
pub use matching::Matching;
pub use producer::{Held, Producer};
pub use publish::Publisher;
pub use streams::Streams;

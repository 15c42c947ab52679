#![deny(missing_docs)]
//! The SSE core the examples share, one concern per module. Each module can be copied
//! into another project with the modules its docs name (and the crates it uses).
//!
//! - [`frame`]: SSE frames, serialized once to `Bytes`, framing-safe for any input.
//! - [`event_stream`] (core): the response for shared frames: `retry:`, keep-alive;
//!   [`stream_route`] (core): the [`StreamRoute`](stream_route::StreamRoute) mark on
//!   routes that open streams and their [`StreamSettings`](stream_route::StreamSettings).
//! - [`streams`] (a hoop): [`Streams`], around every marked route: admission (by
//!   client [`address`]), the slot held by the body, and through [`held_stream`] the
//!   end on [`shutdown`], the lifetime, the write-stall watch and the [`metrics`].
//! - [`hub`]: the event hub: bounded history, gapless replay, slow-client policy;
//!   [`resume`]: `Last-Event-ID` and the `reset` event; [`snapshot`]: what a stream
//!   that starts with a snapshot needs beyond subscribing.
//! - [`publish`]: [`Publisher`]: into the hub, or through a log several instances
//!   share (the `sse-redis` crate); [`producer`]: one producer across instances.
//! - [`error`]: the JSON error type; [`body`]: request bodies with limits.
//! - [`openapi`]: the `GET /openapi.json` contract, event streams' events included.
//! - [`page`]: the shared page layout, stylesheet, static files and CSP.
//! - [`origin`]: refusing state changes and identities to other origins' pages.
//! - [`secret`]: random tokens and bearer auth; [`names`]: display names; [`rate`]:
//!   rate limits per key or client address (`governor`).
//! - [`config`]: the options; [`routes`]: what every server serves besides its
//!   example (`/healthz`, `/metrics`, JSON errors, the panic net); [`server`]: serving on
//!   `salvo::Server` with a clean shutdown; `lean` (feature `lean-server`): connections served by hyper directly.
//! - `testing` (feature `testing`): helpers for tests over real TCP and real Chromium.

pub mod address;
pub mod body;
pub mod config;
pub mod connection;
pub mod error;
pub mod event_stream;
pub mod frame;
pub mod held_stream;
pub mod history_args;
pub mod hub;
pub mod hub_metrics;
pub mod logging;
pub mod matching;
pub mod metrics;
pub mod names;
pub mod openapi;
pub mod origin;
pub mod page;
pub mod producer;
pub mod publish;
pub mod publish_error;
pub mod rate;
pub mod resume;
pub mod routes;
pub mod secret;
pub mod server;
pub mod shutdown;
pub mod snapshot;
pub mod stream_route;
pub mod streams;
mod subscription;
#[cfg(feature = "testing")]
pub mod testing;

pub use config::ServerArgs;
pub use error::ApiError;
pub use frame::{Frame, FrameError};
pub use history_args::HistoryArgs;
pub use hub::{EventId, HistoryLimits, Hub, HubEvent, HubObserver, PublishError, Start};
pub use matching::Matching;
pub use producer::{Held, Producer};
pub use publish::Publisher;
pub use streams::Streams;

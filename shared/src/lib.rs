//! The machinery the SSE examples share, one concern per module. Each module can be
//! copied into another project on its own (with the crates it names).
//!
//! - [`frame`]: SSE frames, serialized once to `Bytes`, framing-safe for any input.
//! - [`stream`]: the SSE response: headers, `retry:`, keep-alive, coalescing,
//!   shutdown, and the drop guard that frees the stream's slot.
//! - [`hub`]: the event hub: bounded history, gapless replay, slow-client policy.
//! - [`event_log`]: publish in memory or through [`redis_log`], a Redis stream
//!   behind the hub for several instances; [`lease`]: one job across instances.
//! - [`limits`]: global and per-IP caps on open streams.
//! - [`resume`]: `Last-Event-ID` and the `reset` event.
//! - [`metrics`]: Prometheus metrics on `/metrics`.
//! - [`error`]: the JSON error type; [`body`]: request bodies with limits.
//! - [`rate`]: a token bucket; [`secret`]: random tokens and bearer auth.
//! - [`names`]: display names; [`session`]: signed session cookies.
//! - [`presence`]: who is online; [`identity`]: secret tokens to identities; both in
//!   one process or across instances.
//! - [`page`]: the shared page layout, stylesheet, static files and CSP.
//! - [`shutdown`]: a shutdown signal cheap enough to check on every wake-up.
//! - [`config`] and [`server`]: options, logging, serving and shutdown;
//!   [`connection`]: hyper connections answered by salvo's `Service`.
//! - `testing` (feature `testing`): helpers for tests over real TCP and real Chromium.

pub mod body;
pub mod config;
pub mod connection;
pub mod error;
pub mod event_log;
pub mod frame;
pub mod hub;
pub mod identity;
pub mod lease;
pub mod limits;
pub mod metrics;
pub mod names;
pub mod page;
pub mod presence;
pub mod rate;
pub mod redis_log;
pub mod resume;
pub mod secret;
pub mod server;
pub mod session;
pub mod shutdown;
pub mod stream;
#[cfg(feature = "testing")]
pub mod testing;

pub use config::{HistoryArgs, RedisArgs, ServerArgs};
pub use error::ApiError;
pub use event_log::EventLog;
pub use frame::{Frame, FrameError};
pub use hub::{EventId, HistoryLimits, Hub, HubEvent, Start};
pub use stream::{StreamSettings, Streams};

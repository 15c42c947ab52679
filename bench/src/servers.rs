//! The servers under test, each run as its own process (`bench serve <name>`), so the
//! load generator's memory and CPU are not counted as theirs. Each prints `listening on
//! http://127.0.0.1:PORT`, streams on `GET /events`, and publishes the body of a
//! `POST` to `/publish` (ours: `POST /events`) to every stream.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use parking_lot::Mutex;
use sse_shared::hub_metrics::HubMetrics;
use sse_shared::{HistoryLimits, Hub, Publisher, ServerArgs, Streams};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, mpsc};

/// The servers the benchmark knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Server {
    /// Ours: sse-resume's hub, published through `POST /events`, on `salvo::Server`.
    Ours,
    /// The same, served by hyper directly (`lean.rs`).
    Lean,
    /// Ours: sse-chat's room; every stream is a tab of one member, who posts through
    /// `POST /chat/messages` (JSON messages of ~170 bytes, not 64).
    Chat,
    /// The tutorial's chat pattern on salvo: a `Mutex<HashMap>` of unbounded senders,
    /// one `SseEvent` formatted per client.
    Tutorial,
    /// The canonical axum pattern: `tokio::sync::broadcast` + `axum::response::sse::Sse`.
    Axum,
    /// No framework: each event formatted once and written to the sockets directly.
    Ceiling,
    /// Ours: sse-topics, the Mercure hub, on `salvo::Server`.
    Topics,
    /// Mercure's own hub (the Caddy module), built by `bench/build-mercure.sh`; run as
    /// its own binary, not by `bench serve`. On its `local` transport: no history.
    Mercure,
    /// The same on its documented default transport, `bolt`: a history on disk as long
    /// as ours (4,096 updates).
    MercureBolt,
    /// nchan, the nginx module (Debian's `libnginx-mod-nchan`: `bench/install-nchan.sh`),
    /// in one nginx process; run as nginx, not by `bench serve`.
    Nchan,
    /// Centrifugo v6 (its unidirectional SSE transport), built from the Go module proxy
    /// by `bench/install-centrifugo.sh`; run as its own binary, not by `bench serve`.
    Centrifugo,
}

impl Server {
    /// Every server, ours first.
    pub const ALL: [Server; 6] = [
        Server::Ours,
        Server::Lean,
        Server::Chat,
        Server::Tutorial,
        Server::Axum,
        Server::Ceiling,
    ];

    /// The name used in results.
    pub fn name(self) -> &'static str {
        match self {
            Server::Ours => "ours (hub)",
            Server::Lean => "ours (hub, lean)",
            Server::Chat => "ours (chat)",
            Server::Tutorial => "tutorial (salvo)",
            Server::Axum => "axum broadcast",
            Server::Ceiling => "tokio ceiling",
            Server::Topics => "ours (sse-topics)",
            Server::Mercure => "Mercure hub (local)",
            Server::MercureBolt => "Mercure hub (bolt)",
            Server::Nchan => "nchan (nginx)",
            Server::Centrifugo => "Centrifugo (uni_sse)",
        }
    }

    /// The path a publish goes to.
    pub fn publish_path(self) -> &'static str {
        match self {
            Server::Ours | Server::Lean => "/events",
            Server::Chat => "/chat/messages",
            Server::Topics | Server::Mercure | Server::MercureBolt => "/.well-known/mercure",
            Server::Centrifugo => "/api/publish",
            _ => "/publish",
        }
    }
}

/// Runs `server` on 127.0.0.1:`port` until the process is stopped.
pub async fn serve(
    server: Server,
    port: u16,
    history: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    match server {
        Server::Ours => ours(port, history, false).await,
        Server::Lean => ours(port, history, true).await,
        Server::Chat => chat(port, history).await,
        Server::Tutorial => tutorial(port).await,
        Server::Axum => axum_peer(port).await,
        Server::Ceiling => ceiling(port).await,
        Server::Topics => topics(port, history).await,
        Server::Mercure | Server::MercureBolt => {
            Err("Mercure's hub is its own binary (bench/build-mercure.sh)".into())
        }
        Server::Nchan => Err("nchan runs in nginx (bench/install-nchan.sh)".into()),
        Server::Centrifugo => {
            Err("Centrifugo runs as its own binary (bench/install-centrifugo.sh)".into())
        }
    }
}

fn announce(listener: &TcpListener) -> std::io::Result<()> {
    println!("listening on http://{}", listener.local_addr()?);
    Ok(())
}

/// Our server's settings for the benchmark: room for every client, `history` events.
fn our_settings(port: u16, history: usize) -> (ServerArgs, Streams, HistoryLimits) {
    let args = ServerArgs {
        port,
        max_streams: 20_000,
        max_streams_per_ip: 20_000,
        ..ServerArgs::default()
    };
    let streams = Streams::from_args(&args);
    let limits = HistoryLimits {
        max_events: history,
        ..HistoryLimits::default()
    };
    (args, streams, limits)
}

async fn run_ours(
    args: &ServerArgs,
    streams: Streams,
    app: salvo::Router,
    lean_server: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let code = if lean_server {
        crate::lean::run(args, streams, app).await
    } else {
        sse_shared::server::run(args, streams, app).await
    };
    if code == std::process::ExitCode::SUCCESS {
        Ok(())
    } else {
        Err("ours failed".into())
    }
}

async fn ours(
    port: u16,
    history: usize,
    lean_server: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let (args, streams, limits) = our_settings(port, history);
    let log = Publisher::in_memory(Hub::with_observer(
        limits,
        HubMetrics::register(streams.metrics()),
    ));
    // The load generator posts every event from one address: no per-address limit
    // (`main.rs`'s `PostLimit` is not stacked here).
    let app = sse_resume::router(&log);
    run_ours(&args, streams, app, lean_server).await
}

/// Updates a topic hub keeps (ours, and Mercure on bolt): `bench serve`'s default.
pub const HUB_HISTORY: usize = 4096;
/// The JWT key both hubs check tokens with (HS256), and the issuer and audience
/// they require (Mercure's hub requires both).
pub const HUB_SECRET: &str = "the benchmark's HS256 key, at least 32 bytes long";
pub const HUB_ISSUER: &str = "https://localhost";
pub const HUB_AUDIENCE: &str = "https://localhost/.well-known/mercure";

/// sse-topics as its `main.rs` runs it without `--subscriptions`: anonymous subscribers
/// allowed, tokens with [`HUB_SECRET`], [`HUB_ISSUER`] and [`HUB_AUDIENCE`].
async fn topics(port: u16, history: usize) -> Result<(), Box<dyn std::error::Error>> {
    let (args, streams, limits) = our_settings(port, history);
    let log = Publisher::in_memory(Hub::with_observer(
        limits,
        HubMetrics::register(streams.metrics()),
    ));
    let settings = sse_topics::HubArgs {
        hub_url: Some(HUB_AUDIENCE.parse()?),
        public_urls: Vec::new(),
        jwt_audience: Some(HUB_AUDIENCE.into()),
        jwt_issuers: vec![sse_shared::issuers::IssuerArg {
            name: HUB_ISSUER.into(),
            keys: None,
        }],
        jwks_refresh_secs: 30,
        cookie_name: "mercure_access_token".into(),
        anonymous: true,
        subscriptions: false,
        protocol_compat: None,
        limits: Default::default(),
    };
    let hub = sse_topics::TopicHub::new(log, settings, HUB_SECRET.as_bytes())?;
    run_ours(&args, streams, sse_topics::router(&hub), false).await
}

async fn chat(port: u16, history: usize) -> Result<(), Box<dyn std::error::Error>> {
    let (args, streams, limits) = our_settings(port, history);
    // The one member posts as fast as the publisher can: no allowance to run out of.
    let room_limits = sse_chat::RoomLimits {
        post_burst: u32::MAX,
        posts_per_second: u32::MAX,
        ip_post_burst: u32::MAX,
        ip_posts_per_second: u32::MAX,
        join_burst: u32::MAX,
        ..sse_chat::RoomLimits::default()
    };
    let hub = sse_shared::Hub::with_observer(limits, HubMetrics::register(streams.metrics()));
    let room = sse_chat::ChatRoom::in_memory(hub, room_limits);
    let app = sse_chat::router(&room);
    run_ours(&args, streams, app, false).await
}

async fn tutorial(port: u16) -> Result<(), Box<dyn std::error::Error>> {
    use salvo::conn::Acceptor;
    use salvo::prelude::*;
    use salvo::sse::{SseEvent, SseKeepAlive};

    type Users = Arc<Mutex<HashMap<usize, mpsc::UnboundedSender<String>>>>;

    struct Connect {
        users: Users,
        next: Arc<AtomicUsize>,
    }
    #[handler]
    impl Connect {
        async fn handle(&self, res: &mut Response) {
            let id = self.next.fetch_add(1, Ordering::Relaxed);
            let (tx, rx) = mpsc::unbounded_channel();
            self.users.lock().insert(id, tx);
            let stream = tokio_stream::wrappers::UnboundedReceiverStream::new(rx)
                .map(|text| Ok::<_, Infallible>(SseEvent::default().text(text)));
            SseKeepAlive::new(stream).stream(res);
        }
    }
    struct Publish {
        users: Users,
    }
    #[handler]
    impl Publish {
        async fn handle(&self, req: &mut Request, res: &mut Response) {
            let text = req
                .payload()
                .await
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default();
            self.users
                .lock()
                .retain(|_, tx| tx.send(text.clone()).is_ok());
            res.status_code(StatusCode::NO_CONTENT);
        }
    }

    let users: Users = Arc::default();
    let router = Router::new()
        .push(Router::with_path("events").get(Connect {
            users: users.clone(),
            next: Arc::default(),
        }))
        .push(Router::with_path("publish").post(Publish { users }));
    let acceptor = salvo::conn::TcpListener::new(format!("127.0.0.1:{port}"))
        .bind()
        .await;
    if let Some(addr) = acceptor
        .holdings()
        .first()
        .and_then(|h| h.local_addr.clone().into_std())
    {
        println!("listening on http://{addr}");
    }
    salvo::Server::new(acceptor).serve(router).await;
    Ok(())
}

async fn axum_peer(port: u16) -> Result<(), Box<dyn std::error::Error>> {
    use axum::extract::State;
    use axum::http::StatusCode;
    use axum::response::sse::{Event, KeepAlive, Sse};
    use axum::routing::{get, post};

    async fn events(
        State(tx): State<broadcast::Sender<String>>,
    ) -> Sse<impl futures_util::Stream<Item = Result<Event, Infallible>>> {
        let stream = tokio_stream::wrappers::BroadcastStream::new(tx.subscribe()).filter_map(
            |message| async move { message.ok().map(|text| Ok(Event::default().data(text))) },
        );
        Sse::new(stream).keep_alive(KeepAlive::default())
    }
    async fn publish(State(tx): State<broadcast::Sender<String>>, body: String) -> StatusCode {
        let _ = tx.send(body);
        StatusCode::NO_CONTENT
    }

    let (tx, _) = broadcast::channel::<String>(4096);
    let app = axum::Router::new()
        .route("/events", get(events))
        .route("/publish", post(publish))
        .with_state(tx);
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    announce(&listener)?;
    axum::serve(listener, app).await?;
    Ok(())
}

async fn ceiling(port: u16) -> Result<(), Box<dyn std::error::Error>> {
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    announce(&listener)?;
    let (tx, _) = broadcast::channel::<Bytes>(4096);
    loop {
        let (socket, _) = listener.accept().await?;
        let tx = tx.clone();
        tokio::spawn(async move {
            let _ = ceiling_connection(socket, tx).await;
        });
    }
}

/// One connection to the ceiling: either a stream, or keep-alive publishes.
async fn ceiling_connection(
    mut socket: TcpStream,
    tx: broadcast::Sender<Bytes>,
) -> std::io::Result<()> {
    socket.set_nodelay(true)?;
    let mut buf = BytesMut::with_capacity(4096);
    loop {
        let head_end = loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break end + 4;
            }
            if socket.read_buf(&mut buf).await? == 0 {
                return Ok(());
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
        if head.starts_with("get /events") {
            let _ = buf.split_to(head_end);
            socket
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\nconnection: close\r\n\r\nretry: 3000\n\n")
                .await?;
            let mut rx = tx.subscribe();
            loop {
                match rx.recv().await {
                    Ok(frame) => {
                        // Whatever else is ready goes out in the same write.
                        let mut out = BytesMut::from(&frame[..]);
                        while let Ok(more) = rx.try_recv() {
                            out.extend_from_slice(&more);
                        }
                        socket.write_all(&out).await?;
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return Ok(()),
                }
            }
        }
        let length = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse::<usize>().ok())
            .unwrap_or(0);
        while buf.len() < head_end + length {
            if socket.read_buf(&mut buf).await? == 0 {
                return Ok(());
            }
        }
        let body = buf.split_to(head_end + length).split_off(head_end);
        let mut frame = BytesMut::with_capacity(body.len() + 8);
        frame.extend_from_slice(b"data: ");
        frame.extend_from_slice(&body);
        frame.extend_from_slice(b"\n\n");
        let _ = tx.send(frame.freeze());
        socket
            .write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
            .await?;
    }
}

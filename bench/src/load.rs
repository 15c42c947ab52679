//! The load generator: many SSE clients on plain HTTP/1.1 over loopback, one pipelined
//! publisher, and the measurements (closed-loop throughput, fixed-rate latency, memory
//! per connection). Everything is bounded in count and time.
//!
//! Each event's data is 64 bytes: `<seq> <publish time in µs since the epoch> <padding>`,
//! so clients detect loss by sequence number and measure publish-to-receive latency.

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::BytesMut;
use hdrhistogram::Histogram;
use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinSet;

/// The size of every event's data.
pub const EVENT_BYTES: usize = 64;

pub type BenchResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// The channel every Centrifugo client is subscribed to (by its connection token).
pub const CENTRIFUGO_CHANNEL: &str = "bench";

/// Where the clients stream from and where the publisher posts.
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: SocketAddr,
    /// Path and query of the stream.
    pub stream_path: String,
    pub publish_path: String,
    /// Sent as `Authorization: Bearer` with each stream request and each publish.
    pub bearer: Option<String>,
    /// Topic hubs: publishes are Mercure's form (`topic`, `data`), on topics under this
    /// prefix (a thousand of them, in turn), with this bearer token; streams are
    /// anonymous.
    pub hub: Option<(&'static str, String)>,
    /// Centrifugo: publishes are its HTTP API's JSON (`channel`, `data.text`) with this
    /// `X-API-Key`.
    pub api_key: Option<String>,
}

/// What every client reports into.
#[derive(Default)]
pub struct Tally {
    pub connected: AtomicUsize,
    pub delivered: AtomicU64,
    /// Socket reads that brought at least one event (delivered / reads is the most
    /// events a server write can have carried on average).
    pub reads: AtomicU64,
    pub gaps: AtomicU64,
    /// Latencies are recorded while this is set.
    pub recording: AtomicBool,
    /// The publisher waits for `delivered` to reach this.
    pub wanted: AtomicU64,
    pub reached: Notify,
    /// Each client's latencies, merged by [`Tally::latencies`].
    slots: Mutex<Vec<Arc<Mutex<Histogram<u64>>>>>,
    pub stop: AtomicBool,
}

impl Tally {
    pub fn new() -> Arc<Self> {
        let tally = Self::default();
        tally.wanted.store(u64::MAX, Ordering::Relaxed);
        Arc::new(tally)
    }

    /// Every client's latencies together.
    pub fn latencies(&self) -> BenchResult<Histogram<u64>> {
        let mut all = Histogram::new_with_bounds(1, 60_000_000, 3)?;
        for slot in self.slots.lock().iter() {
            all.add(&*slot.lock())?;
        }
        Ok(all)
    }
}

/// Opens `n` streams to `addr`, 200 at a time, from rotating loopback source addresses
/// (so tens of thousands of connections across runs do not run out of ports).
pub async fn open_clients(
    target: &Target,
    n: usize,
    tally: Arc<Tally>,
) -> BenchResult<JoinSet<()>> {
    let request = stream_request(&target.stream_path, target.bearer.as_deref());
    open_clients_on(target.addr, &[request.into()], n, tally).await
}

/// Opens `n` streams to `addr` as [`open_clients`] does, client `i` sending
/// `requests[i % requests.len()]` (one request per topic: clients spread over them).
pub async fn open_clients_on(
    addr: SocketAddr,
    requests: &[Arc<str>],
    n: usize,
    tally: Arc<Tally>,
) -> BenchResult<JoinSet<()>> {
    let mut set = JoinSet::new();
    if requests.is_empty() {
        return Err("no stream request".into());
    }
    for i in 0..n {
        let source = SocketAddr::V4(SocketAddrV4::new(
            Ipv4Addr::new(127, 0, (i / 250 % 250) as u8 + 1, (i % 250) as u8 + 2),
            0,
        ));
        let (counter, request) = (
            Arc::clone(&tally),
            Arc::clone(&requests[i % requests.len()]),
        );
        set.spawn(async move {
            let tally = counter;
            if let Err(e) = client(addr, source, &request, &tally).await
                && !tally.stop.load(Ordering::Relaxed)
            {
                eprintln!("client: {e}");
            }
        });
        if i % 200 == 199 {
            wait_connected(&tally, i + 1).await?;
        }
    }
    wait_connected(&tally, n).await?;
    Ok(set)
}

/// Waits (30 s at most) until `want` streams have their response head.
async fn wait_connected(tally: &Tally, want: usize) -> BenchResult<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while tally.connected.load(Ordering::Relaxed) < want {
        if tokio::time::Instant::now() > deadline {
            return Err(format!(
                "only {} of {want} streams opened",
                tally.connected.load(Ordering::Relaxed)
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Ok(())
}

/// The request that opens a stream at `path`; with a bearer token (chat's member), in a
/// header, never the URL.
pub fn stream_request(path: &str, bearer: Option<&str>) -> String {
    let auth = bearer.map_or(String::new(), |t| format!("authorization: Bearer {t}\r\n"));
    format!("GET {path} HTTP/1.1\r\nhost: bench\r\naccept: text/event-stream\r\n{auth}\r\n")
}

/// Sends `request` and reads the response head: the stream, its decoder, and whatever
/// of the body came with the head.
async fn open_stream(
    mut stream: TcpStream,
    request: &str,
) -> BenchResult<(TcpStream, Decoder, BytesMut)> {
    stream.write_all(request.as_bytes()).await?;
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let head_end = loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        if stream.read_buf(&mut buf).await? == 0 {
            return Err("closed before the response head".into());
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    if !head.starts_with("http/1.1 200") {
        return Err(format!("refused: {}", head.lines().next().unwrap_or_default()).into());
    }
    let decoder = Decoder::new(head.contains("transfer-encoding: chunked"));
    let _ = buf.split_to(head_end);
    Ok((stream, decoder, buf))
}

/// Joins sse-chat as one member: the member's token, and the stream that keeps them
/// online (drop it to leave).
pub async fn join_chat(addr: SocketAddr) -> BenchResult<(String, TcpStream)> {
    let request = stream_request("/chat/events?name=bench", None);
    let (mut stream, mut decoder, mut buf) =
        open_stream(TcpStream::connect(addr).await?, &request).await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mut token = None;
        decoder.feed(&buf, |line| {
            if let Some(data) = line.strip_prefix(b"data: ")
                && let Ok(welcome) = serde_json::from_slice::<serde_json::Value>(data)
                && let Some(found) = welcome.get("token").and_then(|t| t.as_str())
            {
                token = Some(found.to_owned());
            }
        });
        if let Some(token) = token {
            return Ok((token, stream));
        }
        buf.clear();
        if tokio::time::timeout_at(deadline, stream.read_buf(&mut buf)).await?? == 0 {
            return Err("the chat closed the stream before its welcome".into());
        }
    }
}

async fn client(
    addr: SocketAddr,
    source: SocketAddr,
    request: &str,
    tally: &Tally,
) -> BenchResult<()> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(source)?;
    let (mut stream, mut decoder, mut buf) =
        open_stream(socket.connect(addr).await?, request).await?;
    tally.connected.fetch_add(1, Ordering::Relaxed);

    let mut expected = 0u64;
    let slot = Arc::new(Mutex::new(Histogram::<u64>::new_with_bounds(
        1, 60_000_000, 3,
    )?));
    tally.slots.lock().push(Arc::clone(&slot));
    loop {
        let mut events = 0u64;
        // In a block of its own, so the latency lock is released before the next read.
        {
            let recording = tally.recording.load(Ordering::Relaxed);
            let now = now_micros();
            let mut latencies = recording.then(|| slot.lock());
            decoder.feed(&buf, |line| {
                let Some(data) = line.strip_prefix(b"data: ").and_then(payload) else {
                    return;
                };
                let mut fields = data.split(|b| *b == b' ');
                let (Some(seq), Some(at)) = (
                    fields.next().and_then(number),
                    fields.next().and_then(number),
                ) else {
                    return;
                };
                if expected != 0 && seq > expected {
                    tally.gaps.fetch_add(seq - expected, Ordering::Relaxed);
                }
                expected = seq + 1;
                events += 1;
                if let Some(latencies) = latencies.as_mut() {
                    let _ = latencies.record(now.saturating_sub(at).max(1));
                }
            });
        }
        buf.clear();
        if events > 0 {
            tally.reads.fetch_add(1, Ordering::Relaxed);
            let total = tally.delivered.fetch_add(events, Ordering::Relaxed) + events;
            if total >= tally.wanted.load(Ordering::Relaxed) {
                tally.reached.notify_waiters();
            }
        }
        if stream.read_buf(&mut buf).await? == 0 {
            return Ok(());
        }
    }
}

/// The published text in a data line: the line itself, or, in sse-chat's JSON
/// messages, what follows `"text":"` (the text is ours and needs no unescaping).
fn payload(data: &[u8]) -> Option<&[u8]> {
    if !data.starts_with(b"{") {
        return Some(data);
    }
    const TEXT: &[u8] = b"\"text\":\"";
    let at = data.windows(TEXT.len()).position(|w| w == TEXT)?;
    Some(&data[at + TEXT.len()..])
}

fn number(bytes: &[u8]) -> Option<u64> {
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

/// Undoes chunked transfer encoding (when there is one) and hands over complete lines.
struct Decoder {
    chunked: bool,
    state: Chunk,
    line: Vec<u8>,
}

enum Chunk {
    Size(usize),
    Extension(usize),
    Data(usize),
    DataEnd,
}

impl Decoder {
    fn new(chunked: bool) -> Self {
        Self {
            chunked,
            state: Chunk::Size(0),
            line: Vec::with_capacity(256),
        }
    }

    fn feed(&mut self, mut input: &[u8], mut on_line: impl FnMut(&[u8])) {
        if !self.chunked {
            self.lines(input, &mut on_line);
            return;
        }
        while !input.is_empty() {
            match self.state {
                Chunk::Size(size) => {
                    let byte = input[0];
                    input = &input[1..];
                    self.state = match byte {
                        b'0'..=b'9' => Chunk::Size(size * 16 + usize::from(byte - b'0')),
                        b'a'..=b'f' => Chunk::Size(size * 16 + usize::from(byte - b'a' + 10)),
                        b'A'..=b'F' => Chunk::Size(size * 16 + usize::from(byte - b'A' + 10)),
                        b'\n' => Chunk::Data(size),
                        _ => Chunk::Extension(size),
                    };
                }
                Chunk::Extension(size) => {
                    let byte = input[0];
                    input = &input[1..];
                    if byte == b'\n' {
                        self.state = Chunk::Data(size);
                    }
                }
                Chunk::Data(0) => self.state = Chunk::DataEnd,
                Chunk::Data(remaining) => {
                    let take = remaining.min(input.len());
                    let (data, rest) = input.split_at(take);
                    self.lines(data, &mut on_line);
                    input = rest;
                    self.state = Chunk::Data(remaining - take);
                }
                Chunk::DataEnd => {
                    let byte = input[0];
                    input = &input[1..];
                    if byte == b'\n' {
                        self.state = Chunk::Size(0);
                    }
                }
            }
        }
    }

    fn lines(&mut self, mut data: &[u8], on_line: &mut impl FnMut(&[u8])) {
        while let Some(end) = data.iter().position(|b| *b == b'\n') {
            if self.line.is_empty() {
                on_line(&data[..end]);
            } else {
                self.line.extend_from_slice(&data[..end]);
                on_line(&self.line);
                self.line.clear();
            }
            data = &data[end + 1..];
        }
        self.line.extend_from_slice(data);
    }
}

/// Publishes over one keep-alive connection, with up to `WINDOW` requests in flight.
pub struct Publisher {
    socket: tokio::net::tcp::OwnedWriteHalf,
    path: String,
    authorization: String,
    /// Mercure's form, on topics under this prefix.
    topics: Option<&'static str>,
    /// Every update on this one topic (Mercure's form) or channel (Centrifugo's API)
    /// instead.
    topic: Option<String>,
    /// Centrifugo's HTTP API, with this key.
    api_key: Option<String>,
    acked: Arc<AtomicU64>,
    acked_notify: Arc<Notify>,
    /// When each request in flight was sent, oldest first (answers come in order).
    in_flight: Arc<Mutex<VecDeque<Instant>>>,
    sent: u64,
    padding: String,
}

/// Publishes' answer times, shared by many publishers: recorded while `recording` is set.
pub struct PublishTimes {
    pub recording: AtomicBool,
    histogram: Mutex<Histogram<u64>>,
    /// Answers that were not `2xx`.
    pub refused: AtomicU64,
}

impl PublishTimes {
    pub fn new() -> BenchResult<Arc<Self>> {
        Ok(Arc::new(Self {
            recording: AtomicBool::new(false),
            histogram: Mutex::new(Histogram::new_with_bounds(1, 60_000_000, 3)?),
            refused: AtomicU64::new(0),
        }))
    }

    /// The answer times recorded, in microseconds.
    pub fn recorded(&self) -> Histogram<u64> {
        self.histogram.lock().clone()
    }
}

const WINDOW: u64 = 64;

impl Publisher {
    pub async fn connect(target: &Target) -> BenchResult<Self> {
        Self::connect_with(target, None, None).await
    }

    /// A publisher of every update on `topic` (or channel) at `path`, its answer times
    /// recorded into `times`.
    pub async fn on_topic(
        target: &Target,
        path: String,
        topic: String,
        times: Arc<PublishTimes>,
    ) -> BenchResult<Self> {
        let mut publisher = Self::connect_with(target, Some(topic), Some(times)).await?;
        publisher.path = path;
        Ok(publisher)
    }

    async fn connect_with(
        target: &Target,
        topic: Option<String>,
        times: Option<Arc<PublishTimes>>,
    ) -> BenchResult<Self> {
        let stream = TcpStream::connect(target.addr).await?;
        stream.set_nodelay(true)?;
        let (mut read, write) = stream.into_split();
        let acked = Arc::new(AtomicU64::new(0));
        let acked_notify = Arc::new(Notify::new());
        let in_flight = Arc::new(Mutex::new(VecDeque::<Instant>::new()));
        let (counter, notify, sent) = (
            Arc::clone(&acked),
            Arc::clone(&acked_notify),
            Arc::clone(&in_flight),
        );
        tokio::spawn(async move {
            let mut buf = BytesMut::with_capacity(64 * 1024);
            loop {
                // Whole responses: a head, then content-length bytes of body.
                while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                    let length = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    if buf.len() < end + 4 + length {
                        break;
                    }
                    let accepted = head.starts_with("http/1.1 2");
                    let since = sent.lock().pop_front();
                    match &times {
                        Some(times) => {
                            if !accepted {
                                times.refused.fetch_add(1, Ordering::Relaxed);
                            }
                            if let Some(since) = since
                                && times.recording.load(Ordering::Relaxed)
                            {
                                let us = since.elapsed().as_micros() as u64;
                                let _ = times.histogram.lock().record(us.max(1));
                            }
                        }
                        None if !accepted => eprintln!(
                            "publish refused: {}",
                            head.lines().next().unwrap_or_default()
                        ),
                        None => {}
                    }
                    let _ = buf.split_to(end + 4 + length);
                    counter.fetch_add(1, Ordering::Relaxed);
                    notify.notify_waiters();
                }
                match read.read_buf(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        });
        Ok(Self {
            socket: write,
            path: target.publish_path.clone(),
            authorization: target
                .hub
                .as_ref()
                .map(|(_, token)| token)
                .or(target.bearer.as_ref())
                .map(|token| format!("authorization: Bearer {token}\r\n"))
                .unwrap_or_default(),
            topics: target.hub.as_ref().map(|(topics, _)| *topics),
            topic,
            api_key: target.api_key.clone(),
            acked,
            acked_notify,
            in_flight,
            sent: 0,
            padding: "x".repeat(EVENT_BYTES),
        })
    }

    /// Waits (10 s at most) until every request sent has its answer: a connection
    /// dropped with a publish in flight may take the publish with it.
    pub async fn settle(&self) -> BenchResult<()> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let notified = self.acked_notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.acked.load(Ordering::Relaxed) >= self.sent {
                return Ok(());
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Err("publishes still unanswered after 10 s".into());
            }
        }
    }

    /// Sends event `seq` (waiting while the window is full).
    pub async fn publish(&mut self, seq: u64) -> BenchResult<()> {
        while self.sent - self.acked.load(Ordering::Relaxed) >= WINDOW {
            let notified = self.acked_notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.sent - self.acked.load(Ordering::Relaxed) < WINDOW {
                break;
            }
            tokio::time::timeout(Duration::from_secs(10), notified)
                .await
                .map_err(|_| "the server stopped answering publishes")?;
        }
        let mut body = format!("{seq} {} ", now_micros());
        let pad = EVENT_BYTES.saturating_sub(body.len());
        body.push_str(&self.padding[..pad]);
        let mut content_type = "text/plain";
        if let Some(prefix) = self.topics {
            // One topic per update (or the publisher's own); the data's spaces are `+`
            // in a form.
            let topic = match &self.topic {
                Some(topic) => topic.clone(),
                None => format!("{prefix}{}", seq % 1000),
            };
            let topic: String = url::form_urlencoded::byte_serialize(topic.as_bytes()).collect();
            body = format!("topic={topic}&data={}", body.replace(' ', "+"));
            content_type = "application/x-www-form-urlencoded";
        }
        let mut authorization = self.authorization.as_str();
        let api_key;
        if let Some(key) = &self.api_key {
            // The clients read the text where sse-chat's messages carry it: `"text":"`.
            let channel = self.topic.as_deref().unwrap_or(CENTRIFUGO_CHANNEL);
            body = format!("{{\"channel\":\"{channel}\",\"data\":{{\"text\":\"{body}\"}}}}");
            content_type = "application/json";
            api_key = format!("x-api-key: {key}\r\n");
            authorization = &api_key;
        }
        let request = format!(
            "POST {} HTTP/1.1\r\nhost: bench\r\n{}content-type: {content_type}\r\ncontent-length: {}\r\n\r\n{body}",
            self.path,
            authorization,
            body.len()
        );
        self.in_flight.lock().push_back(Instant::now());
        self.socket.write_all(request.as_bytes()).await?;
        self.sent += 1;
        Ok(())
    }
}

/// The gate of a publisher kept a few events ahead of its clients: waits up to 20 s for
/// them to have received `wanted` events in all, and fails naming `server` if they stall.
pub async fn gate(tally: &Tally, wanted: u64, server: &str) -> BenchResult<()> {
    if wait_delivered(tally, wanted, Duration::from_secs(20)).await {
        return Ok(());
    }
    let delivered = tally.delivered.load(Ordering::Relaxed);
    Err(format!("{server}: deliveries stalled at {delivered} of {wanted}").into())
}

/// Waits until the clients have received `wanted` events in all, or `limit` passes.
pub async fn wait_delivered(tally: &Tally, wanted: u64, limit: Duration) -> bool {
    tally.wanted.store(wanted, Ordering::Relaxed);
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let notified = tally.reached.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if tally.delivered.load(Ordering::Relaxed) >= wanted {
            return true;
        }
        if tokio::time::timeout_at(deadline, notified).await.is_err() {
            return tally.delivered.load(Ordering::Relaxed) >= wanted;
        }
    }
}

/// Events published to every client but not delivered: waits (10 s at most) for the last
/// ones to land first. A client that saw a sequence gap counts it too, in case a
/// duplicate elsewhere made up the total; more deliveries than events is an error.
pub async fn lost(tally: &Tally, published: u64, clients: usize) -> BenchResult<u64> {
    let expected = published * clients as u64;
    wait_delivered(tally, expected, Duration::from_secs(10)).await;
    let delivered = tally.delivered.load(Ordering::Relaxed);
    if delivered > expected {
        return Err(
            format!("{delivered} deliveries of {published} events to {clients} clients").into(),
        );
    }
    Ok((expected - delivered).max(tally.gaps.load(Ordering::Relaxed)))
}

/// Closes every client.
pub async fn close_clients(tally: &Tally, mut clients: JoinSet<()>) {
    tally.stop.store(true, Ordering::Relaxed);
    clients.abort_all();
    while clients.join_next().await.is_some() {}
}

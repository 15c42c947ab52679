//! `bench hostile`: hostile round three's reproductions (issue 40) against sse-topics
//! binaries, each scenario in a fresh process of each binary, the binaries taking turns:
//! the hub's CPU seconds (user + system, from `/proc/<pid>/stat`), its peak RSS
//! (`VmHWM`), and what the attack does to others (`/healthz` or publish latency while
//! it runs). Give it the binary before the fixes and after:
//!
//! ```text
//! cargo run -p bench --release -- hostile --binary before=PATH --binary after=target/release/sse-topics
//! ```
//!
//! Writes `<out>/<date>-hostile.md`.

use std::fmt::Write as _;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sse_shared::testing::{SseConnection, http, reqwest};
use sse_topics::auth::{DETAIL_TYPE, sign, unix_now};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

use crate::load::BenchResult;
use crate::per_event::cpu_ticks;

const SECRET: &str = "hostile bench secret, 32 bytes or more";
const AUDIENCE: &str = "urn:bench-hub";
const HUB: &str = "/.well-known/mercure";

/// One hub process.
struct HubProcess {
    child: Child,
    base: String,
    _stdout: Lines<BufReader<ChildStdout>>,
}

impl HubProcess {
    async fn start(binary: &str, extra: &[&str]) -> BenchResult<Self> {
        let mut child = Command::new(binary)
            .args([
                "--port",
                "0",
                "--jwt-secret",
                SECRET,
                "--jwt-audience",
                AUDIENCE,
            ])
            .args(["--max-streams-per-ip", "10000"])
            .args(extra)
            .env("RUST_LOG", "error")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let first = tokio::time::timeout(Duration::from_secs(10), lines.next_line()).await??;
        let first = first.ok_or("the hub printed nothing")?;
        let base = first
            .strip_prefix("listening on ")
            .ok_or("no listening line")?
            .to_owned();
        Ok(Self {
            child,
            base,
            _stdout: lines,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn pid(&self) -> BenchResult<u32> {
        Ok(self.child.id().ok_or("the hub has exited")?)
    }

    /// CPU seconds so far.
    fn cpu(&self) -> BenchResult<f64> {
        Ok(cpu_ticks(self.pid()?)? as f64 / 100.0)
    }

    /// CPU seconds once they stop rising for half a second (or after `limit`).
    async fn cpu_once_quiet(&self, limit: Duration) -> BenchResult<f64> {
        let mut last = self.cpu()?;
        let until = Instant::now() + limit;
        while Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let now = self.cpu()?;
            if now == last {
                break;
            }
            last = now;
        }
        Ok(last)
    }

    /// `VmHWM` (peak) or `VmRSS`, in MiB.
    fn memory(&self, field: &str) -> BenchResult<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()?))?;
        let kib: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .ok_or("no such field")?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()?;
        Ok(kib / 1024.0)
    }
}

/// A publisher's token for every topic.
fn publisher() -> BenchResult<String> {
    let claims = serde_json::json!({
        "exp": unix_now() + 3600,
        "aud": AUDIENCE,
        "authorization_details": [{"type": DETAIL_TYPE, "actions": ["publish"], "topics": [{"match": "*"}]}],
    });
    Ok(sign(SECRET.as_bytes(), &claims)?)
}

/// `text` percent-encoded for a query or a form (all but ALPHA and DIGIT).
fn enc(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// One `topic` field for each of `topics`, then `data`.
fn update<'a>(topics: &'a [String], data: &'a str) -> Vec<(&'a str, &'a str)> {
    let mut fields: Vec<(&str, &str)> = topics.iter().map(|t| ("topic", t.as_str())).collect();
    fields.push(("data", data));
    fields
}

/// 50 URL-pattern matchers from `template` (`{i}` numbered).
fn fifty(template: &str, tag: &str) -> String {
    (0..50)
        .map(|i| {
            let pattern = template.replace("{i}", &format!("{tag}{i}"));
            format!("match_urlpattern={}", enc(&pattern))
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Publishes the form `fields` to the hub at `base`; the time it took and the status.
async fn publish(base: &str, token: &str, fields: &[(&str, &str)]) -> BenchResult<(Duration, u16)> {
    let body: Vec<String> = fields
        .iter()
        .map(|(name, value)| format!("{name}={}", enc(value)))
        .collect();
    let started = Instant::now();
    let response = http()
        .post(format!("{base}{HUB}"))
        .bearer_auth(token)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.join("&"))
        .send()
        .await?;
    let status = response.status().as_u16();
    response.bytes().await?;
    Ok((started.elapsed(), status))
}

/// Polls `/healthz` every 20 ms until `stop`; the slowest answer.
fn probe_health(hub: &HubProcess, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<Duration> {
    let url = hub.url("/healthz");
    tokio::spawn(async move {
        let mut worst = Duration::ZERO;
        while !stop.load(Ordering::Relaxed) {
            let started = Instant::now();
            let answered =
                tokio::time::timeout(Duration::from_secs(30), http().get(&url).send()).await;
            if answered.is_ok() {
                worst = worst.max(started.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        worst
    })
}

/// Opens a stream; its status (and the response, held open while 200).
async fn open(hub: &HubProcess, query: &str) -> BenchResult<(u16, Option<reqwest::Response>)> {
    open_from(&http(), hub, query).await
}

/// Opens a stream with `client`; its status (and the response, held open while 200).
async fn open_from(
    client: &reqwest::Client,
    hub: &HubProcess,
    query: &str,
) -> BenchResult<(u16, Option<reqwest::Response>)> {
    let mut response = client
        .get(hub.url(&format!("{HUB}?{query}")))
        .send()
        .await?;
    let status = response.status().as_u16();
    if status != 200 {
        return Ok((status, None));
    }
    // The first frame (`retry:`): the stream is set up.
    tokio::time::timeout(Duration::from_secs(60), response.chunk()).await??;
    Ok((status, Some(response)))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

/// One scenario's figures for one binary.
type Row = Vec<(&'static str, String)>;

/// (1) Four concurrent subscriptions with 50 costly URL patterns and a bad token.
async fn compile_refused(binary: &str, template: &str) -> BenchResult<Row> {
    let hub = HubProcess::start(binary, &[]).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let health = probe_health(&hub, Arc::clone(&stop));
    let cpu = hub.cpu()?;
    let mut requests = tokio::task::JoinSet::new();
    for n in 0..4 {
        let url = hub.url(&format!("{HUB}?{}", fifty(template, &format!("r{n}p"))));
        requests.spawn(async move {
            let response = http().get(url).bearer_auth("not.a.token").send().await;
            response.map(|r| r.status().as_u16()).unwrap_or(0)
        });
    }
    let statuses: Vec<u16> = requests.join_all().await;
    let cpu = hub.cpu()? - cpu;
    stop.store(true, Ordering::Relaxed);
    let worst = health.await?;
    Ok(vec![
        ("answers", format!("{statuses:?}")),
        ("CPU per request (ms)", format!("{:.0}", cpu * 1000.0 / 4.0)),
        ("slowest /healthz meanwhile (ms)", ms(worst)),
        ("peak RSS (MiB)", format!("{:.0}", hub.memory("VmHWM:")?)),
    ])
}

/// (1) Three anonymous streams held open with 50 costly URL patterns each, from three
/// client addresses (one address may hold only so much: `--max-pattern-weight-per-client`).
async fn compile_held(binary: &str, template: &str) -> BenchResult<Row> {
    let hub = HubProcess::start(binary, &[]).await?;
    let base = hub.memory("VmRSS:")?;
    let cpu = hub.cpu()?;
    let mut held = Vec::new();
    let mut statuses = Vec::new();
    for n in 0..3u8 {
        let client = from_address(10 + n)?;
        let (status, stream) =
            open_from(&client, &hub, &fifty(template, &format!("h{n}p"))).await?;
        statuses.push(status);
        held.extend(stream);
    }
    let cpu = hub.cpu()? - cpu;
    let rss = hub.memory("VmRSS:")? - base;
    let per_stream = match held.len() {
        0 => "none held".to_owned(),
        n => format!("{:.2}", rss / n as f64),
    };
    Ok(vec![
        ("answers", format!("{statuses:?}")),
        ("CPU (s)", format!("{cpu:.2}")),
        ("RSS per stream held (MiB)", per_stream),
    ])
}

/// A client whose connections come from `127.0.0.<last>`.
fn from_address(last: u8) -> BenchResult<reqwest::Client> {
    let address = std::net::IpAddr::from([127, 0, 0, last]);
    // ring for HTTPS (reqwest's own default provider is not built here).
    let _ = rustls::crypto::ring::default_provider().install_default();
    Ok(reqwest::Client::builder().local_address(address).build()?)
}

/// (2) 100 anonymous streams with 50 plain patterns each (distinct), then 30 publishes
/// of 100 distinct topics; a probe subscriber (`*`) times each delivery.
async fn cache(binary: &str) -> BenchResult<Row> {
    let hub = HubProcess::start(binary, &[]).await?;
    let base = hub.memory("VmRSS:")?;
    let mut held = Vec::new();
    for s in 0..100 {
        let (_, stream) = open(&hub, &fifty("/{i}/:x", &format!("s{s}p"))).await?;
        held.extend(stream);
    }
    let opened = hub.memory("VmRSS:")? - base;
    let mut probe = SseConnection::open(&hub.url(&format!("{HUB}?match=*")), &[]).await?;
    probe.next().await?; // retry:
    let token = publisher()?;
    let cpu = hub.cpu()?;
    let mut deliveries = Vec::new();
    for n in 0..30 {
        let topics: Vec<String> = (0..100).map(|k| format!("/t/{n}/{k}")).collect();
        let started = Instant::now();
        publish(&hub.base, &token, &update(&topics, &format!("u{n}"))).await?;
        probe.next_event().await?;
        deliveries.push(started.elapsed());
    }
    let cpu = hub.cpu()? - cpu;
    deliveries.sort();
    Ok(vec![
        ("RSS of the 100 streams (MiB)", format!("{opened:.0}")),
        ("CPU of the 30 publishes (s)", format!("{cpu:.2}")),
        (
            "delivery p50 / max (ms)",
            format!(
                "{} / {}",
                ms(percentile(&deliveries, 0.5)),
                ms(percentile(&deliveries, 1.0))
            ),
        ),
        ("peak RSS (MiB)", format!("{:.0}", hub.memory("VmHWM:")?)),
    ])
}

/// (2) With `--subscriptions`: 60 anonymous streams with 50 plain patterns each.
async fn announcements(binary: &str) -> BenchResult<Row> {
    let hub = HubProcess::start(binary, &["--subscriptions"]).await?;
    let base = hub.memory("VmRSS:")?;
    let cpu = hub.cpu()?;
    let mut held = Vec::new();
    for s in 0..60 {
        let (_, stream) = open(&hub, &fifty("/{i}/:x", &format!("a{s}p"))).await?;
        held.extend(stream);
    }
    let cpu = hub.cpu()? - cpu;
    Ok(vec![
        (
            "RSS of the 60 streams (MiB)",
            format!("{:.0}", hub.memory("VmRSS:")? - base),
        ),
        ("CPU (s)", format!("{cpu:.2}")),
    ])
}

/// (3) A history of 1,000 updates of 100 topics; one anonymous `earliest` with 50
/// patterns that none of them match but whose literal parts they all pass (the
/// costliest kind: every pattern's expression runs on every topic); publishes
/// meanwhile.
async fn replay(binary: &str) -> BenchResult<Row> {
    let hub = HubProcess::start(binary, &[]).await?;
    let token = publisher()?;
    for n in 0..1000 {
        let topics: Vec<String> = (0..100)
            .map(|k| format!("https://example.com/h/{n}/{k}"))
            .collect();
        publish(&hub.base, &token, &update(&topics, "h")).await?;
    }
    let patterns = fifty("https://example.com/:a/:b/:c/{i}", "e");
    let query = format!("last_event_id=earliest&{patterns}");
    // A publisher every 10 ms from before the subscribe to the replay's end: a replay
    // that holds the hub's lock (where the subscribe fixes its cursor, or reads) holds
    // up the publishes that fall in.
    let done = Arc::new(AtomicBool::new(false));
    let publishing = {
        let (done, base, token) = (Arc::clone(&done), hub.base.clone(), token.clone());
        tokio::spawn(async move {
            let mut latencies = Vec::new();
            while !done.load(Ordering::Relaxed) {
                let other = [("topic", "/other"), ("data", "x")];
                if let Ok((took, _)) = publish(&base, &token, &other).await {
                    latencies.push(took);
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            latencies
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let cpu = hub.cpu()?;
    let started = Instant::now();
    // The subscribe itself may take seconds (the hub fixed a replay's cursor under
    // its lock): read the stream as text, not through the tests' 10 s client.
    let url = hub.url(&format!("{HUB}?{query}"));
    let mut stream =
        tokio::time::timeout(Duration::from_secs(120), http().get(url).send()).await??;
    // Published after the subscribe: the replay has read everything when it arrives.
    let sentinel = [
        ("topic", "https://example.com/s/x/y/e0"),
        ("data", "sentinel"),
    ];
    publish(&hub.base, &token, &sentinel).await?;
    let mut text = String::new();
    while !text.contains("data: sentinel\n") {
        let chunk = tokio::time::timeout(Duration::from_secs(120), stream.chunk()).await??;
        text.push_str(&String::from_utf8_lossy(&chunk.ok_or("the stream ended")?));
    }
    let replayed = text.matches("\ndata: ").count().saturating_sub(1);
    let took = started.elapsed();
    done.store(true, Ordering::Relaxed);
    let mut latencies = publishing.await?;
    let cpu = hub.cpu()? - cpu;
    latencies.sort();
    Ok(vec![
        ("replay took (ms)", ms(took)),
        ("updates it sent (none match)", replayed.to_string()),
        ("CPU (s)", format!("{cpu:.2}")),
        (
            "publishes meanwhile: n, p50 / p99 / max (ms)",
            format!(
                "{}, {} / {} / {}",
                latencies.len(),
                ms(percentile(&latencies, 0.5)),
                ms(percentile(&latencies, 0.99)),
                ms(percentile(&latencies, 1.0))
            ),
        ),
    ])
}

/// (5) With `--subscriptions`: 1,000 updates, then 11 open/close cycles of 50 matchers;
/// does a resume with a good id, and `earliest`, still get the updates?
async fn flush(binary: &str) -> BenchResult<Row> {
    let hub = HubProcess::start(binary, &["--subscriptions", "--history", "1000"]).await?;
    let token = publisher()?;
    for n in 0..1000 {
        let id = format!("u{n}");
        let fields = [("topic", "t"), ("data", id.as_str()), ("id", id.as_str())];
        publish(&hub.base, &token, &fields).await?;
    }
    let plain: String = (0..50).map(|i| format!("match=m{i}&")).collect();
    for _ in 0..11 {
        drop(open(&hub, &plain).await?);
    }
    // The ends are announced once each stream is gone: give them a moment to land.
    tokio::time::sleep(Duration::from_millis(500)).await;
    publish(&hub.base, &token, &[("topic", "t"), ("data", "sentinel")]).await?;
    let mut outcomes = Vec::new();
    for query in [
        "match=t&last_event_id=u499",
        "match=t&last_event_id=earliest",
    ] {
        let mut stream = SseConnection::open(&hub.url(&format!("{HUB}?{query}")), &[]).await?;
        let (mut got, mut reset, mut sentinel) = (0, false, false);
        // Until the sentinel, or 3 s without an event (it was lost).
        while let Ok(event) = stream.next_within(Duration::from_secs(3)).await {
            match (event.event.as_deref(), event.data.as_deref()) {
                (Some("reset"), _) => reset = true,
                (_, Some("sentinel")) => {
                    sentinel = true;
                    break;
                }
                (_, Some(_)) => got += 1,
                _ => {}
            }
        }
        let reset = if reset { ", after a reset" } else { "" };
        let lost = if sentinel {
            ""
        } else {
            ", the newest (sent after them) never came"
        };
        outcomes.push(format!("{got} updates{reset}{lost}"));
    }
    Ok(vec![
        (
            "resume after u499 (500 retained after it)",
            outcomes[0].clone(),
        ),
        (
            "earliest (999 retained before the newest)",
            outcomes[1].clone(),
        ),
    ])
}

/// A URL pattern whose expression the hub accepts but that costs the most to run on a
/// long topic of `c`s (every topic passes its literal part, `/`): the largest `{0,K}`
/// the hub compiles, found by asking it.
async fn costliest_accepted(hub: &HubProcess) -> BenchResult<String> {
    for k in (50..=400).rev().step_by(10) {
        let pattern = format!("/:x([!-y]*[!-y]{{0,{k}}}az)");
        let (status, _) = open(hub, &format!("match_urlpattern={}", enc(&pattern))).await?;
        if status == 200 {
            return Ok(format!("/:x([!-y]*[!-y]{{0,{k}}}{{letter}}z)"));
        }
    }
    Err("no costly pattern was accepted".into())
}

/// (6) Costly patterns the hub accepts, from many addresses: 20 client addresses
/// (127.0.0.2-21) each open streams of 12 such patterns until the hub refuses one
/// (at most 60);
/// then 5 publishes of a 2 KB topic plus `/legit`, which an ordinary subscriber
/// selects exactly. What it does to the publishes, the ordinary subscriber's
/// deliveries and `/healthz`.
async fn accepted(binary: &str) -> BenchResult<Row> {
    let hub = HubProcess::start(binary, &[]).await?;
    let template = costliest_accepted(&hub).await?;
    let letters = "abcdefghijklmnopqrstuvwxy";
    let mut held = Vec::new();
    let mut refusals = std::collections::BTreeMap::new();
    for address in 2..22u8 {
        let client = from_address(address)?;
        for stream in 0..60 {
            let query: Vec<String> = letters
                .chars()
                .take(12)
                .map(|letter| {
                    let pattern = template
                        .replace("{letter}", &letter.to_string())
                        .replace("/:x", &format!("/:x{stream}"));
                    format!("match_urlpattern={}", enc(&pattern))
                })
                .collect();
            match open_from(&client, &hub, &query.join("&")).await? {
                (_, Some(stream)) => held.push(stream),
                (status, None) => {
                    *refusals.entry(status).or_insert(0) += 1;
                    break;
                }
            }
        }
    }
    let rss = hub.memory("VmRSS:")?;
    let mut legit = SseConnection::open(&hub.url(&format!("{HUB}?match=%2Flegit")), &[]).await?;
    let token = publisher()?;
    let stop = Arc::new(AtomicBool::new(false));
    let health = probe_health(&hub, Arc::clone(&stop));
    let cpu = hub.cpu()?;
    let (mut publishes, mut deliveries) = (Vec::new(), Vec::new());
    for n in 0..5 {
        let topics = [format!("/{n}{}", "c".repeat(2040)), "/legit".to_owned()];
        let data = format!("u{n}");
        let started = Instant::now();
        let (took, _) = publish(&hub.base, &token, &update(&topics, &data)).await?;
        publishes.push(took);
        loop {
            let event = legit.next_within(Duration::from_secs(120)).await?;
            if event.data.as_deref() == Some(data.as_str()) {
                break;
            }
        }
        deliveries.push(started.elapsed());
    }
    stop.store(true, Ordering::Relaxed);
    let health = health.await?;
    let cpu_delivered = hub.cpu()? - cpu;
    // Then until the hub is quiet (the costly subscribers' matching is done).
    let cpu_quiet = hub.cpu_once_quiet(Duration::from_secs(120)).await? - cpu;
    publishes.sort();
    deliveries.sort();
    let refused = refusals
        .iter()
        .map(|(status, n)| format!("{n} × {status}"))
        .collect::<Vec<_>>()
        .join(", ");
    Ok(vec![
        ("pattern (largest {0,K} accepted)", format!("`{template}`")),
        (
            "streams held (12 patterns each); refused",
            format!("{}; {refused}", held.len()),
        ),
        ("RSS with them (MiB)", format!("{rss:.0}")),
        (
            "publish p50 / max (ms)",
            format!(
                "{} / {}",
                ms(percentile(&publishes, 0.5)),
                ms(percentile(&publishes, 1.0))
            ),
        ),
        (
            "ordinary subscriber's delivery p50 / max (ms)",
            format!(
                "{} / {}",
                ms(percentile(&deliveries, 0.5)),
                ms(percentile(&deliveries, 1.0))
            ),
        ),
        ("slowest /healthz meanwhile (ms)", ms(health)),
        (
            "CPU until delivered; until quiet (s)",
            format!("{cpu_delivered:.2}; {cpu_quiet:.2}"),
        ),
    ])
}

/// (7) Replays that never read: 80 updates of 55 KB retained, then 500 anonymous
/// `match=*&last_event_id=earliest` streams (a 4 KiB receive buffer each) that read
/// nothing. What each holds while its client does not read.
async fn replay_memory(binary: &str) -> BenchResult<Row> {
    let hub = HubProcess::start(binary, &[]).await?;
    let token = publisher()?;
    let data = "x".repeat(55_000);
    for _ in 0..80 {
        publish(&hub.base, &token, &[("topic", "/big"), ("data", &data)]).await?;
    }
    let base = hub.memory("VmRSS:")?;
    let cpu = hub.cpu()?;
    let address: std::net::SocketAddr = hub.base.trim_start_matches("http://").parse()?;
    let request =
        format!("GET {HUB}?match=*&last_event_id=earliest HTTP/1.1\r\nHost: {address}\r\n\r\n");
    let mut held = Vec::new();
    for _ in 0..500 {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.set_recv_buffer_size(4096)?;
        let mut stream = socket.connect(address).await?;
        tokio::io::AsyncWriteExt::write_all(&mut stream, request.as_bytes()).await?;
        held.push(stream);
    }
    // Until the hub has written what it can.
    let last = hub.cpu_once_quiet(Duration::from_secs(30)).await?;
    let rss = hub.memory("VmRSS:")? - base;
    Ok(vec![
        (
            "RSS per stream not read (KiB)",
            format!("{:.0}", rss * 1024.0 / held.len() as f64),
        ),
        ("CPU (s)", format!("{:.2}", last - cpu)),
    ])
}

/// Runs every scenario for every binary, in turns; writes the results.
/// With `only` not empty, just the scenarios whose keys it lists, written to
/// `<date>-hostile-<keys>.md`.
pub async fn run(binaries: &[(String, String)], only: &[String], out: &str) -> BenchResult<()> {
    let scenarios: [(&str, &str); 10] = [
        ("1. 4 × 50 `\\w{100}` patterns, bad token", "refused-w"),
        ("1. 4 × 50 `\\p{L}{100}` patterns, bad token", "refused-p"),
        ("1. 3 streams × 50 `\\w{100}` patterns held", "held-w"),
        ("1. 3 streams × 50 `\\p{L}{100}` patterns held", "held-p"),
        (
            "2. 100 streams × 50 plain patterns, 30 publishes of 100 topics",
            "cache",
        ),
        (
            "2. --subscriptions, 60 streams × 50 plain patterns",
            "announcements",
        ),
        (
            "3. earliest over 1,000 updates × 100 topics, 50 patterns",
            "replay",
        ),
        (
            "5. --subscriptions, 11 cycles of 50 matchers, then resume",
            "flush",
        ),
        (
            "6. accepted costly patterns from 20 addresses, 5 publishes of a 2 KB topic",
            "accepted",
        ),
        (
            "7. 500 earliest replays of 80 × 55 KB that never read",
            "replay-memory",
        ),
    ];
    let mut md = String::new();
    let date = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let _ = writeln!(md, "# Hostile round three, {date}\n");
    let names: Vec<String> = binaries
        .iter()
        .map(|(n, p)| format!("{n} = `{p}`"))
        .collect();
    let _ = writeln!(
        md,
        "Command: `cargo run -p bench --release -- hostile {}` on {} cores, loopback. \
         Each scenario runs in a fresh hub process of each binary, the binaries taking \
         turns. CPU: the hub's user + system time from `/proc/<pid>/stat`; RSS: `VmRSS` \
         (over the process's start) or the peak `VmHWM`.\n",
        binaries
            .iter()
            .map(|(n, p)| format!("--binary {n}={p}"))
            .chain(only.iter().map(|key| format!("--only {key}")))
            .collect::<Vec<_>>()
            .join(" "),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
    let _ = writeln!(md, "Binaries: {}.\n", names.join(", "));
    let chosen = scenarios
        .into_iter()
        .filter(|(_, key)| only.is_empty() || only.iter().any(|o| o == key));
    for (title, key) in chosen {
        let _ = writeln!(md, "## {title}\n");
        let mut rows: Vec<(String, Row)> = Vec::new();
        for (name, binary) in binaries {
            eprintln!("{key}: {name}");
            let row = match key {
                "refused-w" => compile_refused(binary, r"/{i}/:x(\w{100})").await,
                "refused-p" => compile_refused(binary, r"/{i}/:x(\p{L}{100})").await,
                "held-w" => compile_held(binary, r"/{i}/:x(\w{100})").await,
                "held-p" => compile_held(binary, r"/{i}/:x(\p{L}{100})").await,
                "cache" => cache(binary).await,
                "announcements" => announcements(binary).await,
                "replay" => replay(binary).await,
                "accepted" => accepted(binary).await,
                "replay-memory" => replay_memory(binary).await,
                _ => flush(binary).await,
            };
            let row = row.unwrap_or_else(|e| vec![("failed", e.to_string())]);
            rows.push((name.clone(), row));
        }
        let labels: Vec<&str> = rows
            .iter()
            .flat_map(|(_, row)| row.iter().map(|(label, _)| *label))
            .fold(Vec::new(), |mut seen, label| {
                if !seen.contains(&label) {
                    seen.push(label);
                }
                seen
            });
        let _ = writeln!(
            md,
            "| | {} |",
            rows.iter()
                .map(|(n, _)| n.as_str())
                .collect::<Vec<_>>()
                .join(" | ")
        );
        let _ = writeln!(md, "|---|{}", "---:|".repeat(rows.len()));
        for label in labels {
            let cells: Vec<String> = rows
                .iter()
                .map(|(_, row)| {
                    row.iter()
                        .find(|(l, _)| *l == label)
                        .map_or_else(String::new, |(_, v)| v.clone())
                })
                .collect();
            let _ = writeln!(md, "| {label} | {} |", cells.join(" | "));
        }
        let _ = writeln!(md);
    }
    std::fs::create_dir_all(out)?;
    let path = match only {
        [] => format!("{out}/{date}-hostile.md"),
        keys => format!("{out}/{date}-hostile-{}.md", keys.join("-")),
    };
    std::fs::write(&path, &md)?;
    println!("{md}\nwrote {path}");
    Ok(())
}

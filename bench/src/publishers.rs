//! `bench publishers` (issue 44): many publishers at once, the load behind Mercure's
//! users' complaint about publishing (mercure#703: publishes taking 1.4 s at 500
//! virtual users). 500 publishers, each on a keep-alive connection of its own and each
//! publishing to its own topic at a fixed rate; 5,000 subscribers spread over the
//! topics, ten to a topic. Measured: how long a publish takes to be answered (p50, p99,
//! max), publish-to-receive latency, deliveries a second, loss, and the server's CPU per
//! delivered event (user and system apart) and KiB per stream. The servers are the hubs
//! with topics or channels: sse-topics, nchan (a channel from the query), Centrifugo (a
//! connection token per channel) and Mercure's hub on `local` and on `bolt`; they take
//! turns, their order reversed each round. Writes `<out>/<date>-publishers.md`.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::load::{
    BenchResult, EVENT_BYTES, PublishTimes, Publisher, Tally, close_clients, open_clients_on,
    stream_request, wait_delivered,
};
use crate::per_event::{TICK_US, cpu_ticks_apart, listed, median, package_version};
use crate::servers::Server;
use crate::{ServerProcess, centrifugo_stream};

const SERVERS: [Server; 5] = [
    Server::Topics,
    Server::Nchan,
    Server::Centrifugo,
    Server::Mercure,
    Server::MercureBolt,
];

/// (publishers, subscribers, publishes a second by each publisher).
const LOADS: [(usize, usize, u64); 2] = [(500, 5_000, 2), (500, 5_000, 10)];

/// What one run measured.
#[derive(Debug, Clone, Copy)]
struct Measured {
    /// A publish's answer time, microseconds: median, 99th percentile, most.
    publish_us: (u64, u64, u64),
    /// Publish-to-receive latency, microseconds: median, 99th percentile.
    receive_us: (u64, u64),
    published_per_sec: f64,
    delivered_per_sec: f64,
    /// Server CPU per delivered event, microseconds: user and system.
    user_us: f64,
    system_us: f64,
    kib_per_stream: f64,
    /// Deliveries missing at the end (each publish x its topic's subscribers -
    /// deliveries), and publishes answered with anything but `2xx`.
    lost: u64,
    refused: u64,
}

type Load = (usize, usize, u64);
type Runs = HashMap<(Server, Load), Vec<Measured>>;

/// Where a subscriber of topic `k` streams from, where its publisher posts and the
/// topic or channel it names.
fn topic_of(
    server: Server,
    process: &ServerProcess,
    k: usize,
) -> BenchResult<(String, String, String)> {
    let target = &process.target;
    Ok(match server {
        Server::Nchan => (
            format!("/topic/events?channel=t{k}"),
            format!("/topic/publish?channel=t{k}"),
            format!("t{k}"),
        ),
        Server::Centrifugo => (
            centrifugo_stream(&format!("t{k}"))?,
            target.publish_path.clone(),
            format!("t{k}"),
        ),
        // The Mercure hubs: one exact topic per subscriber.
        _ => {
            let topic = format!("https://example.com/books/{k}");
            let query: String = url::form_urlencoded::byte_serialize(topic.as_bytes()).collect();
            (
                format!("/.well-known/mercure?match={query}"),
                target.publish_path.clone(),
                topic,
            )
        }
    })
}

/// One run of `server` at `load`, measured for `measure` after a second of warm-up.
async fn measure(server: Server, load: Load, measure: Duration) -> BenchResult<Measured> {
    let (publishers, subscribers, rate) = load;
    let process = ServerProcess::spawn(server).await?;
    let pid = process.pid()?;
    let mut requests = Vec::with_capacity(publishers);
    let mut posts = Vec::with_capacity(publishers);
    for k in 0..publishers {
        let (stream, path, topic) = topic_of(server, &process, k)?;
        requests.push(Arc::<str>::from(stream_request(&stream, None)));
        posts.push((path, topic));
    }
    let baseline = process.rss_kib();
    let tally = Tally::new();
    let set = open_clients_on(
        process.target.addr,
        &requests,
        subscribers,
        Arc::clone(&tally),
    )
    .await?;
    // Let the connections settle before reading what they hold.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let kib_per_stream = process.rss_kib().saturating_sub(baseline) as f64 / subscribers as f64;

    let times = PublishTimes::new()?;
    let stop = Arc::new(AtomicBool::new(false));
    let published = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    let period = Duration::from_secs_f64(1.0 / rate.max(1) as f64);
    for (k, (path, topic)) in posts.into_iter().enumerate() {
        let mut publisher =
            Publisher::on_topic(&process.target, path, topic, Arc::clone(&times)).await?;
        let (stop, published) = (Arc::clone(&stop), Arc::clone(&published));
        // Spread over the period, so the publishers do not all fire at once.
        let first = tokio::time::Instant::now() + period.mul_f64(k as f64 / publishers as f64);
        tasks.spawn(async move {
            let mut ticks = tokio::time::interval_at(first, period);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut seq = 0u64;
            while !stop.load(Ordering::Relaxed) {
                ticks.tick().await;
                seq += 1;
                if let Err(e) = publisher.publish(seq).await {
                    return Err(e.to_string());
                }
                published.fetch_add(1, Ordering::Relaxed);
            }
            publisher.settle().await.map_err(|e| e.to_string())
        });
    }

    let snapshot = || -> BenchResult<(Instant, (u64, u64), u64, u64)> {
        Ok((
            Instant::now(),
            cpu_ticks_apart(pid)?,
            tally.delivered.load(Ordering::Relaxed),
            published.load(Ordering::Relaxed),
        ))
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    tally.recording.store(true, Ordering::Relaxed);
    times.recording.store(true, Ordering::Relaxed);
    let start = snapshot()?;
    tokio::time::sleep(measure).await;
    let end = snapshot()?;
    stop.store(true, Ordering::Relaxed);
    let mut failed = None;
    while let Some(joined) = tasks.join_next().await {
        if let Ok(Err(e)) = joined {
            failed = Some(e);
        }
    }
    if let Some(e) = failed {
        close_clients(&tally, set).await;
        return Err(format!("{}: a publisher failed: {e}", server.name()).into());
    }
    // Every publish goes to its topic's subscribers: as many as share its index.
    let per_topic = (subscribers / publishers) as u64;
    let expected = published.load(Ordering::Relaxed) * per_topic;
    wait_delivered(&tally, expected, Duration::from_secs(10)).await;
    tally.recording.store(false, Ordering::Relaxed);
    times.recording.store(false, Ordering::Relaxed);
    let delivered = tally.delivered.load(Ordering::Relaxed);
    close_clients(&tally, set).await;
    if delivered > expected {
        return Err(format!("{delivered} deliveries of {expected} expected").into());
    }
    let lost = (expected - delivered).max(tally.gaps.load(Ordering::Relaxed));

    let seconds = end.0.duration_since(start.0).as_secs_f64();
    let window_delivered = end.2 - start.2;
    if window_delivered == 0 {
        return Err(format!("{}: nothing delivered while measuring", server.name()).into());
    }
    let per_event = |ticks: u64| ticks as f64 * TICK_US / window_delivered as f64;
    let answered = times.recorded();
    let received = tally.latencies()?;
    Ok(Measured {
        publish_us: (
            answered.value_at_quantile(0.5),
            answered.value_at_quantile(0.99),
            answered.max(),
        ),
        receive_us: (
            received.value_at_quantile(0.5),
            received.value_at_quantile(0.99),
        ),
        published_per_sec: (end.3 - start.3) as f64 / seconds,
        delivered_per_sec: window_delivered as f64 / seconds,
        user_us: per_event(end.1.0 - start.1.0),
        system_us: per_event(end.1.1 - start.1.1),
        kib_per_stream,
        lost,
        refused: times.refused.load(Ordering::Relaxed),
    })
}

pub async fn suite(
    servers: &[Server],
    runs: usize,
    seconds: u64,
    quick: bool,
    out: &str,
) -> BenchResult<()> {
    let servers = if servers.is_empty() {
        &SERVERS[..]
    } else {
        servers
    };
    let (loads, runs): (&[Load], usize) = match quick {
        true => (&[(50, 500, 2)], 1),
        false => (&LOADS, runs),
    };
    let mut results = Runs::new();
    let mut failures = Vec::new();
    for run in 1..=runs {
        for &load in loads {
            let mut order = servers.to_vec();
            if run % 2 == 0 {
                order.reverse();
            }
            for server in order {
                let (p, n, rate) = load;
                eprintln!(
                    "run {run}: {} x {n}, {p} publishers at {rate}/s",
                    server.name()
                );
                match measure(server, load, Duration::from_secs(seconds)).await {
                    Ok(r) => results.entry((server, load)).or_default().push(r),
                    Err(e) => failures.push(format!(
                        "run {run}, {}, {p} publishers at {rate}/s to {n} subscribers: {e}",
                        server.name()
                    )),
                }
            }
        }
    }
    let date = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let only: String = match servers.len() == SERVERS.len() {
        true => String::new(),
        false => servers
            .iter()
            .filter_map(clap::ValueEnum::to_possible_value)
            .map(|v| format!(" --server {}", v.get_name()))
            .collect(),
    };
    let command = match quick {
        true => {
            format!("cargo run -p bench --release -- publishers --quick --seconds {seconds}{only}")
        }
        false => format!(
            "cargo run -p bench --release -- publishers --runs {runs} --seconds {seconds}{only}"
        ),
    };
    let md = markdown(&date, &command, servers, loads, &results, &failures);
    crate::per_event::write_results(out, &date, "publishers", &md)
}

fn figures(results: &Runs, key: (Server, Load), pick: impl Fn(&Measured) -> f64) -> Vec<f64> {
    results
        .get(&key)
        .map_or_else(Vec::new, |runs| runs.iter().map(pick).collect())
}

fn markdown(
    date: &str,
    command: &str,
    servers: &[Server],
    loads: &[Load],
    results: &Runs,
    failures: &[String],
) -> String {
    let mut md = String::new();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let _ = writeln!(md, "# Many publishers, every hub side by side, {date}\n");
    let _ = writeln!(
        md,
        "Command: `{command}` (peers installed by `bench/install-nchan.sh`, \
         `bench/install-centrifugo.sh` and `bench/build-mercure.sh`). {cores} cores shared by \
         the server and the load generator. Each publisher has a keep-alive HTTP/1.1 \
         connection of its own and publishes {EVENT_BYTES}-byte events to its own topic at a \
         fixed rate (the publishers spread over the period, up to 64 requests in flight \
         each); the subscribers are spread over the topics, as many on each. A publish's \
         answer time runs from its request's write to its whole answer. CPU is the server \
         process's user and system time from `/proc/<pid>/stat` over the measured window \
         (after 1 s of warm-up), divided by the events delivered in it; memory is the \
         server's RSS growth over the open streams, per stream. Each cell is the median of \
         the runs (every run is listed further down; the servers took turns, their order \
         reversed each round).\n\n\
         Servers: ours is sse-topics (each subscriber with one exact `match`, published as \
         Mercure's form with a token); nchan {} on Debian's nginx in one process (the \
         channel from the query, a message buffer of 1,000); Centrifugo v6.9.1 \
         (unidirectional SSE, each subscriber's connection token naming its channel, \
         published through its HTTP API); Mercure's hub (built from a dunglas/mercure \
         snapshot) with sse-topics' subscribers and updates, on `local` and on `bolt`.\n",
        package_version("libnginx-mod-nchan")
    );
    let names: Vec<&str> = servers.iter().map(|s| s.name()).collect();
    let header = |md: &mut String| {
        let _ = writeln!(md, "| load | {} |", names.join(" | "));
        let _ = writeln!(md, "|---|{}", "---:|".repeat(names.len()));
    };
    let label = |(p, n, rate): Load| format!("{p} x {rate}/s to {n}");
    let table = |md: &mut String, title: &str, cell: &dyn Fn((Server, Load)) -> String| {
        let _ = writeln!(md, "## {title}\n");
        header(md);
        for &load in loads {
            let cells: Vec<String> = servers.iter().map(|&s| cell((s, load))).collect();
            let _ = writeln!(md, "| {} | {} |", label(load), cells.join(" | "));
        }
        let _ = writeln!(md);
    };
    let med = |key, pick: fn(&Measured) -> f64| median(figures(results, key, pick));
    // The medians of `picks` at `key`, divided by `scale`, joined with " / ".
    type Pick = fn(&Measured) -> f64;
    let joined = |key, picks: &[Pick], scale: f64, digits: usize| -> String {
        let values: Option<Vec<String>> = picks
            .iter()
            .map(|&pick| med(key, pick).map(|v| format!("{:.digits$}", v / scale)))
            .collect();
        values.map_or("failed".to_owned(), |v| v.join(" / "))
    };
    let answers: [Pick; 3] = [
        |r| r.publish_us.0 as f64,
        |r| r.publish_us.1 as f64,
        |r| r.publish_us.2 as f64,
    ];
    table(
        &mut md,
        "Publish answer time (ms): p50 / p99 / max",
        &|key| joined(key, &answers, 1e3, 1),
    );
    table(
        &mut md,
        "CPU per delivered event (us): user + system",
        &|key| match (
            med(key, |r| r.user_us),
            med(key, |r| r.system_us),
            med(key, |r| r.user_us + r.system_us),
        ) {
            (Some(u), Some(k), Some(t)) => format!("**{t:.2}** ({u:.2} + {k:.2})"),
            _ => "failed".to_owned(),
        },
    );
    let receipts: [Pick; 2] = [|r| r.receive_us.0 as f64, |r| r.receive_us.1 as f64];
    table(
        &mut md,
        "Publish-to-receive latency (ms): p50 / p99",
        &|key| joined(key, &receipts, 1e3, 1),
    );
    let rates: [Pick; 2] = [|r| r.published_per_sec, |r| r.delivered_per_sec];
    table(&mut md, "Publishes and deliveries a second", &|key| {
        joined(key, &rates, 1.0, 0)
    });
    table(&mut md, "Memory per stream (KiB)", &|key| {
        med(key, |r| r.kib_per_stream).map_or("failed".to_owned(), |v| format!("{v:.1}"))
    });
    for (title, pick, digits) in [
        (
            "Every run: publish p99 (ms)",
            (|r| r.publish_us.1 as f64 / 1e3) as fn(&Measured) -> f64,
            1,
        ),
        (
            "Every run: publish max (ms)",
            |r| r.publish_us.2 as f64 / 1e3,
            1,
        ),
        (
            "Every run: CPU per delivered event (us)",
            |r| r.user_us + r.system_us,
            2,
        ),
        ("Every run: deliveries lost", |r| r.lost as f64, 0),
        ("Every run: publishes refused", |r| r.refused as f64, 0),
    ] {
        table(&mut md, title, &|key| {
            listed(&figures(results, key, pick), digits)
        });
    }
    if !failures.is_empty() {
        let _ = writeln!(md, "## Failed measurements\n");
        for failure in failures {
            let _ = writeln!(md, "- {failure}");
        }
    }
    md
}

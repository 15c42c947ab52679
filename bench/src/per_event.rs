//! Server CPU per delivered event at the loads users see: a few events per write. Two
//! regimes, each server in its own process:
//! - **gated**: the publisher waits for delivery and stays within `window` events of
//!   the average client, so a stream has at most that many events to batch;
//! - **rate**: a fixed number of events a second to every client.
//!
//! CPU is the server process's user + system time from `/proc/<pid>/stat`, read at the
//! start and the end of the measured window (after the streams are open and a second
//! of warm-up), divided by the events delivered in that window. It is the server's own
//! time, whatever the load generator beside it costs.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::Loaded;
use crate::load::{BenchResult, EVENT_BYTES, close_clients, gate, lost};
use crate::servers::Server;

/// How the publisher paces itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Regime {
    /// At most this many events ahead of the average client.
    Gated(u64),
    /// This many events a second.
    Rate(u64),
}

impl Regime {
    pub(crate) fn label(self) -> String {
        match self {
            Regime::Gated(window) => format!("gated, {window} in flight"),
            Regime::Rate(rate) => format!("{rate} events/s"),
        }
    }
}

/// What one run measured.
#[derive(Debug, Clone, Copy)]
pub struct PerEvent {
    /// Server CPU (user + system) per delivered event, microseconds.
    pub cpu_us: f64,
    /// Of it, user time (the server's own code) and system time (the kernel's: writes,
    /// wake-ups), microseconds per delivered event.
    pub user_us: f64,
    pub system_us: f64,
    /// Server CPU in use, cores.
    pub cores: f64,
    pub delivered_per_sec: f64,
    /// Events per client read that brought any: at least the events per server write.
    pub events_per_read: f64,
    /// Published x clients - delivered.
    pub lost: u64,
    /// Server memory per idle connection, KiB (RSS growth over the open streams).
    pub kib_per_idle_connection: f64,
    /// At a fixed rate: publish-to-receive latency over the measured window, median
    /// and 99th percentile, microseconds.
    pub latency_us: Option<(u64, u64)>,
}

/// `/proc/<pid>/stat`'s user + system time, in clock ticks (USER_HZ, 100 a second on
/// Linux whatever the kernel's own tick).
pub(crate) fn cpu_ticks(pid: u32) -> BenchResult<u64> {
    let (user, system) = cpu_ticks_apart(pid)?;
    Ok(user + system)
}

/// `/proc/<pid>/stat`'s user and system times apart, in clock ticks.
pub(crate) fn cpu_ticks_apart(pid: u32) -> BenchResult<(u64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // After the command name (in parentheses, and free to hold spaces): field 3 on.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .ok_or("unreadable /proc stat")?
        .1
        .split_whitespace()
        .collect();
    let field = |n: usize| -> BenchResult<u64> {
        Ok(fields.get(n - 3).ok_or("short /proc stat")?.parse()?)
    };
    Ok((field(14)?, field(15)?))
}

pub(crate) const TICK_US: f64 = 10_000.0;

/// One run: `server` with `clients` streams, paced by `regime`, measured for `measure`.
pub async fn measure(
    server: Server,
    clients: usize,
    regime: Regime,
    measure: Duration,
) -> BenchResult<PerEvent> {
    let Loaded {
        process,
        tally,
        clients: set,
        mut publisher,
        kib_per_idle_connection,
    } = Loaded::start(server, clients).await?;
    let pid = process.pid()?;
    let n = clients as u64;
    let mut ticks = tokio::time::interval(match regime {
        Regime::Rate(rate) => Duration::from_secs_f64(1.0 / rate.max(1) as f64),
        Regime::Gated(_) => Duration::from_secs(1),
    });
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);

    let snapshot = || -> BenchResult<(Instant, (u64, u64), u64, u64)> {
        Ok((
            Instant::now(),
            cpu_ticks_apart(pid)?,
            tally.delivered.load(Ordering::Relaxed),
            tally.reads.load(Ordering::Relaxed),
        ))
    };
    let warm_up = Duration::from_secs(1);
    let started = Instant::now();
    let mut from = None;
    let mut seq = 0u64;
    let (start, end) = loop {
        match regime {
            Regime::Gated(window) => {
                let wanted = seq.saturating_sub(window) * n;
                gate(&tally, wanted, server.name()).await?;
            }
            Regime::Rate(_) => {
                ticks.tick().await;
            }
        }
        seq += 1;
        publisher.publish(seq).await?;
        match from {
            None if started.elapsed() >= warm_up => {
                // Latency is recorded at a fixed rate only: a gated publisher waits.
                let fixed = matches!(regime, Regime::Rate(_));
                tally.recording.store(fixed, Ordering::Relaxed);
                from = Some(snapshot()?);
            }
            Some(start) if start.0.elapsed() >= measure => break (start, snapshot()?),
            _ => {}
        }
    };
    let lost = lost(&tally, seq, clients).await?;
    let recorded = tally.recording.swap(false, Ordering::Relaxed);
    close_clients(&tally, set).await;
    let latency_us = match recorded {
        true => {
            let histogram = tally.latencies()?;
            Some((
                histogram.value_at_quantile(0.5),
                histogram.value_at_quantile(0.99),
            ))
        }
        false => None,
    };

    let seconds = end.0.duration_since(start.0).as_secs_f64();
    let user_us = (end.1.0 - start.1.0) as f64 * TICK_US;
    let system_us = (end.1.1 - start.1.1) as f64 * TICK_US;
    let cpu_us = user_us + system_us;
    let (delivered, reads) = (end.2 - start.2, end.3 - start.3);
    if delivered == 0 {
        return Err(format!("{}: nothing delivered while measuring", server.name()).into());
    }
    Ok(PerEvent {
        cpu_us: cpu_us / delivered as f64,
        user_us: user_us / delivered as f64,
        system_us: system_us / delivered as f64,
        cores: cpu_us / 1e6 / seconds,
        delivered_per_sec: delivered as f64 / seconds,
        events_per_read: delivered as f64 / reads.max(1) as f64,
        lost,
        kib_per_idle_connection,
        latency_us,
    })
}

/// The servers compared: ours on both serving paths, axum, the ceiling.
const SERVERS: [Server; 4] = [Server::Ours, Server::Lean, Server::Axum, Server::Ceiling];

pub(crate) type Runs = HashMap<(Server, usize, Regime), Vec<PerEvent>>;

/// `runs` rounds of every server at every load (clients, fixed rate), gated within
/// `window` and at the rate, the servers' order reversed each round: what each
/// measured, and the measurements that failed.
pub(crate) async fn rounds(
    servers: &[Server],
    loads: &[(usize, u64)],
    window: u64,
    runs: usize,
    seconds: u64,
) -> (Runs, Vec<String>) {
    let seconds = Duration::from_secs(seconds);
    let measurements: Vec<_> = loads
        .iter()
        .flat_map(|&(n, rate)| {
            [Regime::Gated(window), Regime::Rate(rate)].map(|regime| (n, regime, seconds))
        })
        .collect();
    rounds_of(servers, &measurements, runs).await
}

/// `runs` rounds of every server at every `(clients, regime, how long)`, the servers'
/// order reversed each round: what each measured, and the measurements that failed.
pub(crate) async fn rounds_of(
    servers: &[Server],
    measurements: &[(usize, Regime, Duration)],
    runs: usize,
) -> (Runs, Vec<String>) {
    let mut results = Runs::new();
    let mut failures = Vec::new();
    for run in 1..=runs {
        for &(n, regime, measured) in measurements {
            let mut order = servers.to_vec();
            if run % 2 == 0 {
                order.reverse();
            }
            for server in order {
                eprintln!("run {run}: {} x {n}, {}", server.name(), regime.label());
                match measure(server, n, regime, measured).await {
                    Ok(r) => results.entry((server, n, regime)).or_default().push(r),
                    Err(e) => failures.push(format!(
                        "run {run}, {}, {n} clients, {}: {e}",
                        server.name(),
                        regime.label()
                    )),
                }
            }
        }
    }
    (results, failures)
}

/// A table cell of CPU per delivered event at `key`: the median in bold, then the
/// medians of its user and system parts; `failed` when nothing was measured.
pub(crate) fn cpu_cell(results: &Runs, key: (Server, usize, Regime)) -> String {
    let total = median(figures(results, key, |r| r.cpu_us));
    let user = median(figures(results, key, |r| r.user_us));
    let system = median(figures(results, key, |r| r.system_us));
    match (total, user, system) {
        (Some(t), Some(u), Some(k)) => format!("**{t:.2}** ({u:.2} + {k:.2})"),
        _ => "failed".to_owned(),
    }
}

/// The installed version of a Debian package (empty when unknown).
pub(crate) fn package_version(package: &str) -> String {
    std::process::Command::new("dpkg-query")
        .args(["-W", "-f=${Version}", package])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// Writes a suite's `md` to `<out>/<date>-<name>.md` and prints it.
pub(crate) fn write_results(out: &str, date: &str, name: &str, md: &str) -> BenchResult<()> {
    std::fs::create_dir_all(out)?;
    let path = format!("{out}/{date}-{name}.md");
    std::fs::write(&path, md)?;
    println!("{md}\nwrote {path}");
    Ok(())
}

/// Every server at every load, `runs` rounds with the servers' order reversed each
/// round; writes `<out>/<date>-per-event.md`.
pub async fn suite(runs: usize, seconds: u64, quick: bool, out: &str) -> BenchResult<()> {
    // Clients, and the fixed rate for that many (a few events per write at the most).
    let loads: &[(usize, u64)] = if quick {
        &[(100, 50), (500, 20)]
    } else {
        &[(1_000, 100), (5_000, 50), (19_000, 20)]
    };
    let window = 4;
    let (results, failures) = rounds(&SERVERS, loads, window, runs, seconds).await;
    let date = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let command = if quick {
        format!("cargo run -p bench --release -- per-event --quick --seconds {seconds}")
    } else {
        format!("cargo run -p bench --release -- per-event --runs {runs} --seconds {seconds}")
    };
    let md = markdown(&date, &command, loads, window, &results, &failures);
    write_results(out, &date, "per-event", &md)
}

/// Each run's figure, in run order.
pub(crate) fn figures(
    results: &Runs,
    key: (Server, usize, Regime),
    pick: impl Fn(&PerEvent) -> f64,
) -> Vec<f64> {
    results
        .get(&key)
        .map_or_else(Vec::new, |runs| runs.iter().map(pick).collect())
}

pub(crate) fn median(mut values: Vec<f64>) -> Option<f64> {
    values.sort_by(|a, b| a.total_cmp(b));
    values.get(values.len() / 2).copied()
}

pub(crate) fn listed(values: &[f64], digits: usize) -> String {
    if values.is_empty() {
        return "failed".to_owned();
    }
    let parts: Vec<String> = values.iter().map(|v| format!("{v:.digits$}")).collect();
    parts.join(", ")
}

fn ratio(results: &Runs, a: (Server, usize, Regime), b: (Server, usize, Regime)) -> String {
    let cpu = |key| figures(results, key, |r| r.cpu_us);
    ratio_of_medians(cpu(a), cpu(b))
}

/// `a / b` of the medians, as `1.02x` (`-` when either has none).
pub(crate) fn ratio_of_medians(a: Vec<f64>, b: Vec<f64>) -> String {
    match (median(a), median(b)) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}x", a / b),
        _ => "-".to_owned(),
    }
}

fn markdown(
    date: &str,
    command: &str,
    loads: &[(usize, u64)],
    window: u64,
    results: &Runs,
    failures: &[String],
) -> String {
    let mut md = String::new();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let _ = writeln!(md, "# Server CPU per delivered event, {date}\n");
    let _ = writeln!(
        md,
        "Command: `{command}`. {cores} cores shared by the server and the load generator; \
         {EVENT_BYTES}-byte events over loopback HTTP/1.1. CPU is the server process's user + \
         system time from `/proc/<pid>/stat` over the measured window (the streams already \
         open, after 1 s of warm-up), divided by the events delivered in it. Each cell lists \
         every run in order (the servers took turns, their order reversed each round); ratios \
         are of medians. \"Events per read\" (per client socket read) bounds the events per \
         server write from above. Regimes: *gated* keeps the publisher within {window} events of \
         the average client; *N events/s* publishes at that fixed rate.\n"
    );
    let names: Vec<&str> = SERVERS.iter().map(|s| s.name()).collect();
    let _ = writeln!(md, "## CPU per delivered event (us)\n");
    let _ = writeln!(
        md,
        "| clients, regime | {} | ours / axum | lean / axum | ours / ceiling | events per read (ours) | deliveries/s (ours) |",
        names.join(" | ")
    );
    let _ = writeln!(
        md,
        "|---|{}---:|---:|---:|---:|---:|",
        "---:|".repeat(names.len())
    );
    for &(n, rate) in loads {
        for regime in [Regime::Gated(window), Regime::Rate(rate)] {
            let key = |s| (s, n, regime);
            let cells: Vec<String> = SERVERS
                .iter()
                .map(|&s| listed(&figures(results, key(s), |r| r.cpu_us), 2))
                .collect();
            let per_read = figures(results, key(Server::Ours), |r| r.events_per_read);
            let rate = figures(results, key(Server::Ours), |r| r.delivered_per_sec / 1e3);
            let _ = writeln!(
                md,
                "| {n}, {} | {} | {} | {} | {} | {} | {}k |",
                regime.label(),
                cells.join(" | "),
                ratio(results, key(Server::Ours), key(Server::Axum)),
                ratio(results, key(Server::Lean), key(Server::Axum)),
                ratio(results, key(Server::Ours), key(Server::Ceiling)),
                listed(&per_read, 1),
                listed(&rate, 0),
            );
        }
    }
    let _ = writeln!(md, "\n## Server CPU in use (cores)\n");
    let _ = writeln!(md, "| clients, regime | {} |", names.join(" | "));
    let _ = writeln!(md, "|---|{}", "---:|".repeat(names.len()));
    for &(n, rate) in loads {
        for regime in [Regime::Gated(window), Regime::Rate(rate)] {
            let cells: Vec<String> = SERVERS
                .iter()
                .map(|&s| listed(&figures(results, (s, n, regime), |r| r.cores), 2))
                .collect();
            let _ = writeln!(md, "| {n}, {} | {} |", regime.label(), cells.join(" | "));
        }
    }
    let _ = writeln!(
        md,
        "\n## Memory per idle connection (KiB, RSS growth over the open streams)\n"
    );
    let _ = writeln!(md, "| clients | {} |", names.join(" | "));
    let _ = writeln!(md, "|---:|{}", "---:|".repeat(names.len()));
    for &(n, rate) in loads {
        let cells: Vec<String> = SERVERS
            .iter()
            .map(|&s| {
                let mut all = figures(results, (s, n, Regime::Gated(window)), |r| {
                    r.kib_per_idle_connection
                });
                all.extend(figures(results, (s, n, Regime::Rate(rate)), |r| {
                    r.kib_per_idle_connection
                }));
                listed(&all, 1)
            })
            .collect();
        let _ = writeln!(md, "| {n} | {} |", cells.join(" | "));
    }
    let lost: u64 = results.values().flatten().map(|r| r.lost).sum();
    let _ = writeln!(
        md,
        "\n## Loss\n\nEvents published but not delivered (published x clients - delivered), all runs: {lost}."
    );
    if !failures.is_empty() {
        let _ = writeln!(md, "\n## Failed measurements\n");
        for failure in failures {
            let _ = writeln!(md, "- {failure}");
        }
    }
    md
}

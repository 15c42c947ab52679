//! One event per write, where most deployments live (issue 45): a few events a second to
//! thousands of clients, so every event is a write of its own to every client. Ours
//! against the raw-write ceiling, axum, nchan (nginx) and Centrifugo, at 1,000 and 5,000 clients and
//! 1 and 10 events a second, in alternating rounds, with the server's CPU split into
//! user time (its own code) and system time (the kernel's: writes and wake-ups).

use std::fmt::Write as _;
use std::time::Duration;

use crate::load::{BenchResult, EVENT_BYTES};
use crate::per_event::{
    Regime, Runs, cpu_cell, figures, listed, package_version, ratio_of_medians, rounds_of,
    write_results,
};
use crate::servers::Server;

/// The servers compared, ours first.
const SERVERS: [Server; 5] = [
    Server::Ours,
    Server::Ceiling,
    Server::Axum,
    Server::Nchan,
    Server::Centrifugo,
];

/// (clients, events a second).
const LOADS: [(usize, u64); 4] = [(1_000, 1), (1_000, 10), (5_000, 1), (5_000, 10)];

/// How long a load is measured: `seconds`, twice that at one event a second (ten times
/// fewer deliveries to count CPU ticks over).
fn measured(seconds: u64, rate: u64) -> Duration {
    Duration::from_secs(if rate == 1 { seconds * 2 } else { seconds })
}

/// `runs` rounds, the servers' order reversed each round; writes
/// `<out>/<date>-one-per-write.md`.
pub async fn suite(runs: usize, seconds: u64, out: &str) -> BenchResult<()> {
    let measurements: Vec<_> = LOADS
        .iter()
        .map(|&(n, rate)| (n, Regime::Rate(rate), measured(seconds, rate)))
        .collect();
    let (results, failures) = rounds_of(&SERVERS, &measurements, runs).await;
    let date = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let command =
        format!("cargo run -p bench --release -- one-per-write --runs {runs} --seconds {seconds}");
    let md = markdown(&date, &command, seconds, &results, &failures);
    write_results(out, &date, "one-per-write", &md)
}

fn markdown(
    date: &str,
    command: &str,
    seconds: u64,
    results: &Runs,
    failures: &[String],
) -> String {
    let mut md = String::new();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let nchan = package_version("libnginx-mod-nchan");
    let _ = writeln!(md, "# One event per write, {date}\n");
    let _ = writeln!(
        md,
        "Command: `{command}` ({seconds} s measured at 10 events/s, {} s at 1/s). {cores} cores \
         shared by the server and the load generator; {EVENT_BYTES}-byte events over loopback \
         HTTP/1.1, published at a fixed rate. CPU is the server process's time from \
         `/proc/<pid>/stat` over the measured window (the streams open, after 1 s of warm-up), \
         divided by the events delivered in it, user and system apart. Each cell lists every \
         run in order (the servers took turns, their order reversed each round); ratios are of \
         medians. Servers: ours (sse-resume's hub on `salvo::Server`), the ceiling (no \
         framework: each event formatted once and written to the sockets directly), axum \
         (`tokio::sync::broadcast` + `axum::response::sse::Sse`), nchan {nchan} (Debian's \
         `libnginx-mod-nchan` on nginx, one process: `master_process off`, \
         `nchan_subscriber eventsource`, a message buffer of 1,000), Centrifugo v6.9.1 \
         (`bench/install-centrifugo.sh`, from the Go module proxy; unidirectional SSE, \
         each client subscribed by its connection token's `channels`, published through \
         its HTTP API, a history of 1,000 per channel, its defaults otherwise).\n",
        seconds * 2
    );
    let names: Vec<&str> = SERVERS.iter().map(|s| s.name()).collect();
    let _ = writeln!(md, "## CPU per delivered event (us): user + system\n");
    let _ = writeln!(
        md,
        "| clients x rate | {} | ours / ceiling | ours / nchan | ours / axum | ours / Centrifugo |",
        names.join(" | ")
    );
    let _ = writeln!(
        md,
        "|---|{}---:|---:|---:|---:|",
        "---:|".repeat(names.len())
    );
    for (n, rate) in LOADS {
        let key = |s| (s, n, Regime::Rate(rate));
        let cells: Vec<String> = SERVERS.iter().map(|&s| cpu_cell(results, key(s))).collect();
        let cpu = |s| figures(results, key(s), |r| r.cpu_us);
        let _ = writeln!(
            md,
            "| {n} x {rate}/s | {} | {} | {} | {} | {} |",
            cells.join(" | "),
            ratio_of_medians(cpu(Server::Ours), cpu(Server::Ceiling)),
            ratio_of_medians(cpu(Server::Ours), cpu(Server::Nchan)),
            ratio_of_medians(cpu(Server::Ours), cpu(Server::Axum)),
            ratio_of_medians(cpu(Server::Ours), cpu(Server::Centrifugo)),
        );
    }
    let _ = writeln!(
        md,
        "\nCells: the median, then its user and system parts (medians of each, so they need \
         not add up exactly).\n"
    );
    for (title, pick, digits) in [
        ("Every run: CPU per delivered event (us)", 0, 2),
        ("Every run: user time per delivered event (us)", 1, 2),
        ("Every run: system time per delivered event (us)", 2, 2),
        ("Every run: p50 latency (ms)", 3, 1),
        ("Every run: KiB per idle stream", 4, 1),
        ("Every run: events lost", 5, 0),
    ] {
        let _ = writeln!(md, "## {title}\n");
        let _ = writeln!(md, "| clients x rate | {} |", names.join(" | "));
        let _ = writeln!(md, "|---|{}", "---:|".repeat(names.len()));
        for (n, rate) in LOADS {
            let cells: Vec<String> = SERVERS
                .iter()
                .map(|&s| {
                    let values = figures(results, (s, n, Regime::Rate(rate)), |r| match pick {
                        0 => r.cpu_us,
                        1 => r.user_us,
                        2 => r.system_us,
                        3 => r.latency_us.map_or(f64::NAN, |(p50, _)| p50 as f64 / 1e3),
                        4 => r.kib_per_idle_connection,
                        _ => r.lost as f64,
                    });
                    listed(&values, digits)
                })
                .collect();
            let _ = writeln!(md, "| {n} x {rate}/s | {} |", cells.join(" | "));
        }
        let _ = writeln!(md);
    }
    if !failures.is_empty() {
        let _ = writeln!(md, "## Failed measurements\n");
        for failure in failures {
            let _ = writeln!(md, "- {failure}");
        }
    }
    md
}

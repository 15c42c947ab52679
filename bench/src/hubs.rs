//! `bench hubs`: sse-topics against Mercure's own hub, each in its own process, at the
//! loads of issue 34: 1,000 and 5,000 anonymous subscribers with three matchers each
//! (two exact topics no update has, one URL pattern every update matches), one topic
//! per update (a thousand in turn), published as Mercure's form with a token. Both
//! regimes of `per-event` (gated on delivery, and a fixed rate, where the latency from
//! publish to receipt is recorded too); the servers take turns, their order reversed
//! each round. Writes `<out>/<date>-hubs.md`.

use std::fmt::Write as _;

use crate::load::{BenchResult, EVENT_BYTES};
use crate::per_event::{
    PerEvent, Regime, Runs, figures, listed, median, ratio_of_medians, rounds, write_results,
};
use crate::servers::Server;

const HUBS: [Server; 2] = [Server::Topics, Server::Mercure];
/// The publisher's lead over the average subscriber, gated.
const WINDOW: u64 = 4;

pub async fn suite(runs: usize, seconds: u64, quick: bool, out: &str) -> BenchResult<()> {
    // Subscribers, and a fixed rate giving 50,000 deliveries a second at both loads.
    let loads: &[(usize, u64)] = if quick {
        &[(200, 50)]
    } else {
        &[(1_000, 50), (5_000, 10)]
    };
    let (results, failures) = rounds(&HUBS, loads, WINDOW, runs, seconds).await;
    let date = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let command = match quick {
        true => format!("cargo run -p bench --release -- hubs --quick --seconds {seconds}"),
        false => format!("cargo run -p bench --release -- hubs --runs {runs} --seconds {seconds}"),
    };
    let md = markdown(&date, &command, loads, &results, &failures);
    write_results(out, &date, "hubs", &md)
}

fn markdown(
    date: &str,
    command: &str,
    loads: &[(usize, u64)],
    results: &Runs,
    failures: &[String],
) -> String {
    let mut md = String::new();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let _ = writeln!(md, "# sse-topics and Mercure's hub, {date}\n");
    let _ = writeln!(
        md,
        "Command: `{command}` (Mercure's hub built by `bench/build-mercure.sh` from a \
         dunglas/mercure snapshot). {cores} cores shared by the hub and the load generator, \
         loopback HTTP/1.1. Both hubs: plain HTTP, HS256 tokens with issuer and audience, \
         anonymous subscribers, no subscriptions API; Mercure on its default transport \
         (local, no history), ours with its 4,096-update history. Every subscriber has three \
         matchers (two exact topics no update has, and the URL pattern \
         `https://example.com/books/:id`); each update has one topic \
         (`https://example.com/books/N`, N in turn from 0 to 999) and {EVENT_BYTES} bytes of \
         data, published as Mercure's form with a bearer token. CPU is the hub process's user \
         + system time over the measured window (after 1 s of warm-up), divided by the \
         events delivered in it; memory is the hub's RSS growth over the open streams, per \
         stream. Each cell lists every run in order; ratios are of medians.\n"
    );
    let _ = writeln!(
        md,
        "## CPU per delivered event (us) and memory per stream (KiB)\n"
    );
    let _ = writeln!(
        md,
        "| subscribers, regime | ours | Mercure | ours / Mercure | KiB ours | KiB Mercure | KiB ours / Mercure | events per read (ours, Mercure) |"
    );
    let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---:|");
    for &(n, rate) in loads {
        for regime in [Regime::Gated(WINDOW), Regime::Rate(rate)] {
            let of = |hub, pick: fn(&PerEvent) -> f64| figures(results, (hub, n, regime), pick);
            let cpu = (
                of(Server::Topics, |r| r.cpu_us),
                of(Server::Mercure, |r| r.cpu_us),
            );
            let kib = (
                of(Server::Topics, |r| r.kib_per_idle_connection),
                of(Server::Mercure, |r| r.kib_per_idle_connection),
            );
            let per_read = (
                median(of(Server::Topics, |r| r.events_per_read)).unwrap_or(0.0),
                median(of(Server::Mercure, |r| r.events_per_read)).unwrap_or(0.0),
            );
            let _ = writeln!(
                md,
                "| {n}, {} | {} | {} | {} | {} | {} | {} | {:.1}, {:.1} |",
                regime.label(),
                listed(&cpu.0, 2),
                listed(&cpu.1, 2),
                ratio_of_medians(cpu.0.clone(), cpu.1.clone()),
                listed(&kib.0, 1),
                listed(&kib.1, 1),
                ratio_of_medians(kib.0.clone(), kib.1.clone()),
                per_read.0,
                per_read.1,
            );
        }
    }
    let _ = writeln!(
        md,
        "\n## Publish-to-receive latency at the fixed rate (ms, p50 / p99 per run)\n"
    );
    let _ = writeln!(md, "| subscribers, rate | ours | Mercure |");
    let _ = writeln!(md, "|---|---:|---:|");
    for &(n, rate) in loads {
        let cell = |hub| {
            let runs = results.get(&(hub, n, Regime::Rate(rate)));
            let parts: Vec<String> = runs
                .into_iter()
                .flatten()
                .filter_map(|r| r.latency_us)
                .map(|(p50, p99)| format!("{:.1} / {:.1}", p50 as f64 / 1e3, p99 as f64 / 1e3))
                .collect();
            if parts.is_empty() {
                "failed".to_owned()
            } else {
                parts.join(", ")
            }
        };
        let _ = writeln!(
            md,
            "| {n}, {} | {} | {} |",
            Regime::Rate(rate).label(),
            cell(Server::Topics),
            cell(Server::Mercure)
        );
    }
    let _ = writeln!(md, "\n## Server CPU in use (cores)\n");
    let _ = writeln!(md, "| subscribers, regime | ours | Mercure |");
    let _ = writeln!(md, "|---|---:|---:|");
    for &(n, rate) in loads {
        for regime in [Regime::Gated(WINDOW), Regime::Rate(rate)] {
            let cores = |hub| listed(&figures(results, (hub, n, regime), |r| r.cores), 2);
            let _ = writeln!(
                md,
                "| {n}, {} | {} | {} |",
                regime.label(),
                cores(Server::Topics),
                cores(Server::Mercure)
            );
        }
    }
    let lost = |hub| -> u64 {
        results
            .iter()
            .filter(|((h, ..), _)| *h == hub)
            .flat_map(|(_, runs)| runs.iter().map(|r| r.lost))
            .sum()
    };
    let _ = writeln!(
        md,
        "\n## Loss\n\nEvents published but not delivered, all runs: ours {}, Mercure {}.",
        lost(Server::Topics),
        lost(Server::Mercure)
    );
    if !failures.is_empty() {
        let _ = writeln!(md, "\n## Failed measurements\n");
        for failure in failures {
            let _ = writeln!(md, "- {failure}");
        }
    }
    md
}

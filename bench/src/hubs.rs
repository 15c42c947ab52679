//! `bench hubs`: sse-topics against Mercure's own hub (on its `local` transport, and on
//! `bolt`, its documented default, with a history as long as ours), each in its own
//! process, at the
//! loads of issue 34: 1,000 and 5,000 anonymous subscribers with three matchers each
//! (two exact topics no update has, one URL pattern every update matches), one topic
//! per update (a thousand in turn), published as Mercure's form with a token. Both
//! regimes of `per-event` (gated on delivery, and a fixed rate, where the latency from
//! publish to receipt is recorded too); the servers take turns, their order reversed
//! each round. Writes `<out>/<date>-hubs.md`.

use std::fmt::Write as _;

use crate::load::{BenchResult, EVENT_BYTES};
use crate::per_event::{
    PerEvent, Regime, Runs, figures, listed, ratio_of_medians, rounds, write_results,
};
use crate::servers::Server;

const HUBS: [Server; 3] = [Server::Topics, Server::Mercure, Server::MercureBolt];
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
         loopback HTTP/1.1. Every hub: plain HTTP, HS256 tokens with issuer and audience, \
         anonymous subscribers, no subscriptions API; Mercure on its `local` transport (no \
         history) and on `bolt` (its documented default: BoltDB in a file, `size 4096`, \
         its default `cleanup_frequency`), ours with its 4,096-update history. Every subscriber has three \
         matchers (two exact topics no update has, and the URL pattern \
         `https://example.com/books/:id`); each update has one topic \
         (`https://example.com/books/N`, N in turn from 0 to 999) and {EVENT_BYTES} bytes of \
         data, published as Mercure's form with a bearer token. CPU is the hub process's user \
         + system time over the measured window (after 1 s of warm-up), divided by the \
         events delivered in it; memory is the hub's RSS growth over the open streams, per \
         stream. Each cell lists every run in order; ratios are of medians.\n"
    );
    let names: Vec<&str> = HUBS.iter().map(|h| h.name()).collect();
    let header = |md: &mut String, first: &str, ratios: bool| {
        let ratio_names: Vec<String> = match ratios {
            true => HUBS[1..]
                .iter()
                .map(|h| format!("ours / {}", h.name()))
                .collect(),
            false => Vec::new(),
        };
        let all: Vec<String> = names
            .iter()
            .map(|n| n.to_string())
            .chain(ratio_names)
            .collect();
        let _ = writeln!(md, "| {first} | {} |", all.join(" | "));
        let _ = writeln!(md, "|---|{}", "---:|".repeat(all.len()));
    };
    type Pick = fn(&PerEvent) -> f64;
    for (title, pick, digits) in [
        ("CPU per delivered event (us)", (|r| r.cpu_us) as Pick, 2),
        ("Memory per stream (KiB)", |r| r.kib_per_idle_connection, 1),
        (
            "Events per read (at least the events per write)",
            |r| r.events_per_read,
            1,
        ),
        ("Server CPU in use (cores)", |r| r.cores, 2),
    ] {
        let _ = writeln!(md, "## {title}\n");
        let ratios = title.starts_with("CPU") || title.starts_with("Memory");
        header(&mut md, "subscribers, regime", ratios);
        for &(n, rate) in loads {
            for regime in [Regime::Gated(WINDOW), Regime::Rate(rate)] {
                let of = |hub| figures(results, (hub, n, regime), pick);
                let mut cells: Vec<String> = HUBS.iter().map(|&h| listed(&of(h), digits)).collect();
                if ratios {
                    for &peer in &HUBS[1..] {
                        cells.push(ratio_of_medians(of(Server::Topics), of(peer)));
                    }
                }
                let _ = writeln!(md, "| {n}, {} | {} |", regime.label(), cells.join(" | "));
            }
        }
        let _ = writeln!(md);
    }
    let _ = writeln!(
        md,
        "## Publish-to-receive latency at the fixed rate (ms, p50 / p99 per run)\n"
    );
    header(&mut md, "subscribers, rate", false);
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
        let cells: Vec<String> = HUBS.iter().map(|&h| cell(h)).collect();
        let _ = writeln!(
            md,
            "| {n}, {} | {} |",
            Regime::Rate(rate).label(),
            cells.join(" | ")
        );
    }
    let lost = |hub| -> u64 {
        results
            .iter()
            .filter(|((h, ..), _)| *h == hub)
            .flat_map(|(_, runs)| runs.iter().map(|r| r.lost))
            .sum()
    };
    let losses: Vec<String> = HUBS
        .iter()
        .map(|&h| format!("{} {}", h.name(), lost(h)))
        .collect();
    let _ = writeln!(
        md,
        "\n## Loss\n\nEvents published but not delivered, all runs: {}.",
        losses.join(", ")
    );
    if !failures.is_empty() {
        let _ = writeln!(md, "\n## Failed measurements\n");
        for failure in failures {
            let _ = writeln!(md, "- {failure}");
        }
    }
    md
}

//! `bench peers` (issue 44): the hubs a user would pick instead of ours, side by side on
//! the broadcast workload (every subscriber gets every event) at a fixed rate, at 1,000,
//! 5,000 and 19,000 subscribers (the open-files limit of one process here): the cost
//! curve, CPU per delivered event (user and system apart) and KiB per stream. With
//! `--gated`, the same servers gated instead (the publisher at most [`WINDOW`] events
//! ahead of the average subscriber: as fast as each hub delivers, many events a
//! write). Ours twice: sse-resume's hub (a plain broadcast) and sse-topics (the Mercure
//! hub, whose subscribers have three matchers, one a URL pattern every update matches,
//! as `bench hubs` has them); the peers: nchan, Centrifugo, and Mercure's hub on
//! `local` and on `bolt`, with their topic workload as sse-topics'. The servers take turns, their
//! order reversed each round. Writes `<out>/<date>-peers.md` and `<date>-peers.svg`.

use std::fmt::Write as _;
use std::time::Duration;

use plotters::prelude::*;

use crate::load::{BenchResult, EVENT_BYTES};
use crate::per_event::{
    PerEvent, Regime, Runs, cpu_cell, figures, listed, median, package_version, ratio_of_medians,
    rounds_of, write_results,
};
use crate::servers::Server;

/// Ours first (the broadcast hub, then the topic hub), then the peers.
const SERVERS: [Server; 6] = [
    Server::Ours,
    Server::Topics,
    Server::Nchan,
    Server::Centrifugo,
    Server::Mercure,
    Server::MercureBolt,
];

/// (subscribers, how events are published): one event per write, where deployments
/// live; fewer a second at 19,000, so every hub can keep up on two cores shared with the
/// load.
const LOADS: [Load; 3] = [
    (1_000, Regime::Rate(10)),
    (5_000, Regime::Rate(10)),
    (19_000, Regime::Rate(2)),
];

/// With `--gated`: as fast as each hub delivers.
const GATED: [Load; 2] = [
    (1_000, Regime::Gated(WINDOW)),
    (5_000, Regime::Gated(WINDOW)),
];

/// Events in flight ahead of the average subscriber, gated (as `bench hubs`).
const WINDOW: u64 = 4;

type Load = (usize, Regime);

/// How long a load is measured: `seconds`, five times that below 10 events a second
/// (as many deliveries to count CPU ticks over).
fn measured(seconds: u64, regime: Regime) -> Duration {
    let slow = matches!(regime, Regime::Rate(rate) if rate < 10);
    Duration::from_secs(if slow { seconds * 5 } else { seconds })
}

/// A load's row name: `1000 x 10/s`, `1000, gated`.
fn row((n, regime): Load) -> String {
    match regime {
        Regime::Rate(rate) => format!("{n} x {rate}/s"),
        Regime::Gated(_) => format!("{n}, gated"),
    }
}

pub async fn suite(
    runs: usize,
    seconds: u64,
    quick: bool,
    gated: bool,
    out: &str,
) -> BenchResult<()> {
    let loads: &[Load] = match (quick, gated) {
        (true, false) => &[(200, Regime::Rate(10))],
        (true, true) => &[(200, Regime::Gated(WINDOW))],
        (false, false) => &LOADS,
        (false, true) => &GATED,
    };
    let measurements: Vec<_> = loads
        .iter()
        .map(|&(n, regime)| (n, regime, measured(seconds, regime)))
        .collect();
    let (results, failures) = rounds_of(&SERVERS, &measurements, runs).await;
    let date = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let flags = if gated { " --gated" } else { "" };
    let command = match quick {
        true => format!("cargo run -p bench --release -- peers --quick{flags} --seconds {seconds}"),
        false => format!(
            "cargo run -p bench --release -- peers{flags} --runs {runs} --seconds {seconds}"
        ),
    };
    let md = markdown(&date, &command, loads, &results, &failures);
    if gated {
        // No curve: the gated loads are two points of another regime.
        write_results(out, &date, "peers-gated", &md)?;
        return Ok(());
    }
    write_results(out, &date, "peers", &md)?;
    let svg = format!("{out}/{date}-peers.svg");
    chart(&svg, loads, &results)?;
    println!("wrote {svg}");
    Ok(())
}

fn markdown(
    date: &str,
    command: &str,
    loads: &[Load],
    results: &Runs,
    failures: &[String],
) -> String {
    let mut md = String::new();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let _ = writeln!(md, "# Every hub side by side, {date}\n");
    let _ = writeln!(
        md,
        "Command: `{command}` (peers installed by `bench/install-nchan.sh`, \
         `bench/install-centrifugo.sh` and `bench/build-mercure.sh`). {cores} cores shared by \
         the server and the load generator; {EVENT_BYTES}-byte events over loopback HTTP/1.1, \
         published at a fixed rate (gated: at most {WINDOW} ahead of the average subscriber), \
         each to every subscriber. CPU is the server process's \
         user and system time from `/proc/<pid>/stat` over the measured window (after 1 s of \
         warm-up), divided by the events delivered in it; memory is the server's RSS growth \
         over the open streams, per stream; latency is from publish to receipt. Each cell \
         lists every run in order (the servers took turns, their order reversed each round); \
         ratios are of medians.\n\n\
         Servers: ours (hub) is sse-resume's hub on `salvo::Server`, published through `POST \
         /events`; ours (sse-topics) is the Mercure hub with anonymous subscribers of three \
         matchers (two exact topics no update has, the URL pattern \
         `https://example.com/books/:id` every update matches), one topic per update in turn, \
         published as Mercure's form with a token, a history of 4,096; nchan {} on Debian's \
         nginx in one process (`nchan_subscriber eventsource`, a message buffer of 1,000); \
         Centrifugo v6.9.1 (unidirectional SSE, each client subscribed by its connection \
         token, published through its HTTP API, a history of 1,000 per channel); Mercure's \
         hub (built from a dunglas/mercure snapshot) with sse-topics' subscribers and \
         updates, on its `local` transport (no history) and on `bolt` (BoltDB, `size \
         4096`).\n",
        package_version("libnginx-mod-nchan")
    );
    let names: Vec<&str> = SERVERS.iter().map(|s| s.name()).collect();
    let header = |md: &mut String, extra: &[String]| {
        let all: Vec<String> = names
            .iter()
            .map(|n| n.to_string())
            .chain(extra.to_vec())
            .collect();
        let _ = writeln!(md, "| subscribers, publishing | {} |", all.join(" | "));
        let _ = writeln!(md, "|---|{}", "---:|".repeat(all.len()));
    };
    // Ours against each peer: the broadcast hub against the broadcast peers, the topic
    // hub against the Mercure hubs.
    let pairs = [
        (Server::Ours, Server::Nchan),
        (Server::Ours, Server::Centrifugo),
        (Server::Topics, Server::Mercure),
        (Server::Topics, Server::MercureBolt),
    ];
    let pair_names: Vec<String> = pairs
        .iter()
        .map(|(a, b)| format!("{} / {}", short(*a), short(*b)))
        .collect();

    let _ = writeln!(md, "## CPU per delivered event (us): user + system\n");
    header(&mut md, &pair_names);
    for &load in loads {
        let key = |s| (s, load.0, load.1);
        let mut cells: Vec<String> = SERVERS.iter().map(|&s| cpu_cell(results, key(s))).collect();
        let cpu = |s| figures(results, key(s), |r| r.cpu_us);
        cells.extend(pairs.iter().map(|&(a, b)| ratio_of_medians(cpu(a), cpu(b))));
        let _ = writeln!(md, "| {} | {} |", row(load), cells.join(" | "));
    }
    let _ = writeln!(md, "\nCells: the median, then its user and system parts.\n");

    let _ = writeln!(md, "## Memory per stream (KiB)\n");
    header(&mut md, &pair_names);
    for &load in loads {
        let kib = |s| figures(results, (s, load.0, load.1), |r| r.kib_per_idle_connection);
        let mut cells: Vec<String> = SERVERS
            .iter()
            .map(|&s| median(kib(s)).map_or("failed".to_owned(), |v| format!("{v:.1}")))
            .collect();
        cells.extend(pairs.iter().map(|&(a, b)| ratio_of_medians(kib(a), kib(b))));
        let _ = writeln!(md, "| {} | {} |", row(load), cells.join(" | "));
    }

    // Latency is recorded at a fixed rate only (a gated publisher waits for deliveries).
    let timed: Vec<Load> = loads
        .iter()
        .copied()
        .filter(|(_, regime)| matches!(regime, Regime::Rate(_)))
        .collect();
    if !timed.is_empty() {
        let _ = writeln!(
            md,
            "\n## Publish-to-receive latency (ms): p50 / p99, median of runs\n"
        );
        header(&mut md, &[]);
    }
    for &load in &timed {
        let cells: Vec<String> = SERVERS
            .iter()
            .map(|&s| {
                let key = (s, load.0, load.1);
                let ms = |pick: fn((u64, u64)) -> u64| {
                    median(figures(results, key, |r| {
                        r.latency_us.map_or(f64::NAN, |l| pick(l) as f64 / 1e3)
                    }))
                };
                match (ms(|l| l.0), ms(|l| l.1)) {
                    (Some(p50), Some(p99)) => format!("{p50:.1} / {p99:.1}"),
                    _ => "failed".to_owned(),
                }
            })
            .collect();
        let _ = writeln!(md, "| {} | {} |", row(load), cells.join(" | "));
    }

    for (title, pick, digits) in [
        (
            "Every run: CPU per delivered event (us)",
            (|r| r.cpu_us) as fn(&PerEvent) -> f64,
            2,
        ),
        (
            "Every run: user time per delivered event (us)",
            |r| r.user_us,
            2,
        ),
        (
            "Every run: system time per delivered event (us)",
            |r| r.system_us,
            2,
        ),
        (
            "Every run: KiB per stream",
            |r| r.kib_per_idle_connection,
            1,
        ),
        ("Every run: events lost", |r| r.lost as f64, 0),
    ] {
        let _ = writeln!(md, "\n## {title}\n");
        header(&mut md, &[]);
        for &load in loads {
            let cells: Vec<String> = SERVERS
                .iter()
                .map(|&s| listed(&figures(results, (s, load.0, load.1), pick), digits))
                .collect();
            let _ = writeln!(md, "| {} | {} |", row(load), cells.join(" | "));
        }
    }
    if !failures.is_empty() {
        let _ = writeln!(md, "\n## Failed measurements\n");
        for failure in failures {
            let _ = writeln!(md, "- {failure}");
        }
    }
    md
}

/// A short name for a ratio's heading.
fn short(server: Server) -> &'static str {
    match server {
        Server::Ours => "ours",
        Server::Topics => "sse-topics",
        Server::Nchan => "nchan",
        Server::Centrifugo => "Centrifugo",
        Server::Mercure => "Mercure local",
        Server::MercureBolt => "Mercure bolt",
        other => other.name(),
    }
}

/// Two panels against the number of subscribers: CPU per delivered event, and KiB per
/// stream; one line per server (medians).
fn chart(path: &str, loads: &[Load], results: &Runs) -> BenchResult<()> {
    let colors = [
        RGBColor(47, 111, 222),
        RGBColor(120, 170, 240),
        RGBColor(46, 139, 87),
        RGBColor(163, 98, 0),
        RGBColor(179, 38, 30),
        RGBColor(95, 107, 118),
    ];
    let root = SVGBackend::new(path, (1100, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let (left, right) = root.split_horizontally(550);
    type Pick = fn(&PerEvent) -> f64;
    for (area, caption, pick) in [
        (
            &left,
            "CPU per delivered event (us)",
            (|r| r.cpu_us) as Pick,
        ),
        (&right, "Memory per stream (KiB)", |r| {
            r.kib_per_idle_connection
        }),
    ] {
        let points = |server| -> Vec<(f64, f64)> {
            loads
                .iter()
                .filter_map(|&(n, regime)| {
                    let value = median(figures(results, (server, n, regime), pick))?;
                    Some(((n as f64).log10(), value))
                })
                .collect()
        };
        let top = SERVERS
            .iter()
            .flat_map(|&s| points(s))
            .map(|(_, y)| y)
            .fold(1.0f64, f64::max)
            * 1.3;
        let (low, high) = loads.iter().fold((f64::MAX, 0.0f64), |(lo, hi), &(n, _)| {
            let x = (n as f64).log10();
            (lo.min(x), hi.max(x))
        });
        let mut chart = ChartBuilder::on(area)
            .caption(caption, ("sans-serif", 20))
            .margin(15)
            .x_label_area_size(35)
            .y_label_area_size(50)
            .build_cartesian_2d((low - 0.1)..(high + 0.1), 0.0..top)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("subscribers")
            .x_label_formatter(&|x| format!("{:.0}", 10f64.powf(*x)))
            .draw()
            .map_err(|e| e.to_string())?;
        for (k, &server) in SERVERS.iter().enumerate() {
            let color = colors[k % colors.len()];
            let line = points(server);
            chart
                .draw_series(LineSeries::new(line.clone(), color.stroke_width(2)))
                .map_err(|e| e.to_string())?
                .label(server.name())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 14, y)], color.stroke_width(2))
                });
            chart
                .draw_series(line.into_iter().map(|p| Circle::new(p, 3, color.filled())))
                .map_err(|e| e.to_string())?;
        }
        chart
            .configure_series_labels()
            .border_style(BLACK)
            .background_style(WHITE.mix(0.9))
            .position(SeriesLabelPosition::UpperLeft)
            .draw()
            .map_err(|e| e.to_string())?;
    }
    root.present().map_err(|e| e.to_string())?;
    Ok(())
}

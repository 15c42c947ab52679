//! The whole suite, the medians, and the written results (Markdown and an SVG chart).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use plotters::prelude::*;

use crate::load::{BenchResult, EVENT_BYTES};
use crate::per_event::median;
use crate::servers::Server;
use crate::{ClosedLoop, FixedRate, closed_loop, fixed_rate};

/// Runs everything `runs` times and writes `<out>/<date>.md` and `<out>/<date>.svg`.
pub async fn all(runs: usize, measure: Duration, quick: bool, out: &str) -> BenchResult<()> {
    let (counts, loads, runs): (Vec<usize>, Vec<(usize, u64)>, usize) = if quick {
        (vec![100, 500], vec![(200, 50)], 1)
    } else {
        (
            vec![1_000, 5_000, 19_000],
            vec![(1_000, 50), (1_000, 100), (2_000, 50), (2_000, 100)],
            runs,
        )
    };
    let total = runs * Server::ALL.len() * (counts.len() + loads.len());
    let progress = ProgressBar::new(total as u64);
    progress.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut closed: HashMap<(Server, usize), Vec<ClosedLoop>> = HashMap::new();
    let mut fixed: HashMap<(Server, usize, u64), Vec<FixedRate>> = HashMap::new();
    let mut failures = Vec::new();
    for run in 1..=runs {
        for &n in &counts {
            // The servers take turns, so slow drifts of the machine spread over all.
            for server in Server::ALL {
                progress.set_message(format!(
                    "run {run}: {} closed loop, {n} clients",
                    server.name()
                ));
                match closed_loop(server, n, measure).await {
                    Ok(result) => closed.entry((server, n)).or_default().push(result),
                    Err(e) => failures.push(format!(
                        "run {run}, {}, closed loop, {n} clients: {e}",
                        server.name()
                    )),
                }
                progress.inc(1);
            }
        }
        for &(n, rate) in &loads {
            for server in Server::ALL {
                progress.set_message(format!(
                    "run {run}: {} at {rate}/s to {n} clients",
                    server.name()
                ));
                match fixed_rate(server, n, rate, measure).await {
                    Ok(result) => fixed.entry((server, n, rate)).or_default().push(result),
                    Err(e) => failures.push(format!(
                        "run {run}, {}, {rate}/s to {n}: {e}",
                        server.name()
                    )),
                }
                progress.inc(1);
            }
        }
    }
    progress.finish_with_message("done");

    let date = chrono::Utc::now().format("%Y-%m-%d").to_string();
    std::fs::create_dir_all(out)?;
    let command = if quick {
        "cargo run -p bench --release -- all --quick".to_owned()
    } else {
        format!(
            "cargo run -p bench --release -- all --runs {runs} --seconds {}",
            measure.as_secs()
        )
    };
    let markdown = markdown(
        &date, &command, runs, measure, &counts, &loads, &closed, &fixed, &failures,
    );
    let md_path = format!("{out}/{date}.md");
    std::fs::write(&md_path, &markdown)?;
    let svg_path = format!("{out}/{date}.svg");
    chart(&svg_path, &counts, &closed)?;
    println!("{markdown}");
    println!("wrote {md_path} and {svg_path}");
    Ok(())
}

/// The median of one closed-loop figure over the runs.
fn closed_median(
    closed: &HashMap<(Server, usize), Vec<ClosedLoop>>,
    server: Server,
    n: usize,
    pick: fn(&ClosedLoop) -> f64,
) -> Option<f64> {
    median(closed.get(&(server, n))?.iter().map(pick).collect())
}

fn throughput(
    closed: &HashMap<(Server, usize), Vec<ClosedLoop>>,
    server: Server,
    n: usize,
) -> Option<f64> {
    closed_median(closed, server, n, |r| r.delivered_per_sec)
}

fn memory(
    closed: &HashMap<(Server, usize), Vec<ClosedLoop>>,
    server: Server,
    n: usize,
) -> Option<f64> {
    closed_median(closed, server, n, |r| r.kib_per_idle_connection)
}

fn latency(
    fixed: &HashMap<(Server, usize, u64), Vec<FixedRate>>,
    key: (Server, usize, u64),
    pick: fn(&FixedRate) -> u64,
) -> Option<f64> {
    median(
        fixed
            .get(&key)?
            .iter()
            .map(|r| pick(r) as f64 / 1000.0)
            .collect(),
    )
}

fn cell(value: Option<f64>, digits: usize) -> String {
    value.map_or_else(|| "failed".to_owned(), |v| format!("{v:.digits$}"))
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}x", a / b),
        _ => "-".to_owned(),
    }
}

#[allow(clippy::too_many_arguments)]
fn markdown(
    date: &str,
    command: &str,
    runs: usize,
    measure: Duration,
    counts: &[usize],
    loads: &[(usize, u64)],
    closed: &HashMap<(Server, usize), Vec<ClosedLoop>>,
    fixed: &HashMap<(Server, usize, u64), Vec<FixedRate>>,
    failures: &[String],
) -> String {
    let mut md = String::new();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let memory_total = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .next()
                .map(|l| l.split_whitespace().nth(1).unwrap_or("?").to_owned())
        })
        .unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let _ = writeln!(md, "# SSE fan-out benchmark, {date}\n");
    let _ = writeln!(
        md,
        "Conditions: {cores} cores, {memory_total} kB of memory, Linux {}, release build; {EVENT_BYTES}-byte events over \
         loopback HTTP/1.1; the load generator and the server share the cores. Each server runs in its own \
         process; each measurement lasts {} s after 1 s of warm-up; {runs} run(s), medians reported. \
         Command: `{command}`. \
         \"ours (hub)\" is sse-resume's hub published through `POST /events`; \"ours (chat)\" is sse-chat, \
         every stream a tab of one member who posts through `POST /chat/messages` (its events are the chat's \
         JSON messages, ~170 bytes, not 64). Ratios are ours (hub) against the peer.\n",
        kernel.trim(),
        measure.as_secs()
    );
    let names: Vec<&str> = Server::ALL.iter().map(|s| s.name()).collect();

    let _ = writeln!(
        md,
        "## Throughput: events delivered a second (closed loop, 16 events in flight)\n"
    );
    let _ = writeln!(
        md,
        "| clients | {} | ours / axum | ours / ceiling |",
        names.join(" | ")
    );
    let _ = writeln!(md, "|---:|{}---:|---:|", "---:|".repeat(names.len()));
    for &n in counts {
        let values: Vec<String> = Server::ALL
            .iter()
            .map(|&s| cell(throughput(closed, s, n), 0))
            .collect();
        let ours = throughput(closed, Server::Ours, n);
        let _ = writeln!(
            md,
            "| {n} | {} | {} | {} |",
            values.join(" | "),
            ratio(ours, throughput(closed, Server::Axum, n)),
            ratio(ours, throughput(closed, Server::Ceiling, n))
        );
    }

    let _ = writeln!(
        md,
        "\n## Server memory per idle connection (KiB: RSS growth / connections)\n"
    );
    let _ = writeln!(md, "| clients | {} |", names.join(" | "));
    let _ = writeln!(md, "|---:|{}", "---:|".repeat(names.len()));
    for &n in counts {
        let values: Vec<String> = Server::ALL
            .iter()
            .map(|&s| cell(memory(closed, s, n), 1))
            .collect();
        let _ = writeln!(md, "| {n} | {} |", values.join(" | "));
    }

    let _ = writeln!(
        md,
        "\n## Latency, publish to receive, at a fixed offered load (ms: p50 / p99 / p99.9)\n"
    );
    let _ = writeln!(
        md,
        "| clients x events/s | {} | ours p99 / ceiling p99 |",
        names.join(" | ")
    );
    let _ = writeln!(md, "|---:|{}---:|", "---:|".repeat(names.len()));
    for &(n, rate) in loads {
        let values: Vec<String> = Server::ALL
            .iter()
            .map(|&s| {
                let key = (s, n, rate);
                format!(
                    "{} / {} / {}",
                    cell(latency(fixed, key, |r| r.p50), 1),
                    cell(latency(fixed, key, |r| r.p99), 1),
                    cell(latency(fixed, key, |r| r.p999), 1)
                )
            })
            .collect();
        let _ = writeln!(
            md,
            "| {n} x {rate} | {} | {} |",
            values.join(" | "),
            ratio(
                latency(fixed, (Server::Ours, n, rate), |r| r.p99),
                latency(fixed, (Server::Ceiling, n, rate), |r| r.p99)
            )
        );
    }

    let lost: u64 = closed.values().flatten().map(|r| r.lost).sum::<u64>()
        + fixed.values().flatten().map(|r| r.lost).sum::<u64>();
    let _ = writeln!(
        md,
        "\n## Loss\n\nEvents published but not delivered (published x clients - delivered, after waiting up to 10 s for the last), all runs, all servers: {lost}."
    );
    if !failures.is_empty() {
        let _ = writeln!(md, "\n## Failed measurements\n");
        for failure in failures {
            let _ = writeln!(md, "- {failure}");
        }
    }
    md
}

/// A grouped bar chart of throughput by client count.
fn chart(
    path: &str,
    counts: &[usize],
    closed: &HashMap<(Server, usize), Vec<ClosedLoop>>,
) -> BenchResult<()> {
    let colors = [
        RGBColor(47, 111, 222),
        RGBColor(120, 170, 240),
        RGBColor(163, 98, 0),
        RGBColor(179, 38, 30),
        RGBColor(95, 107, 118),
        RGBColor(46, 139, 87),
    ];
    let top = counts
        .iter()
        .flat_map(|&n| {
            Server::ALL
                .iter()
                .filter_map(move |&s| throughput(closed, s, n))
        })
        .fold(1.0f64, f64::max)
        * 1.5; // room above the bars for the legend
    let root = SVGBackend::new(path, (900, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let groups = counts.len() as f64;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Events delivered per second (closed loop)",
            ("sans-serif", 22),
        )
        .margin(20)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0..groups, 0.0..top)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(counts.len() * 2 + 1)
        .x_label_formatter(&|x| {
            let i = (*x - 0.5).round();
            if (x - 0.5 - i).abs() < 0.01 && i >= 0.0 && (i as usize) < counts.len() {
                format!("{} clients", counts[i as usize])
            } else {
                String::new()
            }
        })
        .y_label_formatter(&|y| format!("{:.0}k", y / 1000.0))
        .draw()
        .map_err(|e| e.to_string())?;
    let width = 0.8 / Server::ALL.len() as f64;
    for (k, &server) in Server::ALL.iter().enumerate() {
        let color = colors[k % colors.len()];
        let bars: Vec<Rectangle<(f64, f64)>> = counts
            .iter()
            .enumerate()
            .filter_map(|(i, &n)| {
                let value = throughput(closed, server, n)?;
                let x = i as f64 + 0.1 + k as f64 * width;
                Some(Rectangle::new(
                    [(x, 0.0), (x + width * 0.9, value)],
                    color.filled(),
                ))
            })
            .collect();
        chart
            .draw_series(bars)
            .map_err(|e| e.to_string())?
            .label(server.name())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled()));
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.9))
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())?;
    Ok(())
}

//! Does memory come back? Waves of streams against one server process: each wave opens
//! N streams, publishes to them, closes them all, and waits; the server's RSS is read
//! with the streams open and after each wave. The allocator is the bench binary's own
//! (features `jemalloc`, `mimalloc`; glibc's malloc without), so one build per
//! allocator is compared on the same waves.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::ServerProcess;
use crate::load::{BenchResult, Publisher, Tally, close_clients, open_clients};
use crate::servers::Server;

/// The allocator this binary was built with.
pub fn allocator() -> &'static str {
    if cfg!(feature = "jemalloc") {
        "jemalloc"
    } else if cfg!(feature = "mimalloc") {
        "mimalloc"
    } else {
        "glibc"
    }
}

/// RSS (KiB) at start, and for each wave: with its streams open, and `settle` after
/// they closed.
pub struct Waves {
    pub start_kib: u64,
    pub loaded_kib: Vec<u64>,
    pub after_kib: Vec<u64>,
}

pub async fn run(
    server: Server,
    waves: usize,
    clients: usize,
    settle: Duration,
) -> BenchResult<Waves> {
    let process = ServerProcess::spawn(server).await?;
    let start_kib = process.rss_kib();
    let mut result = Waves {
        start_kib,
        loaded_kib: Vec::new(),
        after_kib: Vec::new(),
    };
    let mut seq = 0;
    for _ in 0..waves {
        let tally = Tally::new();
        let set = open_clients(&process.target, clients, Arc::clone(&tally)).await?;
        // Every stream gets events, so its buffers are used, not only allocated.
        let mut publisher = Publisher::connect(&process.target).await?;
        for _ in 0..20 {
            seq += 1;
            publisher.publish(seq).await?;
        }
        let want = 20 * clients as u64;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while tally.delivered.load(Ordering::Relaxed) < want {
            if tokio::time::Instant::now() > deadline {
                return Err("the wave's events were not all delivered in 30 s".into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        result.loaded_kib.push(process.rss_kib());
        close_clients(&tally, set).await;
        drop(publisher);
        // What the allocator gives back is read after it has had time to: jemalloc
        // returns dirty pages after its decay time (10 s by default).
        tokio::time::sleep(settle).await;
        result.after_kib.push(process.rss_kib());
    }
    Ok(result)
}

/// One line per wave, for the results file.
pub fn report(waves: &Waves, clients: usize) -> String {
    let mut out = format!(
        "{}: start {} KiB; per wave of {clients} (RSS with the streams open -> after they closed):",
        allocator(),
        waves.start_kib
    );
    for (loaded, after) in waves.loaded_kib.iter().zip(&waves.after_kib) {
        out.push_str(&format!(" {loaded} -> {after};"));
    }
    out
}

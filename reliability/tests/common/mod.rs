//! What the suite's tests share: the examples started in this process, and readings of
//! the process itself.

#![allow(dead_code, unused_imports)]

use std::alloc::System;
use std::sync::Arc;

use sse_chat::{ChatRoom, RoomLimits};
use sse_shared::hub_metrics::HubMetrics;
use sse_shared::testing::{SseConnection, TestApp, TestResult, json_data};
use sse_shared::{HistoryLimits, Hub, Publisher, ServerArgs, Streams};

/// Limits high enough that a test's thousands of loopback streams are not refused.
pub fn roomy() -> ServerArgs {
    ServerArgs {
        max_streams: 19_000,
        max_streams_per_ip: 19_000,
        ..ServerArgs::default()
    }
}

/// Join and post limits high enough for thousands of members on one loopback address.
pub fn roomy_chat() -> RoomLimits {
    RoomLimits {
        join_burst: 100_000,
        ip_post_burst: 100_000,
        ..RoomLimits::default()
    }
}

/// sse-chat in memory.
pub async fn chat(args: ServerArgs) -> TestResult<(TestApp, Arc<ChatRoom>)> {
    let streams = Streams::from_args(&args);
    let hub = Hub::with_observer(
        HistoryLimits::default(),
        HubMetrics::register(streams.metrics()),
    );
    let room = ChatRoom::in_memory(hub, roomy_chat());
    let router = sse_chat::router(&room);
    Ok((TestApp::serve(args, streams, router).await?, room))
}

/// sse-resume in memory, with its hub (no ticker: the test publishes).
pub async fn resume(
    args: ServerArgs,
    history: HistoryLimits,
) -> TestResult<(TestApp, Hub<sse_resume::ResumeEvent>)> {
    let streams = Streams::from_args(&args);
    let hub = Hub::with_observer(history, HubMetrics::register(streams.metrics()));
    let router = sse_resume::router(&Publisher::in_memory(hub.clone()));
    Ok((TestApp::serve(args, streams, router).await?, hub))
}

// Every test binary of the suite counts its allocations, so memory bounds are checked
// on the heap in use, not on RSS: glibc keeps freed memory in per-thread arenas, and
// RSS moved by up to ~35 MB between runs of one build, as much as a real leak would add.
#[global_allocator]
static ALLOCATOR: &stats_alloc::StatsAlloc<System> = &stats_alloc::INSTRUMENTED_SYSTEM;

/// KiB allocated and not yet freed, by anything in this process (client and server).
pub fn heap_in_use_kib() -> usize {
    let stats = ALLOCATOR.stats();
    stats
        .bytes_allocated
        .saturating_sub(stats.bytes_deallocated)
        / 1024
}

/// This process's resident memory, in KiB.
pub fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Tasks alive in this runtime.
pub fn alive_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

pub use sse_shared::testing::figure;

/// The member token of sse-chat's `welcome`, the first event of a member's stream.
pub async fn welcome_token(conn: &mut SseConnection) -> TestResult<String> {
    let welcome = json_data(&conn.next_event().await?)?;
    let token = welcome["token"]
        .as_str()
        .ok_or("a welcome without a token")?;
    Ok(token.to_owned())
}

#!/usr/bin/env bash
# Which system calls a hub makes per delivered event in the many-publishers load: `perf
# stat` on the hub's process for 10 seconds of `bench publishers`' 2-a-second phase (500
# publishers, 5,000 subscribers: 1,000 publishes and 10,000 deliveries a second).
#
#   bench/syscalls.sh SERVER      e.g. bench/syscalls.sh topics, bench/syscalls.sh nchan
#
# SERVER is one of `bench publishers --server`'s (topics, nchan, centrifugo, mercure,
# mercure-bolt; install the peers first, as `bench publishers` says). Needs `perf` and
# permission to read syscall tracepoints (root, or kernel.perf_event_paranoid <= -1).
# Counting slows each call, so the CPU figures of this run are not the benchmark's.
set -euo pipefail

server=${1:?usage: bench/syscalls.sh SERVER}
window=10 # seconds counted
per_sec=10000 # deliveries a second at 2 publishes a second: 500 x 2 x 10 subscribers
source "$(dirname "$0")/perf-setup.sh"

"$bin" publishers --server "$server" --runs 1 --seconds 30 --out "$out" >"$out/load" 2>&1 &
load=$!
# The hub is the load generator's child (nginx: its grandchild, the worker): the one of
# them that holds the 5,500 connections.
pid=""
for _ in $(seq 1 600); do
    best=0
    for p in $(pgrep -P "$load" || true) $(for c in $(pgrep -P "$load" || true); do pgrep -P "$c" || true; done); do
        n=$(ls "/proc/$p/fd" 2>/dev/null | wc -l)
        if [ "$n" -gt "$best" ]; then best=$n; pid=$p; fi
    done
    [ "$best" -gt 5400 ] && break
    sleep 0.2
done
[ -n "$pid" ] && [ "$best" -gt 5400 ] || { echo "the hub did not take the load" >&2; cat "$out/load" >&2; exit 1; }
sleep 4 # the publishers start after the streams settle
events=raw_syscalls:sys_enter
for call in write writev sendto sendmsg read readv recvfrom recvmsg futex epoll_wait epoll_pwait sched_yield; do
    events="$events,syscalls:sys_enter_$call"
done
perf stat -x, -o "$out/stat" -e "$events" -p "$pid" -- sleep "$window"
wait "$load"

echo "$server: system calls per delivered event (${per_sec} deliveries and $((per_sec / 10)) publishes a second, ${window} s)"
awk -F, -v n=$((per_sec * window)) '
    $3 ~ /sys_enter/ && $1 > 0 {
        name = $3; sub(/^.*sys_enter_?/, "", name); if (name == "") name = "all"
        printf "  %-12s %8d  %.3f\n", name, $1, $1 / n
    }' "$out/stat"

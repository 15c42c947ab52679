#!/usr/bin/env bash
# Where a server's CPU goes under load: `perf stat` on the server process for a few seconds
# while `bench closed-loop` (or, with RATE, `bench fixed-rate`) drives it, then CPU per
# socket write and per event.
#
#   bench/profile.sh SERVER CLIENTS [RATE]   e.g. bench/profile.sh ours 5000
#                                                 bench/profile.sh axum 1000 100
#
# SERVER is one of bench's servers (ours, chat, tutorial, axum, ceiling). Needs `perf`
# (Debian: apt-get install linux-perf) and permission to read syscall tracepoints (root,
# or kernel.perf_event_paranoid <= -1). Not part of the tests; the figures in the README's
# "Benchmarks" section that name this script came from it.
set -euo pipefail

server=${1:?usage: bench/profile.sh SERVER CLIENTS [RATE]}
clients=${2:?usage: bench/profile.sh SERVER CLIENTS [RATE]}
rate=${3:-}
window=5 # seconds measured
source "$(dirname "$0")/perf-setup.sh"

if [ -n "$rate" ]; then
    "$bin" fixed-rate "$server" --clients "$clients" --rate "$rate" --seconds 10 >"$out/load" 2>&1 &
else
    "$bin" closed-loop "$server" --clients "$clients" --seconds 12 >"$out/load" 2>&1 &
fi
load=$!
# The server is the load generator's child; measure once every client is connected and
# publishing has begun (it starts half a second after the last stream opens).
pid=""
for _ in $(seq 1 300); do
    pid=$(pgrep -P "$load" | head -n 1 || true)
    [ -n "$pid" ] && [ "$(ls "/proc/$pid/fd" 2>/dev/null | wc -l)" -ge "$clients" ] && break
    sleep 0.2
done
[ -n "$pid" ] || { echo "the server did not start" >&2; cat "$out/load" >&2; exit 1; }
sleep 2
ticks() { awk '{ print $14, $15 }' "/proc/$pid/stat"; }
read -r user0 system0 < <(ticks)
perf stat -x, -o "$out/stat" \
    -e task-clock,syscalls:sys_enter_writev,syscalls:sys_enter_sendto,syscalls:sys_enter_write \
    -p "$pid" -- sleep "$window"
read -r user1 system1 < <(ticks)
wait "$load"

awk -F, -v load="$(tail -n 1 "$out/load")" -v rate="$rate" -v clients="$clients" -v window="$window" \
    -v user_ticks=$((user1 - user0)) -v kernel_ticks=$((system1 - system0)) '
    $3 == "task-clock" { ms = $1 }
    $3 ~ /^syscalls:/ { writes += $1 }
    END {
        if (rate != "") {
            events = rate * clients
        } else {
            match(load, /delivered_per_sec: [0-9.]+/)
            events = substr(load, RSTART, RLENGTH)
            sub(/^[^0-9]+/, "", events)
        }
        cores = ms / (window * 1000)
        printf "server CPU: %.2f cores (%.0f%% in the kernel); writes: %.0f /s; CPU per write: %.2f us\n",
            cores, 100 * kernel_ticks / (user_ticks + kernel_ticks), writes / window, ms * 1000 / writes
        printf "events delivered: %.2f M/s; CPU per event: %.3f us; events per write: %.1f\n",
            events / 1e6, cores * 1e6 / events, events * window / writes
    }' "$out/stat"
# The load generator's own result: events a second (closed loop) or latency (fixed rate).
# Counting syscalls slows each one, so these are not the benchmark's figures.
tail -n 1 "$out/load"

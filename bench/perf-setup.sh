# Sourced by bench/profile.sh and bench/syscalls.sh: checks for `perf`, builds the
# benchmark, and sets `bin` (its binary) and `out` (a scratch directory removed on exit).
command -v perf >/dev/null || { echo "perf is missing (Debian: apt-get install linux-perf)" >&2; exit 1; }

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cargo build --quiet --release -p bench --manifest-path "$root/Cargo.toml"
bin="${CARGO_TARGET_DIR:-$root/target}/release/bench"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

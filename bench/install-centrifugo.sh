#!/usr/bin/env bash
# Centrifugo v6, a peer the benchmark compares against (issue 44): built from source by
# the Go toolchain from the Go module proxy (github.com/centrifugal/centrifugo/v6), into
# target/centrifugo. Nothing of it is committed; `bench` runs it with a configuration of
# its own (unidirectional SSE, server-side subscriptions from the connection token, the
# HTTP API, a history of 1,000 per channel), see `ServerProcess::centrifugo` in
# bench/src/main.rs. Takes a few minutes on 2 cores the first time.
#
#   bench/install-centrifugo.sh [VERSION]      (VERSION: v6.9.1)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
version=${1:-v6.9.1}
out="$root/target/centrifugo"
if [ -x "$out" ]; then echo "$out is there ($("$out" version | head -1))"; exit 0; fi
command -v go >/dev/null || { echo "install-centrifugo: needs Go (1.24 or later)" >&2; exit 1; }
bin=$(mktemp -d "${TMPDIR:-/tmp}/centrifugo-bin.XXXXXX")
trap 'rm -rf "$bin"' EXIT
GOFLAGS=-mod=mod GOBIN="$bin" go install "github.com/centrifugal/centrifugo/v6@$version"
mkdir -p "$(dirname "$out")"
mv "$bin/centrifugo" "$out"
echo "built $out (github.com/centrifugal/centrifugo/v6@$version)"

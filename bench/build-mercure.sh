#!/usr/bin/env bash
# Builds Mercure's own hub (the Caddy module and its `mercure` binary), the peer that
# issue 34's benchmark compares sse-topics with. Its Go module is not served by the
# module proxy here, so it is built from a snapshot of the dunglas/mercure repository
# (the git directory the search tool's fetch gives), with its dependencies from the Go
# module proxy. Nothing of it enters this repository (its licence is AGPL).
#
#   bench/build-mercure.sh MIRROR_GIT_DIR [OUTPUT]      (OUTPUT: target/mercure-hub)
#
# One dependency version the caddy module pins (x509roots/fallback) is not served; the
# build replaces it with a served one. Takes a few minutes on 2 cores the first time.
set -euo pipefail
mirror=${1:?git directory of a dunglas/mercure snapshot}
root=$(cd "$(dirname "$0")/.." && pwd)
out=${2:-$root/target/mercure-hub}
if [ -x "$out" ]; then echo "$out is there"; exit 0; fi
command -v go >/dev/null || { echo "build-mercure: needs Go (go1.26)" >&2; exit 1; }
src=$(mktemp -d "${TMPDIR:-/tmp}/mercure-src.XXXXXX")
trap 'rm -rf "$src"' EXIT
git --git-dir="$mirror" archive HEAD | tar -x -C "$src"
cd "$src/caddy"
go mod edit -replace \
  golang.org/x/crypto/x509roots/fallback=golang.org/x/crypto/x509roots/fallback@v0.0.0-20261030153154-30a33513ff6d
(cd mercure && GOFLAGS=-mod=mod go build -o "$out" .)
echo "built $out ($(git --git-dir="$mirror" rev-parse --short HEAD))"

#!/bin/sh
# bench/peers/run.sh BUILD_DIR — sealtrack side by side with npm peers on this machine (figures
# printed, never asserted): TCP ingest of a TK103 stream against gps-tracking@1.1.1, and
# decode-only frames/s against gt06 (GT06) and complete-teltonika-parser (Teltonika Codec 8).
# The peers are installed here from bench/peers/package-lock.json (npm ci), never in the product.
# FRAMES and CONNS size the ingest run (default 200000 frames over 100 connections).
set -eu
build=${1:-build-release}
root=$(cd "$(dirname "$0")/../.." && pwd)
case $build in /*) ;; *) build="$root/$build" ;; esac
cd "$root/bench/peers"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "peers: node/npm not found; skipped"
    exit 0
fi
[ -d node_modules ] || npm ci --no-audit --no-fund --loglevel=error
echo "peers: node $(node --version), $(nproc) cores shared by the load client, the server under test and the peer"
node decode.js "$build"
node tk103_ingest.js "$build/sealtrack" --frames "${FRAMES:-200000}" --conns "${CONNS:-100}"

#!/bin/sh
# bench/run.sh BUILD_DIR — end-to-end ingest figures on this machine (printed, never asserted):
# the simulator's JT709A devices against the real server and a fresh SQLite file,
# with synchronous=FULL and NORMAL, over TCP and UDP. Server CPU seconds and peak RSS
# come from /proc after the run.
set -eu
build=${1:-build}
bin="$build/sealtrack"
cd "$(dirname "$0")/.."
devices=${DEVICES:-200}
reports=${REPORTS:-500}
window=${WINDOW:-8}
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo)"

# Decoder cost on one core, and instructions per frame under callgrind.
d007=$(grep -P '^JT808-D007\t' tests/vectors/jt808.tsv | cut -f5)
m01=$(grep -P '^JT600-M01\t' tests/vectors/jt600.tsv | cut -f5)
"$build/decode_bench" jt808 "$d007"
"$build/decode_bench" jt600 "$m01"
if command -v valgrind >/dev/null; then
    for n in 1000 2000; do
        valgrind --tool=callgrind --callgrind-out-file=/dev/null "$build/decode_bench" jt808 "$d007" $n 2>&1 |
            awk -v n=$n '/refs/{gsub(",","",$NF); print n, $NF}'
    done | awk 'NR==1{n1=$1;i1=$2} NR==2{printf "decode jt808 (JT709A 0x0200): %.0f instructions per frame (callgrind, difference of %d and %d frames)\n", ($2-i1)/($1-n1), $1, n1}'
fi

# Geofence index on one core: 10,000 fences regional and city-dense, queries vs a scan, and
# geo_validate on 2,000-vertex polygons.
"$build/geofence_bench"
# Geofence evaluation as the writer runs it (real SQLite, batches of 1,000): µs per report
# with 10,000 fences, regional, city-dense and with late history.
"$build/geofence_engine_bench" 1000 100

# Memory per idle TCP connection.
python3 bench/idle_conns.py "$bin" 10000 19000
ulimit -n 20000 2>/dev/null || true
# e2e SYNC LABEL SIM-ARGS...: a fresh server and database, one sim run, the server's CPU per
# frame and peak RSS from /proc.
e2e() {
    sync=$1 label=$2
    shift 2
    dir=$(mktemp -d)
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    "$bin" serve --listen 127.0.0.1 --port "$port" --http-port 0 --db "$dir/bench.db" --set sync=$sync \
        --set log_level=warn --set max_conn_per_ip=100000 2>"$dir/server.log" &
    pid=$!
    sleep 0.5
    summary=$("$bin" sim --port "$port" --timeout-ms 30000 "$@" || true)
    ticks=$(awk '{print $14+$15}' /proc/$pid/stat)
    rss=$(awk '/VmHWM/{print $2}' /proc/$pid/status)
    kill $pid; wait $pid || true
    echo "$summary" | python3 -c "
import json, sys
s = json.loads(sys.stdin.read().splitlines()[-1])
cpu = $ticks / $(getconf CLK_TCK)
print('$label (sync=$sync): %d reports/s, p50 %.1f ms, p99 %.1f ms, server CPU %.2f s = %.1f us per frame, peak RSS %d KiB, replies missing %d' %
      (s['replies_per_s'], s['latency_ms_p50'], s['latency_ms_p99'], cpu, cpu * 1e6 / max(1, s['frames_sent']), $rss, s['replies_missing'] + s['replies_wrong']))"
    rm -rf "$dir"
}
for sync in full normal; do
    e2e $sync "tcp devices=$devices reports=$reports window=$window" --devices "$devices" --reports "$reports" --window "$window"
    e2e $sync "udp devices=$devices reports=$reports window=1" --devices "$devices" --reports "$reports" --udp
done
e2e full "10,000 connected devices, window 8" --devices 10000 --reports 30 --window 8
e2e full "one frame in flight: tcp devices=$devices window=1" --devices "$devices" --reports 300 --window 1
e2e full "paced (about half the maximum rate): 400 devices, window 1, 10 ms between frames" --devices 400 --reports 150 --window 1 --interval-ms 10
e2e full "mixed JT709A + JT701D, devices=$devices window=$window" --protocol mixed --devices "$devices" --reports "$reports" --window "$window"

# What seal operations cost ingestion: no fences vs 10,000 geofences and 10 alert rules.
python3 bench/seal_ingest.py "$bin" "$devices" 300 "$window"

# Side by side with npm peers (bench/peers/), when Node.js is installed.
if command -v node >/dev/null; then ./bench/peers/run.sh "$build"; fi

# HTTP API query latency over one million stored positions.
python3 bench/api_query.py "$bin" 1000000

# Crash safety at scale: SIGKILL under load, restart, every acknowledged report looked up.
python3 bench/crash.py "$bin" 5

# A normal device's latency while the server is abused (each case, then all at once).
RUNS=${RUNS:-3} python3 bench/abuse.py "$bin"

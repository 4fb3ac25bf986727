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

# Memory per idle TCP connection.
python3 bench/idle_conns.py "$bin" 10000 19000
for sync in full normal; do
    for transport in tcp udp; do
        dir=$(mktemp -d)
        port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
        "$bin" serve --listen 127.0.0.1 --port "$port" --http-port 0 --db "$dir/bench.db" --set sync=$sync \
            --set log_level=warn 2>"$dir/server.log" &
        pid=$!
        sleep 0.5
        udp=""
        [ "$transport" = udp ] && udp="--udp"
        w=$window
        [ "$transport" = udp ] && w=1
        summary=$("$bin" sim --port "$port" --devices "$devices" --reports "$reports" --window "$w" $udp \
            --timeout-ms 20000 || true)
        ticks=$(awk '{print $14+$15}' /proc/$pid/stat)
        rss=$(awk '/VmHWM/{print $2}' /proc/$pid/status)
        kill $pid; wait $pid || true
        hz=$(getconf CLK_TCK)
        cpu=$(echo "$ticks $hz" | awk '{printf "%.2f", $1/$2}')
        echo "sync=$sync $transport devices=$devices reports=$reports window=$w: $summary server_cpu_s=$cpu server_peak_rss_kib=$rss"
        rm -rf "$dir"
    done
done

# Side by side with npm peers (bench/peers/), when Node.js is installed.
if command -v node >/dev/null; then ./bench/peers/run.sh "$build"; fi

# HTTP API query latency over one million stored positions.
python3 bench/api_query.py "$bin" 1000000

# Crash safety at scale: SIGKILL under load, restart, every acknowledged report looked up.
python3 bench/crash.py "$bin" 5

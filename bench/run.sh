#!/bin/sh
# bench/run.sh BUILD_DIR — end-to-end ingest figures on this machine (printed, never asserted):
# the simulator's JT709A devices against the real server and a fresh SQLite file,
# with synchronous=FULL and NORMAL, over TCP and UDP. Server CPU seconds and peak RSS
# come from /proc after the run.
set -eu
build=${1:-build}
bin="$build/sealtrack"
devices=${DEVICES:-200}
reports=${REPORTS:-500}
window=${WINDOW:-8}
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
for sync in full normal; do
    for transport in tcp udp; do
        dir=$(mktemp -d)
        port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
        "$bin" serve --listen 127.0.0.1 --port "$port" --db "$dir/bench.db" --set sync=$sync \
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

#!/bin/sh
# fuzz.sh BUILD_DIR SECONDS — run every fuzz target for SECONDS on a scratch copy
# of its corpus (the committed corpus stays as it is); print exec counts; fail on
# a crash, leaving the reproducer in fuzz/findings/.
set -eu
build=$1
seconds=$2
status=0
mkdir -p fuzz/findings
for target in "$build"/fuzz/*_fuzz; do
    name=$(basename "$target" _fuzz)
    work=$(mktemp -d)
    if [ -d "fuzz/corpus/$name" ]; then
        cp -r "fuzz/corpus/$name/." "$work/"
    elif [ -f "tests/vectors/$name.tsv" ]; then # seeds: the protocol's vectors
        python3 - "tests/vectors/$name.tsv" "$work" <<'PY'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1], encoding="utf-8")][1:]
for i, r in enumerate(rows):
    if len(r) > 4 and r[2] in ("frame", "udp", "stream"):
        data = bytes.fromhex(r[4]) if r[3] == "hex" else r[4].encode()
        open("%s/seed%03d" % (sys.argv[2], i), "wb").write(data)
PY
    fi
    dict=
    if [ -f "fuzz/$name.dict" ]; then
        dict=-dict=fuzz/$name.dict
    fi
    if "$target" -max_total_time="$seconds" -print_final_stats=1 -artifact_prefix=fuzz/findings/ \
        $dict "$work" >"$work.log" 2>&1; then
        execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$work.log" | grep -o '[0-9]*$')
        cov=$(grep -o 'cov: [0-9]*' "$work.log" | tail -1)
        echo "fuzz $name: ${execs:-?} executions in ${seconds}s, $cov, no crash"
    else
        echo "fuzz $name: FAILED"
        tail -40 "$work.log"
        status=1
    fi
    rm -rf "$work" "$work.log"
done
exit $status

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
    cp -r "fuzz/corpus/$name/." "$work/" 2>/dev/null || true
    if "$target" -max_total_time="$seconds" -print_final_stats=1 -artifact_prefix=fuzz/findings/ \
        "$work" >"$work.log" 2>&1; then
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

#!/usr/bin/env bash
# Long fuzzing runs, one target at a time (the machine is shared): each target runs
# for FUZZ_SECONDS (default 1800) at nice 10 with one job, growing its working corpus
# in fuzz/work/<target> from the committed seeds in fuzz/corpus/<target>.
# Logs: fuzz/logs/<target>.log. Usage: fuzz/long-run.sh [target[:seconds]...]
set -u
cd "$(dirname "$0")"
seconds=${FUZZ_SECONDS:-1800}
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(frame_header server_connection client_connection server_handshake client_handshake structured deflate_roundtrip deflate_connection deflate_negotiation)
export RUSTC_BOOTSTRAP=1
mkdir -p logs work
for spec in "${targets[@]}"; do
    t=${spec%%:*}
    secs=$seconds
    [ "$spec" != "$t" ] && secs=${spec#*:}
    mkdir -p "work/$t"
    nice -n 10 cargo fuzz build "$t" >"logs/$t.build.log" 2>&1 || { echo "$t: build failed"; continue; }
    start=$(date +%s)
    echo "$(date -u +%FT%TZ) start $t for ${secs}s" >>logs/long-run.log
    nice -n 10 cargo fuzz run "$t" "work/$t" "corpus/$t" -- \
        -max_total_time="$secs" -print_final_stats=1 \
        >"logs/$t.log" 2>&1
    rc=$?
    echo "$(date -u +%FT%TZ) end $t rc=$rc after $(( $(date +%s) - start ))s" >>logs/long-run.log
done

#!/usr/bin/env bash
# CI smoke run of the fuzz targets: builds every target (cargo-fuzz, libFuzzer, ASan)
# and runs each for FUZZ_SECONDS (default 60) from its committed seed corpus, in a
# scratch working corpus so the checkout is not written to. Fails if any target finds
# a crash, a leak, a timeout or an out-of-memory; prints one line per target.
#
# Works on the stable toolchain (RUSTC_BOOTSTRAP=1 unlocks the -Z flags cargo-fuzz
# needs); installs cargo-fuzz if it is missing.
#
# Usage: fuzz/run-ci.sh [target...]          (default: every target)
#   FUZZ_SECONDS=60   seconds per target
#   FUZZ_TIMEOUT=25   seconds one input may take before it counts as a hang
#   FUZZ_JOBS=2       targets run at a time
set -euo pipefail
cd "$(dirname "$0")"

seconds=${FUZZ_SECONDS:-60}
timeout=${FUZZ_TIMEOUT:-25}
jobs=${FUZZ_JOBS:-2}
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(frame_header server_connection client_connection server_handshake client_handshake structured deflate_roundtrip deflate_connection deflate_negotiation)
fi
export RUSTC_BOOTSTRAP=1
SECONDS=0

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz"
    cargo install cargo-fuzz --locked --quiet
fi

echo "building ${#targets[@]} fuzz targets"
cargo fuzz build 2>&1 | tail -n 3
build_time=$SECONDS

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
# One target: its run, then its summary line (and what failed) in $scratch/$t.out;
# $scratch/$t.failed marks a failure.
run_one() {
    local t=$1 log="$scratch/$1.log" out="$scratch/$1.out" start=$SECONDS status=OK
    mkdir -p "$scratch/$t" "artifacts/$t"
    if ! nice -n 10 cargo fuzz run "$t" "$scratch/$t" "corpus/$t" -- \
        -max_total_time="$seconds" -timeout="$timeout" -print_final_stats=1 \
        >"$log" 2>&1; then
        status=FAILED
        touch "$scratch/$t.failed"
    fi
    local done_line execs rate cov ft corp
    done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1 || true)
    [ -z "$done_line" ] && done_line=$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$done_line")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$done_line")
    corp=$(sed -n 's/.* corp: \([0-9]*\/[0-9]*[a-zA-Z]*\).*/\1/p' <<<"$done_line")
    printf '%-18s %-6s %4ss  execs=%-9s exec/s=%-6s cov=%-5s ft=%-6s corpus=%s\n' \
        "$t" "$status" "$((SECONDS - start))" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" >"$out"
    if [ "$status" = FAILED ]; then
        {
            echo "---- $t: what failed ----"
            grep -v '^  ' "$log" | grep -E -A12 'panicked|ERROR: libFuzzer|ERROR: AddressSanitizer|SUMMARY' | head -n 40 || tail -n 40 "$log"
            grep -E 'Test unit written to|Base64:' "$log" || true
            echo "----"
        } >>"$out"
    fi
}

# FUZZ_JOBS targets at a time (each libFuzzer run is one process on one core).
running=0
for t in "${targets[@]}"; do
    if [ "$running" -ge "$jobs" ]; then
        wait -n || true
        running=$((running - 1))
    fi
    run_one "$t" &
    running=$((running + 1))
done
wait
failed=()
summary=()
for t in "${targets[@]}"; do
    cat "$scratch/$t.out"
    summary+=("$(head -n 1 "$scratch/$t.out")")
    [ -e "$scratch/$t.failed" ] && failed+=("$t")
done

echo
echo "fuzz smoke run: ${#targets[@]} targets x ${seconds}s, $jobs at a time, build ${build_time}s, total ${SECONDS}s"
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
    echo "FAILED: ${failed[*]} (inputs in fuzz/artifacts/<target>/; replay with"
    echo "  RUSTC_BOOTSTRAP=1 cargo fuzz run <target> fuzz/artifacts/<target>/<file>)"
    exit 1
fi
echo "fuzz smoke run OK"

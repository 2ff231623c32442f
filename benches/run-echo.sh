#!/usr/bin/env bash
# Echo benchmarks over loopback: hybi-mio, hybi-std, tungstenite, tokio-tungstenite,
# fastwebsockets and a raw TCP echo ceiling, each server pinned to core 0 and the
# clients (`hybi load`, `handshakes`, `idle-clients`) to core 1.
#
#   benches/run-echo.sh            full run: payload 16 B / 1 KiB / 64 KiB x connections
#                                  1 / 64 / 1000 x in flight 1 / 16, 5 repetitions of
#                                  2 s, handshakes/s, memory per idle connection
#                                  (10,000); writes docs/echo.md and docs/echo.svg
#                                  (about 35 minutes once built)
#   benches/run-echo.sh --quick    CI smoke run (or ECHO_QUICK=1): three short cases,
#                                  handshakes and 200 idle connections on every
#                                  server, no timing assertions; fails if a server
#                                  does not answer. Writes under target/echo-bench/.
#
# Other options go to benches/echo/run.py (--reps N, --secs S, --only echo,handshakes,
# memory, --servers a,b, --idle-conns N). Needs python3, taskset and 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."

QUICK=${ECHO_QUICK:-}
ARGS=()
for a in "$@"; do
    if [[ $a == --quick ]]; then QUICK=1; else ARGS+=("$a"); fi
done

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
REL=$CARGO_TARGET_DIR/release
BIN=$CARGO_TARGET_DIR/echo-bench
mkdir -p "$BIN"

# The two adapters have examples of the same name: build each crate's alone and keep
# copies under distinct names.
for crate in mio std; do
    cargo build --release --locked -q -p "hybi-$crate" --example echo-server
    cp "$REL/examples/echo-server" "$BIN/$crate-echo-server"
    rm -f "$REL/examples/echo-server"
done
cargo build --release --locked -q -p hybi-cli -p hybi-echo-bench

# 10,000 idle connections need 10,000 descriptors on each side.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

if [[ -n $QUICK ]]; then
    exec python3 benches/echo/run.py --quick --release "$REL" --bin "$BIN" \
        --out "$BIN/quick" --json "$BIN/quick/results.json" "${ARGS[@]}"
fi
exec python3 benches/echo/run.py --release "$REL" --bin "$BIN" \
    --out docs --json "$BIN/results.json" "${ARGS[@]}"

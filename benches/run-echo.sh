#!/usr/bin/env bash
# Echo benchmarks over loopback: hybi-mio, hybi-std, hybi-tokio, tungstenite, tokio-tungstenite,
# fastwebsockets, tokio-websockets, sockudo-ws and a raw TCP echo ceiling, each server pinned
# to core 0 and the clients (`hybi load`, `handshakes`, `idle-clients`) to core 1.
#
#   benches/run-echo.sh            full run: payload 16 B / 1 KiB / 64 KiB x connections
#                                  1 / 64 / 1000 x in flight 1 / 16, 5 repetitions of
#                                  2 s, handshakes/s, memory per idle connection
#                                  (10,000), then the tls and deflate groups (below);
#                                  writes docs/echo.md and docs/echo.svg
#                                  (about 40 minutes once built)
#   benches/run-echo.sh --quick    CI smoke run (or ECHO_QUICK=1): three short cases,
#                                  handshakes and 200 idle connections on every
#                                  server, and a small case, handshakes and 200 idle
#                                  connections on each TLS and each deflate server;
#                                  no timing assertions; fails if a server does not
#                                  answer. Writes under target/echo-bench/.
#
# The tls group (--only tls): 1 KiB x 64 connections x 16 in flight over wss on
# hybi-mio and tokio-tungstenite (tokio-rustls), beside both in plaintext, in one
# repetition loop; TLS handshakes/s (full handshakes, no resumption); memory per idle
# wss connection. Reports hybi-mio's TLS/plain ratio (target >= 0.80) and hybi-mio
# against tokio-tungstenite over TLS. The certificate (P-256, self-signed for
# 127.0.0.1 and localhost) is made at run time with openssl under
# $CARGO_TARGET_DIR/echo-bench/tls/; the clients do not verify it. The group needs
# `hybi load --insecure` (wss) and the hybi-mio example's --tls-cert/--tls-key; it
# checks both at startup and, where one is missing, the cases that need it FAIL (the
# run exits 1) with the reason: they are not skipped.
#
# The deflate group (--only deflate): 1 KiB JSON-like text (hybi load --json-payload
# --verify, with --deflate where compressed) x 64 x 16 on hybi-mio (--deflate:
# DeflateConfig::default(), level 1, context takeover) and yawc (level 1, context
# takeover, 15-bit windows), both also uncompressed, in one loop. Each deflate
# server is first checked to agree to permessage-deflate and to compress its echo
# (a probe reads its Sec-WebSocket-Extensions answer and the RSV1 bit). Reports
# hybi-mio's deflate/plain ratio, hybi-mio against yawc with deflate (target >=
# 1.3x) and the server's CPU time per message (sampled from /proc).
#
# Other options go to benches/echo/run.py (--reps N, --secs S, --only echo,handshakes,
# memory,tls,deflate, --servers a,b, --idle-conns N). Needs python3, taskset, openssl
# and 2 cores.
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

# Every example has a name of its own; copy the two echo servers where run.py looks.
cargo build --release --locked -q -p hybi-mio --example mio-echo-server
cargo build --release --locked -q -p hybi-std --example std-echo-server
cp "$REL/examples/mio-echo-server" "$REL/examples/std-echo-server" "$BIN/"
cargo build --release --locked -q -p hybi-cli -p hybi-echo-bench
cargo build --release --locked -q -p hybi-tokio --example tokio-echo-server

# 10,000 idle connections need 10,000 descriptors on each side.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

if [[ -n $QUICK ]]; then
    exec python3 benches/echo/run.py --quick --release "$REL" --bin "$BIN" \
        --out "$BIN/quick" --json "$BIN/quick/results.json" "${ARGS[@]}"
fi
exec python3 benches/echo/run.py --release "$REL" --bin "$BIN" \
    --out docs --json "$BIN/results.json" "${ARGS[@]}"

#!/usr/bin/env bash
# Echo benchmarks over loopback: hybi-mio, hybi-std, hybi-tokio, tungstenite, tokio-tungstenite,
# fastwebsockets, tokio-websockets, sockudo-ws, uWebSockets.js and a raw TCP echo
# ceiling, each server pinned to core 0 and the clients (`hybi load`, `handshakes`,
# `idle-clients`) to core 1.
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
# uWebSockets.js (benches/echo/uws/echo.mjs) needs Node (>= 20) and npm: the pinned
# package (benches/echo/uws/package.json + package-lock.json) is installed with
# `npm ci` into benches/echo/uws/node_modules when missing or out of date (a stamp
# records the hash of the pin files and node's version), with its npm cache in
# .ci/cache/uws/. Without Node, or when the install or the binary's load fails, the
# uWebSockets.js entry is skipped and the reason printed (and written in echo.md);
# the other servers run. UWS_REINSTALL=1 wipes node_modules first; ECHO_NODE (default
# node) picks the node binary.
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

# --- uWebSockets.js: npm ci into benches/echo/uws/node_modules ----------------------
# Not wanted when --servers names other servers only.
want_uws=1
for ((i = 0; i < ${#ARGS[@]}; i++)); do
    list=
    case ${ARGS[i]} in
        --servers) list=${ARGS[i + 1]:-} ;;
        --servers=*) list=${ARGS[i]#--servers=} ;;
        *) continue ;;
    esac
    [[ ,$list, == *,uWebSockets.js,* ]] || want_uws=0
done
uws_install() {
    local root=$PWD dir=benches/echo/uws node=${ECHO_NODE:-node} want
    command -v "$node" >/dev/null || { echo "$node not found"; return 1; }
    command -v npm >/dev/null || { echo "npm not found"; return 1; }
    want="$(cat "$dir/package.json" "$dir/package-lock.json" | sha256sum | cut -d' ' -f1) $("$node" --version)"
    if [[ ${UWS_REINSTALL:-0} == 1 ]]; then rm -rf "$dir/node_modules"; fi
    if [[ ! -f $dir/node_modules/.stamp || "$(cat "$dir/node_modules/.stamp")" != "$want" ]]; then
        printf '[uws] npm ci into %s with node %s\n' "$dir/node_modules" "$("$node" --version)" >&2
        rm -rf "$dir/node_modules"
        # --ignore-scripts --omit=optional: the package's binaries are in its tarball;
        # nothing is built or downloaded at install time.
        (cd "$dir" && npm ci --ignore-scripts --omit=optional --no-audit --no-fund \
            --loglevel=error --cache "$root/.ci/cache/uws/npm-cache") >&2 \
            || { echo "npm ci failed in $dir"; return 1; }
        printf '%s\n' "$want" > "$dir/node_modules/.stamp"
    fi
    # The binary must load on this node (echo.mjs loads it the same way).
    "$node" --input-type=module -e '
        import { createRequire } from "node:module";
        const require = createRequire(process.cwd() + "/benches/echo/uws/echo.mjs");
        const p = "@trufflesuite/uws-js-unofficial";
        const v = process.versions;
        try { require(`${p}/binaries/uws_${process.platform}_${process.arch}_${v.modules}.node`).App; }
        catch (e) { console.log(`its binary does not load on node ${process.version} ${process.platform}-${process.arch}: ${e.message.split("\n")[0]}`); process.exit(1); }' \
        || return 1
}
export ECHO_UWS_SKIP=
if ((want_uws)); then
    if why=$(uws_install); then
        printf '[uws] uWebSockets.js ready (@trufflesuite/uws-js-unofficial, node %s)\n' \
            "$("${ECHO_NODE:-node}" --version)"
    else
        ECHO_UWS_SKIP=${why:-install failed}
        printf '[uws] uWebSockets.js SKIPPED: %s\n' "$ECHO_UWS_SKIP" >&2
    fi
fi
export ECHO_NODE=${ECHO_NODE:-node}

# 10,000 idle connections need 10,000 descriptors on each side.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

if [[ -n $QUICK ]]; then
    exec python3 benches/echo/run.py --quick --release "$REL" --bin "$BIN" \
        --out "$BIN/quick" --json "$BIN/quick/results.json" "${ARGS[@]}"
fi
exec python3 benches/echo/run.py --release "$REL" --bin "$BIN" \
    --out docs --json "$BIN/results.json" "${ARGS[@]}"

#!/usr/bin/env bash
# Interoperability matrix: hybi against peers nobody here wrote (Python `websockets`,
# Node `ws`), both ways, on one server contract and one client scenario list, plus
# raw-socket hostile tests against the hybi server. See README.md here.
#
# Usage: .ci/peers/run.sh [--deflate|--plain] [--tls] [--hybi-server CMD]
#                         [--hybi-client CMD] [--name NAME]
#
#   --deflate           the deflate mode (env PEERS_DEFLATE=1): every server and client
#                       enables permessage-deflate (RFC 7692), so every scenario runs
#                       compressed, and `deflate_negotiated` asserts it was agreed.
#   --plain             the plain mode (PEERS_DEFLATE=0, the default): compression off
#                       everywhere, and `deflate_negotiated` asserts a server declines
#                       an offer. Every process started here gets PEERS_DEFLATE=0|1 in
#                       its environment: the hybi server under test must read it.
#   --tls               the TLS mode (env PEERS_TLS=1), with either of the above: every
#                       server serves wss:// only, with a certificate for 127.0.0.1 made
#                       here by openssl (PEERS_TLS_CERT, PEERS_TLS_KEY: PEM files), signed
#                       by a CA made here too, which every client trusts (PEERS_TLS_CA);
#                       clients connect to wss:// URLs. The hostile tests (plain TCP)
#                       are skipped. The hybi server under test must read the three.
#   --hybi-server CMD   the hybi server under test (env HYBI_SERVER). It is run with the
#                       listen address appended, or substituted for `{addr}` in CMD.
#                       Default: target/release/examples/std-peer-server (built here).
#   --hybi-client CMD   the hybi client (env HYBI_CLIENT); base URL appended or put in
#                       place of `{url}`. Default: target/release/examples/std-peer-client.
#   --name NAME         the hybi server's label in the table (env HYBI_SERVER_NAME,
#                       default "hybi").
#
# Environment: PEERS_TIMEOUT (overall limit, s, default 600), PEERS_PORT_BASE (default
# 9010: hybi server on +0, websockets on +1, ws on +2), PEERS_CONTROLS=1 (also run
# websockets<->ws, to check the scripts themselves), PEERS_SKIP_INSTALL=1,
# PEERS_SKIP_BUILD=1, HOSTILE_STORM (bad handshakes in the storm test, default 10000).
#
# Exit: 0 all passed; 1 some scenario or test failed; 3 tooling trouble (install,
# build, port busy, a server did not start, overall timeout).
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
CACHE="$ROOT/.ci/cache/peers"
LOGS="$CACHE/logs"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"

HYBI_SERVER="${HYBI_SERVER:-}"
HYBI_CLIENT="${HYBI_CLIENT:-}"
HYBI_NAME="${HYBI_SERVER_NAME:-hybi}"
DEFLATE="${PEERS_DEFLATE:-0}"
TLS="${PEERS_TLS:-0}"
while (($#)); do
    case "$1" in
        --deflate) DEFLATE=1; shift ;;
        --plain) DEFLATE=0; shift ;;
        --tls) TLS=1; shift ;;
        --hybi-server) HYBI_SERVER="$2"; shift 2 ;;
        --hybi-client) HYBI_CLIENT="$2"; shift 2 ;;
        --name) HYBI_NAME="$2"; shift 2 ;;
        -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 3 ;;
    esac
done

case "$DEFLATE" in
    0 | "") DEFLATE=0 MODE=plain ;;
    1) MODE=deflate ;;
    *) echo "PEERS_DEFLATE must be 1 or 0, not '$DEFLATE'" >&2; exit 3 ;;
esac
# Every server and client started below reads it (the hybi server under test too).
export PEERS_DEFLATE="$DEFLATE"
case "$TLS" in
    0 | "") TLS=0 SCHEME=ws ;;
    1) SCHEME=wss MODE="$MODE+tls" ;;
    *) echo "PEERS_TLS must be 1 or 0, not '$TLS'" >&2; exit 3 ;;
esac
export PEERS_TLS="$TLS"

TIMEOUT="${PEERS_TIMEOUT:-600}"
BASE_PORT="${PEERS_PORT_BASE:-9010}"
HOST=127.0.0.1
T0=$(date +%s)
DEADLINE=$((T0 + TIMEOUT))

say() { printf '[peers] %s\n' "$*"; }
die() { printf '[peers] ERROR: %s\n' "$*" >&2; exit 3; }
remaining() { local r=$((DEADLINE - $(date +%s))); ((r > 0)) && echo "$r" || echo 0; }

# --- processes: every server in its own process group, stopped by the trap -------------
PGIDS=()
cleanup() {
    local pid i
    for pid in "${PGIDS[@]}"; do
        kill -TERM -- "-$pid" 2>/dev/null || true
    done
    for pid in "${PGIDS[@]}"; do
        for ((i = 0; i < 30; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL -- "-$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    PGIDS=()
    [[ -n "${WATCHDOG:-}" ]] && kill "$WATCHDOG" 2>/dev/null
    return 0
}
trap cleanup EXIT
trap 'echo "[peers] interrupted" >&2; exit 3' INT TERM
# Overall timeout: the watchdog stops this script (the trap stops the servers). Its
# sleep holds no output pipe, so a caller reading ours is not kept waiting by it.
(
    exec >/dev/null
    sleep "$TIMEOUT" </dev/null >/dev/null 2>&1 &
    s=$!
    trap 'kill "$s" 2>/dev/null; exit 0' TERM
    wait "$s" && { echo "[peers] ERROR: overall timeout of ${TIMEOUT}s" >&2; kill -TERM $$; }
) &
WATCHDOG=$!

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# start_server NAME PORT CMD...: start CMD in a new session, wait until it listens.
start_server() {
    local name="$1" port="$2" log="$LOGS/server-$1.log" pid i
    shift 2
    port_open "$HOST" "$port" && die "port $port is already in use (set PEERS_PORT_BASE)"
    setsid "$@" >"$log" 2>&1 </dev/null &
    pid=$!
    PGIDS+=("$pid")
    for ((i = 0; i < 300; i++)); do
        port_open "$HOST" "$port" && { say "$name listening on $HOST:$port (pid $pid)"; return 0; }
        kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; die "$name exited before listening"; }
        sleep 0.1
    done
    cat "$log" >&2
    die "$name did not listen on $HOST:$port within 30 s"
}

# expand CMD VALUE PLACEHOLDER: CMD with VALUE in place of PLACEHOLDER, else appended.
expand() {
    if [[ "$1" == *"$3"* ]]; then printf '%s' "${1//"$3"/"$2"}"; else printf '%s %q' "$1" "$2"; fi
}

mkdir -p "$LOGS"
rm -f "$LOGS"/*.log

# --- certificates (TLS mode): a CA, and a certificate for 127.0.0.1 signed by it -------
if [[ "$TLS" == 1 ]]; then
    command -v openssl >/dev/null || die "openssl not found (the TLS mode makes its certificates with it)"
    TLS_DIR="$CACHE/tls"
    rm -rf "$TLS_DIR" && mkdir -p "$TLS_DIR"
    ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
    {
        openssl req -x509 "${ec[@]}" -days 2 -subj "/CN=hybi peers test CA" \
            -keyout "$TLS_DIR/ca.key" -out "$TLS_DIR/ca.pem" &&
        openssl req "${ec[@]}" -subj "/CN=127.0.0.1" -keyout "$TLS_DIR/key.pem" -out "$TLS_DIR/req.pem" &&
        printf '%s\n' "subjectAltName=IP:127.0.0.1,DNS:localhost" "basicConstraints=critical,CA:FALSE" \
            "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" >"$TLS_DIR/ext.cnf" &&
        openssl x509 -req -in "$TLS_DIR/req.pem" -CA "$TLS_DIR/ca.pem" -CAkey "$TLS_DIR/ca.key" \
            -CAcreateserial -days 2 -extfile "$TLS_DIR/ext.cnf" -out "$TLS_DIR/cert.pem"
    } >"$LOGS/openssl.log" 2>&1 || { cat "$LOGS/openssl.log" >&2; die "openssl failed"; }
    export PEERS_TLS_CERT="$TLS_DIR/cert.pem" PEERS_TLS_KEY="$TLS_DIR/key.pem" PEERS_TLS_CA="$TLS_DIR/ca.pem"
fi

# --- install and build --------------------------------------------------------------
if [[ "${PEERS_SKIP_INSTALL:-0}" != 1 ]]; then
    "$HERE/install.sh" || die "install failed"
fi
VENV_PY="$CACHE/venv/bin/python"
export NODE_PATH="$CACHE/node/node_modules"
if [[ -z "$HYBI_SERVER" || -z "$HYBI_CLIENT" ]] && [[ "${PEERS_SKIP_BUILD:-0}" != 1 ]]; then
    say "building the hybi-std peers (release)"
    (cd "$ROOT" && cargo build --release --locked -q -p hybi-std --example std-peer-server --example peer-client) \
        || die "cargo build failed"
fi
HYBI_SERVER="${HYBI_SERVER:-$TARGET/release/examples/std-peer-server}"
HYBI_CLIENT="${HYBI_CLIENT:-$TARGET/release/examples/std-peer-client}"

# --- servers ------------------------------------------------------------------------
HYBI_PORT=$BASE_PORT PY_PORT=$((BASE_PORT + 1)) NODE_PORT=$((BASE_PORT + 2))
say "mode: $MODE (PEERS_DEFLATE=$PEERS_DEFLATE: permessage-deflate $([[ $DEFLATE == 1 ]] && echo on || echo off) in every server and client; PEERS_TLS=$PEERS_TLS: $SCHEME://)"
T_START=$(date +%s)
start_server "$HYBI_NAME" "$HYBI_PORT" bash -c "exec $(expand "$HYBI_SERVER" "$HOST:$HYBI_PORT" '{addr}')"
start_server websockets "$PY_PORT" "$VENV_PY" "$HERE/py_server.py" "$HOST:$PY_PORT"
start_server ws "$NODE_PORT" node "$HERE/node_server.js" "$HOST:$NODE_PORT"
HYBI_PGID="${PGIDS[0]}"

# --- the matrix ---------------------------------------------------------------------
declare -A RESULT DETAIL NEGOTIATED
SCENARIOS=() COLUMNS=() FAILS=()
declare -A CLIENT_CMD=(
    [hybi]="$HYBI_CLIENT"
    [websockets]="$(printf '%q %q' "$VENV_PY" "$HERE/py_client.py")"
    [ws]="$(printf 'node %q' "$HERE/node_client.js")"
)
declare -A SERVER_PORT=([hybi]=$HYBI_PORT [websockets]=$PY_PORT [ws]=$NODE_PORT)

note_scenario() {
    local s
    for s in "${SCENARIOS[@]}"; do [[ "$s" == "$1" ]] && return; done
    SCENARIOS+=("$1")
}

# collect COLUMN LOG STATUS: read RESULT lines into the table.
collect() {
    local col="$1" log="$2" status="$3" name verdict rest seen=0
    COLUMNS+=("$col")
    while read -r _ name verdict rest; do
        note_scenario "$name"
        RESULT["$name|$col"]="$verdict"
        DETAIL["$name|$col"]="$rest"
        [[ "$verdict" == PASS ]] || FAILS+=("$name [$col]: $rest")
        seen=$((seen + 1))
    done < <(grep '^RESULT ' "$log")
    NEGOTIATED["$col"]="$(sed -n 's/^INFO deflate_negotiated Sec-WebSocket-Extensions: //p' "$log" | head -1)"
    if ((status != 0 && seen == 0)) || ((status == 124)); then
        FAILS+=("[$col] exited with $status after $seen results (log: ${log#"$ROOT"/})")
    fi
}

run_pair() {
    local client="$1" server="$2" col log status t
    col="$client->$server"
    [[ "$server" == hybi ]] && col="$client->$HYBI_NAME"
    log="$LOGS/client-$client-to-$server.log"
    local url="$SCHEME://$HOST:${SERVER_PORT[$server]}"
    local cmd
    if [[ "$client" == hybi ]]; then cmd="$(expand "${CLIENT_CMD[$client]}" "$url" '{url}')"
    else cmd="${CLIENT_CMD[$client]} $url"; fi
    t=$(date +%s%N)
    timeout -k 5 "$(remaining)" bash -c "exec $cmd" >"$log" 2>&1 </dev/null
    status=$?
    TIMES+=("$col $(( ($(date +%s%N) - t) / 1000000 )) ms")
    collect "$col" "$log" "$status"
}

TIMES=()
run_pair hybi websockets
run_pair hybi ws
run_pair websockets hybi
run_pair ws hybi
run_pair hybi hybi
if [[ "${PEERS_CONTROLS:-0}" == 1 ]]; then
    run_pair websockets ws
    run_pair ws websockets
fi

# --- hostile tests against the hybi server (raw plain sockets: not in the TLS mode) ------
declare -A HOSTILE
HOSTILE_TESTS=()
if [[ "$TLS" != 1 ]]; then
    HOSTILE_LOG="$LOGS/hostile.log"
    t=$(date +%s%N)
    timeout -k 5 "$(remaining)" python3 "$HERE/hostile.py" "$HOST:$HYBI_PORT" >"$HOSTILE_LOG" 2>&1 </dev/null
    hostile_status=$?
    TIMES+=("hostile->$HYBI_NAME $(( ($(date +%s%N) - t) / 1000000 )) ms")
    while read -r _ name verdict rest; do
        HOSTILE_TESTS+=("$name")
        HOSTILE["$name"]="$verdict"
        DETAIL["$name|hostile"]="$rest"
        [[ "$verdict" == PASS ]] || FAILS+=("$name [hostile->$HYBI_NAME]: $rest")
    done < <(grep '^RESULT ' "$HOSTILE_LOG")
    if ((hostile_status != 0 && ${#HOSTILE_TESTS[@]} == 0)) || ((hostile_status == 124)); then
        FAILS+=("[hostile->$HYBI_NAME] exited with $hostile_status (log: ${HOSTILE_LOG#"$ROOT"/})")
    fi
fi

kill -0 "$HYBI_PGID" 2>/dev/null || FAILS+=("the $HYBI_NAME server died during the run (log: .ci/cache/peers/logs/server-$HYBI_NAME.log)")

# --- report ---------------------------------------------------------------------------
passed=0 failed=0
w=0
for s in "${SCENARIOS[@]}" "${HOSTILE_TESTS[@]}"; do ((${#s} > w)) && w=${#s}; done
printf '\n%-*s' "$w" "scenario ($MODE mode)"
declare -A CW
for c in "${COLUMNS[@]}"; do CW["$c"]=$((${#c} > 16 ? ${#c} : 16)); printf '  %-*s' "${CW["$c"]}" "$c"; done
printf '\n'
for s in "${SCENARIOS[@]}"; do
    printf '%-*s' "$w" "$s"
    for c in "${COLUMNS[@]}"; do
        v="${RESULT["$s|$c"]:-MISSING}"
        if [[ "$v" == PASS ]]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
        [[ "$v" == MISSING ]] && FAILS+=("$s [$c]: no result (log: .ci/cache/peers/logs/)")
        printf '  %-*s' "${CW["$c"]}" "$v"
    done
    printf '\n'
done
printf '\n%-*s  %s\n' "$w" "hostile (raw socket)" "hostile->$HYBI_NAME"
for s in "${HOSTILE_TESTS[@]}"; do
    v="${HOSTILE["$s"]}"
    if [[ "$v" == PASS ]]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
    printf '%-*s  %-5s %s\n' "$w" "$s" "$v" "${DETAIL["$s|hostile"]}"
done

printf '\nSec-WebSocket-Extensions answered to deflate_negotiated'"'"'s offer (%s mode):\n' "$MODE"
cw=0
for c in "${COLUMNS[@]}"; do ((${#c} > cw)) && cw=${#c}; done
for c in "${COLUMNS[@]}"; do printf '  %-*s  %s\n' "$cw" "$c" "${NEGOTIATED["$c"]:-(no report)}"; done

printf '\ntimings:\n'
for t in "${TIMES[@]}"; do printf '  %s\n' "$t"; done
printf '  total (servers up to report) %ss, whole script %ss\n' "$(($(date +%s) - T_START))" "$(($(date +%s) - T0))"

if ((${#FAILS[@]})); then
    printf '\nfailures:\n'
    for f in "${FAILS[@]}"; do printf '  %s\n' "$f"; done
    printf 'logs: %s\n' "${LOGS#"$ROOT"/}"
    failed=$((failed > 0 ? failed : 1))
fi
printf '\npeers (%s, %s mode): %d passed, %d failed\n' "$HYBI_NAME" "$MODE" "$passed" "$failed"
((failed == 0 && ${#FAILS[@]} == 0))

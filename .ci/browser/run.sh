#!/usr/bin/env bash
# Headless-Chromium tests: Debian's chromium, driven by playwright-core, against a
# server of the chat example's contract (the page at `/`, the chat room at `/chat`,
# an echo at `/echo`). See README.md here.
#
# Usage: .ci/browser/run.sh [--server CMD] [--name NAME] [--expect-deflate] [--tls] [TEST...]
#
#   --server CMD   the server under test (env BROWSER_SERVER). It is run with the
#                  listen address (127.0.0.1:PORT) in place of `{addr}` in CMD, or
#                  appended. Default: the hybi-mio chat example,
#                  target/release/examples/mio-chat (built here).
#   --name NAME    the server's label in the report (env BROWSER_SERVER_NAME; default
#                  "hybi-mio chat", or "server" with --server).
#   --expect-deflate  the server has permessage-deflate on (env BROWSER_EXPECT_DEFLATE=1):
#                  every WebSocket the tests open must report it in `ws.extensions`
#                  (Chromium offers it on every connection). Without it, they must
#                  report no extension.
#   --tls          the TLS mode (env BROWSER_TLS=1): a self-signed certificate for
#                  127.0.0.1 is made here by openssl, its PEM files replace `{cert}` and
#                  `{key}` in CMD, the page is loaded over https:// and every socket must
#                  be wss:// (Chromium runs with --ignore-certificate-errors). The default
#                  server then gets `--tls-cert {cert} --tls-key {key}`.
#   TEST...        which tests to run (echo, chat; default both).
#
# Environment: BROWSER_TIMEOUT (overall limit, s, default 300), BROWSER_PORT (default: a
# free port), BROWSER_SKIP_INSTALL=1, BROWSER_SKIP_BUILD=1, and those of lib.mjs
# (BROWSER_CHROMIUM, BROWSER_TEST_TIMEOUT, BROWSER_HEADED) and chat.test.mjs
# (BROWSER_CHAT_LIMIT, BROWSER_CHAT_WAIT).
#
# Output: PASS/FAIL per test, then `browser: N passed, M failed`. A failed test's
# screenshots and page logs (console, page errors, WebSocket frames as the browser saw
# them) are in .ci/cache/browser/artifacts/, its output and the server's in
# .ci/cache/browser/logs/; the paths are printed.
#
# Exit: 0 all passed; 1 a test failed; 3 tooling trouble (install, build, port busy,
# the server did not start, overall timeout).
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
CACHE="$ROOT/.ci/cache/browser"
LOGS="$CACHE/logs"
ARTIFACTS="$CACHE/artifacts"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"

SERVER="${BROWSER_SERVER:-}"
NAME="${BROWSER_SERVER_NAME:-}"
EXPECT_DEFLATE="${BROWSER_EXPECT_DEFLATE:-0}"
TLS="${BROWSER_TLS:-0}"
TESTS=()
while (($#)); do
    case "$1" in
        --expect-deflate) EXPECT_DEFLATE=1; shift ;;
        --tls) TLS=1; shift ;;
        --server) SERVER="$2"; shift 2 ;;
        --name) NAME="$2"; shift 2 ;;
        -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        -*) echo "unknown argument: $1 (see --help)" >&2; exit 3 ;;
        *) TESTS+=("$1"); shift ;;
    esac
done
((${#TESTS[@]})) || TESTS=(echo chat)
[[ "$EXPECT_DEFLATE" == 0 || "$EXPECT_DEFLATE" == 1 ]] \
    || { echo "BROWSER_EXPECT_DEFLATE must be 1 or 0, not '$EXPECT_DEFLATE'" >&2; exit 3; }
export BROWSER_EXPECT_DEFLATE="$EXPECT_DEFLATE"
[[ "$TLS" == 0 || "$TLS" == 1 ]] || { echo "BROWSER_TLS must be 1 or 0, not '$TLS'" >&2; exit 3; }
export BROWSER_TLS="$TLS"
for t in "${TESTS[@]}"; do
    [[ -f "$HERE/$t.test.mjs" ]] || { echo "no such test: $t ($HERE/$t.test.mjs)" >&2; exit 3; }
done

TIMEOUT="${BROWSER_TIMEOUT:-300}"
HOST=127.0.0.1
T0=$(date +%s)
DEADLINE=$((T0 + TIMEOUT))

say() { printf '[browser] %s\n' "$*"; }
die() { printf '[browser] ERROR: %s\n' "$*" >&2; exit 3; }
remaining() { local r=$((DEADLINE - $(date +%s))); ((r > 0)) && echo "$r" || echo 1; }
ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }

# --- processes: the server and each test in a process group of its own ---------------
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
trap 'echo "[browser] interrupted" >&2; exit 3' INT TERM
# Overall timeout: the watchdog stops this script (the trap stops the rest).
(
    exec >/dev/null
    sleep "$TIMEOUT" >/dev/null 2>&1 &
    s=$!
    trap 'kill "$s" 2>/dev/null; exit 0' TERM
    wait "$s" && { echo "[browser] ERROR: overall timeout of ${TIMEOUT}s" >&2; kill -TERM $$; }
) &
WATCHDOG=$!

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }
expand() {
    if [[ "$1" == *"$3"* ]]; then printf '%s' "${1//"$3"/"$2"}"; else printf '%s %q' "$1" "$2"; fi
}

mkdir -p "$LOGS"
rm -rf "$ARTIFACTS"
rm -f "$LOGS"/*.log
TIMES=()

# --- install and build ----------------------------------------------------------------
if [[ "${BROWSER_SKIP_INSTALL:-0}" != 1 ]]; then
    t=$(date +%s%N)
    "$HERE/install.sh" || die "install failed"
    TIMES+=("install $(ms_since "$t") ms")
fi
if [[ -z "$SERVER" ]]; then
    NAME="${NAME:-hybi-mio chat}"
    if [[ "${BROWSER_SKIP_BUILD:-0}" != 1 ]]; then
        say "building the hybi-mio chat example (release)"
        t=$(date +%s%N)
        (cd "$ROOT" && cargo build --release --locked -q -p hybi-mio --example mio-chat) || die "cargo build failed"
        TIMES+=("build $(ms_since "$t") ms")
    fi
    SERVER="$(printf '%q' "$TARGET/release/examples/mio-chat") {addr}"
    ((TLS)) && SERVER="$SERVER --tls-cert {cert} --tls-key {key}"
fi
NAME="${NAME:-server}"

# --- the certificate (TLS mode): self-signed, for 127.0.0.1 ----------------------------
if ((TLS)); then
    command -v openssl >/dev/null || die "openssl not found (the TLS mode makes its certificate with it)"
    TLS_DIR="$CACHE/tls"
    rm -rf "$TLS_DIR" && mkdir -p "$TLS_DIR"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
        -subj "/CN=127.0.0.1" -addext "subjectAltName=IP:127.0.0.1" \
        -keyout "$TLS_DIR/key.pem" -out "$TLS_DIR/cert.pem" >"$LOGS/openssl.log" 2>&1 \
        || { cat "$LOGS/openssl.log" >&2; die "openssl could not make the certificate"; }
    [[ "$SERVER" == *"{cert}"* && "$SERVER" == *"{key}"* ]] \
        || die "--tls: the server command must take the certificate and key as {cert} and {key}"
    SERVER="${SERVER//"{cert}"/"$(printf '%q' "$TLS_DIR/cert.pem")"}"
    SERVER="${SERVER//"{key}"/"$(printf '%q' "$TLS_DIR/key.pem")"}"
fi

# --- the server -------------------------------------------------------------------------
PORT="${BROWSER_PORT:-}"
if [[ -z "$PORT" ]]; then
    PORT="$(node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })')" \
        || die "cannot find a free port"
fi
port_open "$HOST" "$PORT" && die "port $PORT is already in use (set BROWSER_PORT)"
SERVER_LOG="$LOGS/server.log"
CMD="$(expand "$SERVER" "$HOST:$PORT" '{addr}')"
setsid bash -c "cd $(printf '%q' "$ROOT") && exec $CMD" >"$SERVER_LOG" 2>&1 </dev/null &
SERVER_PID=$!
PGIDS+=("$SERVER_PID")
for ((i = 0; ; i++)); do
    port_open "$HOST" "$PORT" && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$SERVER_LOG" >&2; die "$NAME exited before listening ($CMD)"; }
    ((i < 300)) || { cat "$SERVER_LOG" >&2; die "$NAME did not listen on $HOST:$PORT within 30 s ($CMD)"; }
    sleep 0.1
done
BASE="$( ((TLS)) && echo https || echo http)://$HOST:$PORT"
say "$NAME listening on $BASE (pid $SERVER_PID): $CMD"
say "extensions expected: $( ((EXPECT_DEFLATE)) && echo 'permessage-deflate (--expect-deflate)' || echo 'none (no --expect-deflate)')"

# --- the tests --------------------------------------------------------------------------
# Each test limits itself (BROWSER_TEST_TIMEOUT, default 60 s: it then still saves its
# screenshots); `timeout` is the backstop.
export BROWSER_ARTIFACTS="$ARTIFACTS"
export BROWSER_TEST_TIMEOUT="${BROWSER_TEST_TIMEOUT:-60000}"
backstop=$((BROWSER_TEST_TIMEOUT / 1000 + 30))
passed=0 failed=0
for test in "${TESTS[@]}"; do
    log="$LOGS/$test.log"
    t=$(date +%s%N)
    limit=$(remaining)
    ((limit > backstop)) && limit=$backstop
    setsid timeout -k 5 "$limit" node "$HERE/$test.test.mjs" "$BASE" >"$log" 2>&1 </dev/null &
    pid=$!
    PGIDS+=("$pid")
    wait "$pid"
    status=$?
    kill -KILL -- "-$pid" 2>/dev/null || true # anything it left behind
    elapsed=$(ms_since "$t")
    TIMES+=("$test $elapsed ms")
    result="$(grep '^RESULT ' "$log" | tail -1)"
    if ((status == 0)) && [[ "$result" == "RESULT $test PASS"* ]]; then
        passed=$((passed + 1))
        printf 'PASS  %-5s %s (%s ms)\n' "$test" "${result#"RESULT $test PASS "}" "$elapsed"
    else
        failed=$((failed + 1))
        ((status == 124 || status == 137)) && result="RESULT $test FAIL killed after ${limit}s"
        [[ -n "$result" ]] || result="RESULT $test FAIL exit status $status, no result line"
        printf 'FAIL  %-5s %s (%s ms)\n' "$test" "${result#"RESULT $test FAIL "}" "$elapsed"
        grep -v '^RESULT ' "$log" | grep -v '^ok - ' | sed 's/^/      /'
        printf '      full output: %s\n' "${log#"$ROOT"/}"
    fi
done

if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    printf 'FAIL  the server (%s) died during the tests; its log: %s\n' "$NAME" "${SERVER_LOG#"$ROOT"/}"
    tail -20 "$SERVER_LOG" | sed 's/^/      /'
    failed=$((failed + 1))
fi
if ((failed)); then
    printf '\nserver log: %s\n' "${SERVER_LOG#"$ROOT"/}"
    [[ -d "$ARTIFACTS" ]] && printf 'artifacts:  %s\n' "${ARTIFACTS#"$ROOT"/}"
fi

printf '\ntimings:'
printf ' %s;' "${TIMES[@]}"
printf ' whole script %ss\n' "$(($(date +%s) - T0))"
printf '\nbrowser: %d passed, %d failed\n' "$passed" "$failed"
((failed == 0))

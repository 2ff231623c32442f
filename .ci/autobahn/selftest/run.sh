#!/usr/bin/env bash
# Self-test of the Autobahn tooling, with third-party peers (Python `websockets`)
# standing in for hybi. It tests the scripts, not any WebSocket library:
#
#  1. check.py unit tests on synthetic reports
#  2. run-fuzzingclient.sh against selftest/echo_server.py   (full 1-10, real report)
#  3. run-fuzzingserver.sh with selftest/fuzzing_client.py   (full 1-10, real report)
#  4. check.py on doctored copies of both real reports (all OK -> pass, one FAILED -> fail, ...)
#  5. failure plumbing: peer exits at once, port already taken, peer that never
#     answers (overall timeout, processes cleaned up), non-WebSocket server,
#     server that dies mid-run (cases MISSING), client that never updates reports
#
# The python peers have known NON-STRICT/FAILED cases, so steps 2 and 3 expect
# run-*.sh to exit 1 (cases failed) with a complete report, not 0.
#
#   bash .ci/autobahn/selftest/run.sh          (about 1-2 minutes on 2 cores)
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
AB="$(cd "$HERE/.." && pwd)"
ROOT="$(cd "$AB/../.." && pwd)"
cd "$ROOT" || exit 1
CACHE=.ci/cache/autobahn
PY3="$CACHE/selftest-venv/bin/python"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

FAILS=0
RESULTS=()
step() { printf '\n===== selftest: %s =====\n' "$*"; }
# expect NAME WANTED-EXIT-CODES GOT
expect() {
    local name="$1" want="$2" got="$3"
    if [[ " $want " == *" $got "* ]]; then
        RESULTS+=("ok    $name (exit $got)")
    else
        RESULTS+=("FAIL  $name (exit $got, wanted $want)")
        FAILS=$((FAILS + 1))
    fi
}
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

step "install"
bash "$AB/install.sh" || { echo "install.sh failed"; exit 1; }
bash "$HERE/install.sh" || { echo "selftest/install.sh failed"; exit 1; }

step "check.py unit tests"
python3 -m unittest discover -s "$HERE" -p 'test_*.py' -v 2>&1 | tail -n 30
expect "check.py unit tests" 0 "${PIPESTATUS[0]}"

step "fuzzingclient, full 1-10, websockets echo server"
t0=$(date +%s)
bash "$AB/run-fuzzingclient.sh" "$PY3" "$HERE/echo_server.py" 127.0.0.1:9002 > "$TMP/fc.log" 2>&1
rc=$?
T_FC=$(($(date +%s) - t0))
grep -v '^Running test case\|^Cases = ' "$TMP/fc.log"
expect "run-fuzzingclient.sh, websockets echo server (known failures)" 1 "$rc"
expect "fuzzingclient report complete (no MISSING)" 0 "$(grep -c 'MISSING CASES' "$TMP/fc.log")"
cp -r "$CACHE/reports/servers" "$TMP/servers"

step "fuzzingserver, full 1-10, websockets client"
t0=$(date +%s)
bash "$AB/run-fuzzingserver.sh" "$PY3" "$HERE/fuzzing_client.py" ws://127.0.0.1:9001 hybi > "$TMP/fs.log" 2>&1
rc=$?
T_FS=$(($(date +%s) - t0))
grep -v '^case \|^  case [0-9]*: ' "$TMP/fs.log"
expect "run-fuzzingserver.sh, websockets client (known failures)" 1 "$rc"
expect "fuzzingserver report complete (no MISSING)" 0 "$(grep -c 'MISSING CASES' "$TMP/fs.log")"
cp -r "$CACHE/reports/clients" "$TMP/clients"

for d in servers clients; do
    step "check.py on doctored copies of the real $d report"
    AUTOBAHN_REAL_REPORT="$TMP/$d" python3 -m unittest discover -v -s "$HERE" -p 'test_*.py' -k RealReportTest 2>&1 | tail -n 12
    expect "check.py on doctored $d report" 0 "${PIPESTATUS[0]}"
done

step "failure plumbing"
# Small specs with their own outdirs: the real reports above stay for inspection.
SMALL="$TMP/small-fc.json"
SMALL_FS="$TMP/small-fs.json"
python3 - "$AB" "$TMP" <<'EOF'
import json, sys
for mode, name in (("fuzzingclient", "small-fc"), ("fuzzingserver", "small-fs")):
    s = json.load(open("%s/%s.json" % (sys.argv[1], mode)))
    s["cases"] = ["1.1.*", "2.1"]
    s["outdir"] = "./.ci/cache/autobahn/reports/selftest-" + name
    json.dump(s, open("%s/%s.json" % (sys.argv[2], name), "w"), indent=1)
EOF

# Server command that exits at once: tooling error (3), quickly.
AUTOBAHN_SKIP_INSTALL=1 AUTOBAHN_START_TIMEOUT=20 AUTOBAHN_SPEC="$SMALL" bash "$AB/run-fuzzingclient.sh" false > "$TMP/p1.log" 2>&1
expect "server exits before listening -> 3" 3 $?
grep -q 'exited before listening' "$TMP/p1.log"; expect "  ... and says the server exited" 0 $?
tail -n 3 "$TMP/p1.log"

# Port already taken by something else: refuse to test it (3).
"$PY3" "$HERE/silent_listener.py" 9002 60 &
BLOCKER=$!
sleep 0.5
AUTOBAHN_SKIP_INSTALL=1 AUTOBAHN_SPEC="$SMALL" bash "$AB/run-fuzzingclient.sh" "$PY3" "$HERE/echo_server.py" 127.0.0.1:9002 > "$TMP/p2.log" 2>&1
expect "port 9002 already in use -> 3" 3 $?
grep -q 'already in use before the server was started' "$TMP/p2.log"; expect "  ... and says the port is in use" 0 $?
kill "$BLOCKER"; wait "$BLOCKER" 2>/dev/null
tail -n 1 "$TMP/p2.log"

# Peer that accepts TCP but never answers: the overall timeout ends the run (3)
# and the trap stops the peer (port free afterwards).
t0=$(date +%s)
AUTOBAHN_SKIP_INSTALL=1 AUTOBAHN_TIMEOUT=15 AUTOBAHN_SPEC="$SMALL" bash "$AB/run-fuzzingclient.sh" \
    "$PY3" "$HERE/silent_listener.py" 9002 600 \
    > "$TMP/p3.log" 2>&1
expect "silent server, AUTOBAHN_TIMEOUT=15 -> 3" 3 $?
took=$(($(date +%s) - t0))
grep -q 'hit the overall timeout' "$TMP/p3.log"; expect "  ... and says it hit the overall timeout" 0 $?
expect "silent server run ended within 40s (took ${took}s)" 0 "$((took > 40))"
sleep 0.5
port_free 9002; expect "port 9002 free after the timeout (server stopped)" 0 $?
tail -n 2 "$TMP/p3.log"

# A plain HTTP server: every handshake fails, the cases are FAILED (1).
AUTOBAHN_SKIP_INSTALL=1 AUTOBAHN_SPEC="$SMALL" bash "$AB/run-fuzzingclient.sh" \
    python3 -m http.server --bind 127.0.0.1 --directory "$TMP" 9002 > "$TMP/p4.log" 2>&1
expect "HTTP server instead of WebSocket -> 1" 1 $?
grep -q 'The WebSocket opening handshake was never completed' "$TMP/p4.log"; expect "  ... and reports the failed handshakes" 0 $?
grep -E '^(FAILED|OK) ' "$TMP/p4.log" || true

# A server that dies after 20 connections: the report has the first cases only,
# the rest are MISSING (1), and the run says the server died.
AUTOBAHN_SKIP_INSTALL=1 bash "$AB/run-fuzzingclient.sh" "$PY3" "$HERE/echo_server.py" 127.0.0.1:9002 20 > "$TMP/p6.log" 2>&1
expect "server dies after 20 cases -> 1" 1 $?
grep -q 'MISSING CASES (28[0-9])' "$TMP/p6.log"; expect "  ... and lists the cases not run as MISSING" 0 $?
grep -q 'the server exited during the run' "$TMP/p6.log"; expect "  ... and says the server died" 0 $?
grep -E '^(expected|check:)' "$TMP/p6.log"
rm -rf "$CACHE/reports/servers"
cp -r "$TMP/servers" "$CACHE/reports/servers"   # keep the full report for inspection

# A client that never calls /updateReports: no report, no verdict (2); suite stopped.
AUTOBAHN_SKIP_INSTALL=1 AUTOBAHN_SPEC="$SMALL_FS" bash "$AB/run-fuzzingserver.sh" true > "$TMP/p5.log" 2>&1
expect "client does nothing -> 2 (no report)" 2 $?
grep -q 'check: no report' "$TMP/p5.log"; expect "  ... and says there is no report" 0 $?
sleep 0.5
port_free 9001; expect "port 9001 free after the run (fuzzingserver stopped)" 0 $?
tail -n 2 "$TMP/p5.log"
rm -rf "$CACHE/reports/selftest-small-fc" "$CACHE/reports/selftest-small-fs"

step "summary"
printf '%s\n' "${RESULTS[@]}"
echo "full fuzzingclient run: ${T_FC}s, full fuzzingserver run: ${T_FS}s (wall, incl. start/stop/check)"
if ((FAILS)); then
    echo "selftest: $FAILS check(s) FAILED"
    exit 1
fi
echo "selftest: all ${#RESULTS[@]} checks passed"

#!/usr/bin/env bash
# Autobahn|Testsuite against a WebSocket *server* (the suite is the client).
#
#   .ci/autobahn/run-fuzzingclient.sh SERVER-COMMAND [ARGS...]
#   e.g. .ci/autobahn/run-fuzzingclient.sh target/release/examples/std-autobahn-server 127.0.0.1:9002
#
# Installs the suite if needed, starts SERVER-COMMAND in the background, waits
# until the spec's server address (127.0.0.1:9002) accepts connections, runs
# `wstest -m fuzzingclient`, stops the server and judges the report with
# check.py (agent "hybi"). Exit codes: see lib.sh (0 pass, 1 case failures,
# 2 no verdict, 3 tooling trouble / timeout).
#
# Environment: AUTOBAHN_TIMEOUT (overall seconds, default 900),
# AUTOBAHN_START_TIMEOUT (default 120), AUTOBAHN_SPEC (default
# fuzzingclient.json here), AUTOBAHN_CHECK_ARGS (extra check.py arguments,
# e.g. '--allow "FAILED BY CLIENT"'), AUTOBAHN_SKIP_INSTALL=1.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$AB_ROOT"

(($# > 0)) || { echo "usage: $0 SERVER-COMMAND [ARGS...]" >&2; exit 3; }
ab_traps

SPEC="${AUTOBAHN_SPEC:-$AB_HERE/fuzzingclient.json}"
AGENT="$(ab_spec_get "$SPEC" 's["servers"][0]["agent"]')"
URL="$(ab_spec_get "$SPEC" 's["servers"][0]["url"]')"
OUTDIR="$(ab_spec_get "$SPEC" 's["outdir"]')"
HOSTPORT="${URL#ws://}"; HOSTPORT="${HOSTPORT%%/*}"
HOST="${HOSTPORT%:*}"; PORT="${HOSTPORT##*:}"
[[ "$(ab_spec_get "$SPEC" 'len(s["servers"])')" == 1 ]] || ab_die "$SPEC must name exactly one server"

ab_install
mkdir -p "$AB_LOGS"
SERVER_LOG="$AB_LOGS/$(basename "$SPEC" .json)-server.log"

# A stale listener would be tested instead of SERVER-COMMAND.
if ab_port_open "$HOST" "$PORT"; then
    ab_die "$HOST:$PORT is already in use before the server was started"
fi
# Never judge an old report.
rm -rf "$OUTDIR"
mkdir -p "$OUTDIR"
EXPECTED="$AB_CACHE/expected-fuzzingclient.txt"
"$AB_PY2" "$AB_HERE/wstest.py" --list-cases "$SPEC" > "$EXPECTED"
ab_say "spec ${SPEC#"$AB_ROOT"/}: $(wc -l < "$EXPECTED") cases for agent $AGENT at $URL, report in $OUTDIR"

ab_start_bg "server" "$SERVER_LOG" "$@"
ab_wait_listen "$HOST" "$PORT" "$SERVER_LOG"

T_CASES="$(date +%s)"
ab_run_fg "wstest fuzzingclient" "$AB_PY2" -u "$AB_HERE/wstest.py" -m fuzzingclient -s "$SPEC"
WSTEST_RC=$AB_FG_RC
T_CASES=$(($(date +%s) - T_CASES))
ab_say "wstest fuzzingclient finished in ${T_CASES}s (exit $WSTEST_RC)"

SERVER_DIED=0
ab_bg_alive || SERVER_DIED=1
ab_stop_bg
if ((SERVER_DIED)); then
    ab_say "WARNING: the server exited during the run; last lines of its log:"
    tail -n 20 "$SERVER_LOG" || true
fi

CHECK_RC=0
eval "CHECK_ARGS=(${AUTOBAHN_CHECK_ARGS:-})"
python3 "$AB_HERE/check.py" --agent "$AGENT" --expect-cases "$EXPECTED" "${CHECK_ARGS[@]}" "$OUTDIR" || CHECK_RC=$?
ab_say "fuzzingclient: wall time $(ab_elapsed)s (cases ${T_CASES}s), check exit $CHECK_RC"
if ((CHECK_RC == 0 && (WSTEST_RC != 0 || SERVER_DIED))); then
    ab_die "report passed, but wstest exited $WSTEST_RC / the server died"
fi
exit "$CHECK_RC"

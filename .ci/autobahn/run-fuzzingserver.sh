#!/usr/bin/env bash
# Autobahn|Testsuite against a WebSocket *client* (the suite is the server).
#
#   .ci/autobahn/run-fuzzingserver.sh CLIENT-COMMAND [ARGS...]
#   e.g. .ci/autobahn/run-fuzzingserver.sh target/release/examples/std-autobahn-client ws://127.0.0.1:9001
#
# Installs the suite if needed, starts `wstest -m fuzzingserver` on the spec's
# url (ws://127.0.0.1:9001, embedded web server off), waits until it listens,
# runs CLIENT-COMMAND (which must fetch /getCaseCount, run
# /runCase?case=N&agent=hybi for every case echoing each message, then call
# /updateReports?agent=hybi), stops the suite and judges the report with
# check.py. Exit codes: see lib.sh (0 pass, 1 case failures, 2 no verdict,
# 3 tooling trouble / timeout).
#
# Environment: AUTOBAHN_TIMEOUT (overall seconds, default 900),
# AUTOBAHN_START_TIMEOUT (default 120), AUTOBAHN_SPEC (default
# fuzzingserver.json here), AUTOBAHN_AGENT (default hybi),
# AUTOBAHN_CHECK_ARGS (extra check.py arguments), AUTOBAHN_SKIP_INSTALL=1.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$AB_ROOT"

(($# > 0)) || { echo "usage: $0 CLIENT-COMMAND [ARGS...]" >&2; exit 3; }
ab_traps

SPEC="${AUTOBAHN_SPEC:-$AB_HERE/fuzzingserver.json}"
AGENT="${AUTOBAHN_AGENT:-hybi}"
URL="$(ab_spec_get "$SPEC" 's["url"]')"
OUTDIR="$(ab_spec_get "$SPEC" 's["outdir"]')"
HOSTPORT="${URL#ws://}"; HOSTPORT="${HOSTPORT%%/*}"
HOST="${HOSTPORT%:*}"; PORT="${HOSTPORT##*:}"

ab_install
mkdir -p "$AB_LOGS"
SUITE_LOG="$AB_LOGS/$(basename "$SPEC" .json)-wstest.log"

if ab_port_open "$HOST" "$PORT"; then
    ab_die "$HOST:$PORT is already in use before the fuzzingserver was started"
fi
rm -rf "$OUTDIR"
mkdir -p "$OUTDIR"
EXPECTED="$AB_CACHE/expected-fuzzingserver.txt"
"$AB_PY2" "$AB_HERE/wstest.py" --list-cases "$SPEC" > "$EXPECTED"
ab_say "spec ${SPEC#"$AB_ROOT"/}: $(wc -l < "$EXPECTED") cases at $URL for agent $AGENT, report in $OUTDIR"

# python -u: unbuffered log. --webport 0: no embedded web server (it would take port 8080).
ab_start_bg "wstest fuzzingserver" "$SUITE_LOG" "$AB_PY2" -u "$AB_HERE/wstest.py" -m fuzzingserver -s "$SPEC" --webport 0
ab_wait_listen "$HOST" "$PORT" "$SUITE_LOG"

T_CASES="$(date +%s)"
ab_run_fg "client" "$@"
CLIENT_RC=$AB_FG_RC
T_CASES=$(($(date +%s) - T_CASES))
ab_say "client finished in ${T_CASES}s (exit $CLIENT_RC)"

SUITE_DIED=0
ab_bg_alive || SUITE_DIED=1
ab_stop_bg
if ((SUITE_DIED)); then
    ab_say "WARNING: wstest fuzzingserver exited during the run; last lines of its log:"
    tail -n 20 "$SUITE_LOG" || true
fi

CHECK_RC=0
eval "CHECK_ARGS=(${AUTOBAHN_CHECK_ARGS:-})"
python3 "$AB_HERE/check.py" --agent "$AGENT" --expect-cases "$EXPECTED" "${CHECK_ARGS[@]}" "$OUTDIR" || CHECK_RC=$?
ab_say "fuzzingserver: wall time $(ab_elapsed)s (cases ${T_CASES}s), check exit $CHECK_RC"
if ((CHECK_RC == 0 && (CLIENT_RC != 0 || SUITE_DIED))); then
    ab_die "report passed, but the client exited $CLIENT_RC / wstest died"
fi
exit "$CHECK_RC"

# shellcheck shell=bash disable=SC2034  # variables are used by the scripts that source this
# Shared helpers for run-fuzzingclient.sh / run-fuzzingserver.sh (sourced, not run).
#
# Exit codes of the run scripts:
#   0  every case passed (check.py)
#   1  some case failed or is missing (check.py)
#   2  no verdict: no report, agent missing, no case ran (check.py)
#   3  tooling trouble: install failed, port busy, peer never listened,
#      peer died early, overall timeout

AB_HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
AB_ROOT="$(cd "$AB_HERE/../.." && pwd)"
AB_CACHE="$AB_ROOT/.ci/cache/autobahn"
AB_LOGS="$AB_CACHE/logs"

# Overall limit for one run script, in seconds (install + start + all cases + check).
AB_TIMEOUT="${AUTOBAHN_TIMEOUT:-1800}"
# How long a peer may take to start listening, in seconds.
AB_START_TIMEOUT="${AUTOBAHN_START_TIMEOUT:-120}"

AB_T0="$(date +%s)"
AB_DEADLINE=$((AB_T0 + AB_TIMEOUT))
AB_BG_PID=""
AB_BG_NAME=""
AB_FG_PID=""

ab_say() { printf '[autobahn] %s\n' "$*"; }
ab_die() { printf '[autobahn] ERROR: %s\n' "$*" >&2; exit 3; }

ab_remaining() {
    local r=$((AB_DEADLINE - $(date +%s)))
    ((r > 0)) && echo "$r" || echo 0
}

# ab_spec_get SPEC EXPR: evaluate a Python expression over the spec `s`.
ab_spec_get() {
    python3 -c 'import json, sys; s = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}

# ab_port_open HOST PORT: true if something accepts TCP connections there.
ab_port_open() {
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

# ab_start_bg NAME LOGFILE CMD...: start CMD in its own process group (setsid),
# output to LOGFILE. The group is stopped by ab_stop_bg / the EXIT trap.
ab_start_bg() {
    AB_BG_NAME="$1"
    local log="$2"
    shift 2
    ab_say "starting $AB_BG_NAME: $* (log: ${log#"$AB_ROOT"/})"
    # A background job of a non-interactive shell is not a group leader, so
    # setsid does not fork: $! is the new session and process group id.
    setsid "$@" >"$log" 2>&1 </dev/null &
    AB_BG_PID=$!
}

# ab_stop_bg: SIGTERM the background group, SIGKILL it after 10 s.
ab_stop_bg() {
    [[ -n "$AB_BG_PID" ]] || return 0
    local pid="$AB_BG_PID" i
    AB_BG_PID=""
    if kill -0 "$pid" 2>/dev/null; then
        ab_say "stopping $AB_BG_NAME (pid $pid)"
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 100; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
    fi
    # The leader may be gone while others of its group live on.
    kill -KILL -- "-$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

ab_bg_alive() {
    [[ -n "$AB_BG_PID" ]] && kill -0 "$AB_BG_PID" 2>/dev/null
}

# ab_wait_listen HOST PORT LOGFILE: wait until HOST:PORT accepts connections,
# failing if the background process exits first or the start timeout passes.
ab_wait_listen() {
    local host="$1" port="$2" log="$3" limit
    limit=$(($(date +%s) + AB_START_TIMEOUT))
    ((limit < AB_DEADLINE)) || limit=$AB_DEADLINE
    until ab_port_open "$host" "$port"; do
        if ! ab_bg_alive; then
            ab_say "$AB_BG_NAME exited before listening on $host:$port; its log:"
            tail -n 40 "$log" >&2 || true
            exit 3
        fi
        if (($(date +%s) >= limit)); then
            ab_say "$AB_BG_NAME did not listen on $host:$port within ${AB_START_TIMEOUT}s; its log:"
            tail -n 40 "$log" >&2 || true
            exit 3
        fi
        sleep 0.2
    done
    ab_say "$AB_BG_NAME listens on $host:$port (after $(($(date +%s) - AB_T0))s)"
}

# ab_run_fg NAME CMD...: run CMD bounded by the overall deadline and wait for it.
# Sets AB_FG_RC. A timeout (124) or a kill (137) ends the script with 3.
# CMD runs as a waited-for background job so that a signal to this script
# runs the trap at once instead of after CMD ends; `timeout` puts itself and
# CMD into their own process group, which ab_cleanup stops.
ab_run_fg() {
    local name="$1" r
    shift
    r="$(ab_remaining)"
    ((r > 0)) || ab_die "overall timeout (${AB_TIMEOUT}s) reached before $name"
    ab_say "running $name (at most ${r}s): $*"
    AB_FG_RC=0
    timeout --kill-after=10 "$r" "$@" &
    AB_FG_PID=$!
    wait "$AB_FG_PID" || AB_FG_RC=$?
    AB_FG_PID=""
    if ((AB_FG_RC == 124 || AB_FG_RC == 137)); then
        ab_die "$name hit the overall timeout (AUTOBAHN_TIMEOUT=${AB_TIMEOUT}s)"
    fi
}

# ab_cleanup: EXIT trap; stops whatever this script started.
ab_cleanup() {
    local rc=$?
    trap - EXIT INT TERM HUP
    if [[ -n "${AB_FG_PID:-}" ]]; then
        kill -TERM -- "-$AB_FG_PID" 2>/dev/null || kill -TERM "$AB_FG_PID" 2>/dev/null || true
        wait "$AB_FG_PID" 2>/dev/null || true
    fi
    ab_stop_bg
    exit "$rc"
}

ab_traps() {
    trap ab_cleanup EXIT
    trap 'ab_say "interrupted"; exit 3' INT TERM HUP
}

ab_install() {
    if [[ "${AUTOBAHN_SKIP_INSTALL:-0}" == 1 ]]; then
        [[ -s "$AB_CACHE/python2" ]] || ab_die "AUTOBAHN_SKIP_INSTALL=1 but the suite is not installed"
    else
        bash "$AB_HERE/install.sh" || ab_die "install.sh failed"
    fi
    AB_PY2="$(cat "$AB_CACHE/python2")"
}

ab_elapsed() { echo $(($(date +%s) - AB_T0)); }

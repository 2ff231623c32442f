#!/usr/bin/env bash
# Install the self-test peers' dependency (websockets) into a Python 3 venv at
# .ci/cache/autobahn/selftest-venv. Idempotent (stamp = hash of requirements.txt).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
VENV="$ROOT/.ci/cache/autobahn/selftest-venv"
REQS="$HERE/requirements.txt"
PY3="${SELFTEST_PYTHON3:-python3}"
say() { printf '[autobahn/selftest/install] %s\n' "$*"; }
die() { printf '[autobahn/selftest/install] ERROR: %s\n' "$*" >&2; exit 1; }

WANT="$(sha256sum "$REQS" | cut -d' ' -f1)"
if [[ -f "$VENV/stamp" && "$(cat "$VENV/stamp")" == "$WANT" ]] \
   && "$VENV/bin/python" -c 'import websockets' 2>/dev/null; then
    say "venv up to date: ${VENV#"$ROOT"/} (websockets $("$VENV/bin/python" -c 'import websockets; print(websockets.__version__)'))"
    exit 0
fi
say "creating ${VENV#"$ROOT"/} with $("$PY3" --version 2>&1)"
rm -rf "$VENV"
"$PY3" -m venv "$VENV" || die "python3 -m venv failed"
"$VENV/bin/python" -m pip install --disable-pip-version-check --no-input \
    --cache-dir "$ROOT/.ci/cache/autobahn/pip-cache-py3" -r "$REQS" \
    || die "pip install failed"
printf '%s\n' "$WANT" > "$VENV/stamp"
say "done: websockets $("$VENV/bin/python" -c 'import websockets; print(websockets.__version__)')"

#!/usr/bin/env bash
# Install the third-party peers for .ci/peers, reproducibly and idempotently:
#   - Python `websockets` (pinned in requirements.txt) into .ci/cache/peers/venv
#   - Node `ws` (pinned in package.json + package-lock.json) with `npm ci` into
#     .ci/cache/peers/node_modules (run.sh points NODE_PATH there)
# A stamp per tool records the hash of its pin files and the interpreter's version;
# when they match and the module loads, nothing is done.
#
# Environment: PEERS_PYTHON3 (default python3), PEERS_NODE (default node),
#              PEERS_REINSTALL=1 to wipe and reinstall.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
CACHE="$ROOT/.ci/cache/peers"
VENV="$CACHE/venv"
NODE_DIR="$CACHE/node"
PY3="${PEERS_PYTHON3:-python3}"
NODE="${PEERS_NODE:-node}"
say() { printf '[peers/install] %s\n' "$*"; }
die() { printf '[peers/install] ERROR: %s\n' "$*" >&2; exit 3; }

mkdir -p "$CACHE"
command -v "$PY3" >/dev/null || die "$PY3 not found (Python >= 3.10 is needed for websockets)"
command -v "$NODE" >/dev/null || die "$NODE not found (Node >= 18 is needed)"
command -v npm >/dev/null || die "npm not found"
if [[ "${PEERS_REINSTALL:-0}" == 1 ]]; then rm -rf "$VENV" "$NODE_DIR"; fi

# --- Python websockets ---------------------------------------------------------
want_py="$(sha256sum "$HERE/requirements.txt" | cut -d' ' -f1) $("$PY3" --version 2>&1)"
if [[ -f "$VENV/stamp" && "$(cat "$VENV/stamp")" == "$want_py" ]] \
   && "$VENV/bin/python" -c 'import websockets' 2>/dev/null; then
    say "venv up to date (websockets $("$VENV/bin/python" -c 'import websockets; print(websockets.__version__)'))"
else
    say "creating ${VENV#"$ROOT"/} with $("$PY3" --version 2>&1)"
    rm -rf "$VENV"
    "$PY3" -m venv "$VENV" || die "python3 -m venv failed"
    "$VENV/bin/python" -m pip install --disable-pip-version-check --no-input -q \
        --cache-dir "$CACHE/pip-cache" -r "$HERE/requirements.txt" || die "pip install failed"
    printf '%s\n' "$want_py" > "$VENV/stamp"
    say "installed websockets $("$VENV/bin/python" -c 'import websockets; print(websockets.__version__)')"
fi

# --- Node ws ---------------------------------------------------------------------
want_node="$(cat "$HERE/package.json" "$HERE/package-lock.json" | sha256sum | cut -d' ' -f1) $("$NODE" --version)"
if [[ -f "$NODE_DIR/stamp" && "$(cat "$NODE_DIR/stamp")" == "$want_node" ]] \
   && NODE_PATH="$NODE_DIR/node_modules" "$NODE" -e 'require("ws")' 2>/dev/null; then
    say "node_modules up to date (ws $(NODE_PATH="$NODE_DIR/node_modules" "$NODE" -p 'require("ws/package.json").version'))"
else
    say "npm ci into ${NODE_DIR#"$ROOT"/} with node $("$NODE" --version)"
    rm -rf "$NODE_DIR"
    mkdir -p "$NODE_DIR"
    cp "$HERE/package.json" "$HERE/package-lock.json" "$NODE_DIR/"
    (cd "$NODE_DIR" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error \
        --cache "$CACHE/npm-cache") || die "npm ci failed"
    printf '%s\n' "$want_node" > "$NODE_DIR/stamp"
    say "installed ws $(NODE_PATH="$NODE_DIR/node_modules" "$NODE" -p 'require("ws/package.json").version')"
fi

#!/usr/bin/env bash
# Install Autobahn|Testsuite (Python 2.7 only) into .ci/cache/autobahn/site.
#
# Idempotent: a stamp records the hash of requirements-py27.txt and the
# interpreter; when both match and the suite imports, nothing is done.
# Fails loudly (non-zero, with the reason) when no Python 2.7 is found or pip fails.
#
# Environment:
#   AUTOBAHN_PYTHON2   Python 2.7 interpreter to use (default: pyenv's 2.7.*,
#                      then python2.7 / python2 on PATH)
#   AUTOBAHN_REINSTALL=1  wipe and reinstall even if the stamp matches
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
CACHE="$ROOT/.ci/cache/autobahn"
SITE="$CACHE/site"
STAMP="$CACHE/installed.stamp"   # what was installed, with which interpreter
# $CACHE/python2 names the interpreter for the run scripts.
REQS="$HERE/requirements-py27.txt"

say() { printf '[autobahn/install] %s\n' "$*"; }
die() { printf '[autobahn/install] ERROR: %s\n' "$*" >&2; exit 1; }

# --- find a Python 2.7 --------------------------------------------------------
find_python2() {
    local c
    if [[ -n "${AUTOBAHN_PYTHON2:-}" ]]; then
        printf '%s\n' "$AUTOBAHN_PYTHON2"
        return
    fi
    local pyenv_pythons=()
    mapfile -t pyenv_pythons < <(printf '%s\n' "${PYENV_ROOT:-$HOME/.pyenv}"/versions/2.7*/bin/python2.7 | sort -rV)
    for c in "${pyenv_pythons[@]}" "$(command -v python2.7 || true)" "$(command -v python2 || true)"; do
        [[ -n "$c" && -x "$c" ]] || continue
        # pyenv shims may exist without a 2.7 behind them: ask the interpreter itself.
        if "$c" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (2, 7) else 1)' 2>/dev/null; then
            printf '%s\n' "$c"
            return
        fi
    done
}

PY2="$(find_python2)"
[[ -n "$PY2" ]] || die "no Python 2.7 found (looked at \$AUTOBAHN_PYTHON2, ~/.pyenv/versions/2.7*/bin, python2.7, python2). Autobahn|Testsuite needs Python 2.7."
"$PY2" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (2, 7) else 1)' \
    || die "$PY2 is not Python 2.7"
"$PY2" -m pip --version >/dev/null 2>&1 || die "$PY2 has no pip (python -m pip)"
PY2_VERSION="$("$PY2" -c 'import sys; print(sys.version.split()[0])')"
say "python2: $PY2 ($PY2_VERSION), $("$PY2" -m pip --version | cut -d' ' -f1-2)"

# --- up to date? -------------------------------------------------------------
WANT="$(sha256sum "$REQS" | cut -d' ' -f1) $PY2 $PY2_VERSION"
smoke_test() {
    # The launcher adds $SITE the same way for real runs.
    AUTOBAHN_PYTHON2="$PY2" "$PY2" "$HERE/wstest.py" --autobahnversion
}

if [[ "${AUTOBAHN_REINSTALL:-0}" != 1 && -f "$STAMP" && "$(cat "$STAMP")" == "$WANT" ]]; then
    if out="$(smoke_test 2>&1)"; then
        # Written whole then renamed: two runs side by side read this file while
        # the other may be writing it.
        printf '%s\n' "$PY2" > "$CACHE/python2.$$" && mv -f "$CACHE/python2.$$" "$CACHE/python2"
        say "already installed in ${SITE#"$ROOT"/} (stamp matches): $(echo "$out" | tr '\n' ' ')"
        exit 0
    fi
    say "stamp matches but the suite does not import; reinstalling"
fi

# --- install ------------------------------------------------------------------
say "installing the pinned set from ${REQS#"$ROOT"/} into ${SITE#"$ROOT"/}"
rm -rf "$SITE" "$STAMP" "$CACHE/python2"
mkdir -p "$CACHE" "$CACHE/pip-cache"
# --no-deps: requirements-py27.txt is the complete, pinned closure.
# --cache-dir: keeps the downloaded wheels and the built wsaccel wheel for reruns.
if ! "$PY2" -m pip install \
        --disable-pip-version-check --no-input --no-warn-script-location \
        --cache-dir "$CACHE/pip-cache" \
        --no-deps --target "$SITE" -r "$REQS"; then
    rm -rf "$SITE"
    die "pip install failed (see above)"
fi

say "smoke test: wstest --autobahnversion"
if ! smoke_test; then
    die "the suite was installed but wstest does not start"
fi
printf '%s\n' "$PY2" > "$CACHE/python2.$$" && mv -f "$CACHE/python2.$$" "$CACHE/python2"
printf '%s\n' "$WANT" > "$STAMP"
say "done: run wstest with: $PY2 ${HERE#"$ROOT"/}/wstest.py -m MODE -s SPEC"

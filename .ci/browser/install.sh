#!/usr/bin/env bash
# Install what .ci/browser needs, idempotently:
#   - Debian's `chromium` (/usr/bin/chromium) with apt-get, if it is missing. Playwright's
#     own browser download (`npx playwright install`) cannot work on these machines;
#     Debian's build is driven over CDP instead.
#   - playwright-core (pinned in package.json + package-lock.json) with `npm ci` into
#     .ci/cache/browser/node/node_modules. A stamp records the hash of the pin files and
#     node's version; when it matches and the module loads, nothing is done.
#
# Environment: BROWSER_CHROMIUM (default /usr/bin/chromium: when set to another
#              existing binary, apt-get is skipped), BROWSER_NODE (default node),
#              BROWSER_REINSTALL=1 to wipe node_modules and reinstall.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
CACHE="$ROOT/.ci/cache/browser"
NODE_DIR="$CACHE/node"
CHROMIUM="${BROWSER_CHROMIUM:-/usr/bin/chromium}"
NODE="${BROWSER_NODE:-node}"
say() { printf '[browser/install] %s\n' "$*"; }
die() { printf '[browser/install] ERROR: %s\n' "$*" >&2; exit 3; }

mkdir -p "$CACHE"
command -v "$NODE" >/dev/null || die "$NODE not found (Node >= 20 is needed for playwright-core)"
command -v npm >/dev/null || die "npm not found"

# --- Debian chromium -------------------------------------------------------------------
if [[ ! -x "$CHROMIUM" ]]; then
    [[ "$CHROMIUM" == /usr/bin/chromium ]] || die "BROWSER_CHROMIUM=$CHROMIUM is not an executable"
    command -v apt-get >/dev/null || die "/usr/bin/chromium is missing and there is no apt-get"
    SUDO=()
    if ((EUID != 0)); then
        command -v sudo >/dev/null || die "/usr/bin/chromium is missing; apt-get needs root (or sudo)"
        SUDO=(sudo -n)
    fi
    export DEBIAN_FRONTEND=noninteractive
    # Wait for another apt/dpkg (a neighbour's install) rather than failing on its lock.
    APT=("${SUDO[@]}" apt-get -q -y -o DPkg::Lock::Timeout=600 -o Dpkg::Use-Pty=0)
    say "installing Debian chromium with apt-get (apt-get update first)"
    t=$SECONDS
    "${APT[@]}" update >"$CACHE/apt.log" 2>&1 || { tail -20 "$CACHE/apt.log" >&2; die "apt-get update failed (log: ${CACHE#"$ROOT"/}/apt.log)"; }
    # Recommends stay out (no desktop bits); fonts-liberation gives screenshots
    # readable text.
    "${APT[@]}" install --no-install-recommends chromium fonts-liberation >>"$CACHE/apt.log" 2>&1 \
        || { tail -20 "$CACHE/apt.log" >&2; die "apt-get install chromium failed (log: ${CACHE#"$ROOT"/}/apt.log)"; }
    [[ -x "$CHROMIUM" ]] || die "apt-get installed chromium but $CHROMIUM is not there"
    say "installed chromium in $((SECONDS - t))s"
fi
say "chromium: $("$CHROMIUM" --version 2>/dev/null || echo '(--version failed)')"

# --- playwright-core ---------------------------------------------------------------------
if [[ "${BROWSER_REINSTALL:-0}" == 1 ]]; then rm -rf "$NODE_DIR"; fi
want="$(cat "$HERE/package.json" "$HERE/package-lock.json" | sha256sum | cut -d' ' -f1) $("$NODE" --version)"
loads() { (cd "$NODE_DIR" && "$NODE" -e 'require("playwright-core")') 2>/dev/null; }
version() { (cd "$NODE_DIR" && "$NODE" -p 'require("playwright-core/package.json").version'); }
if [[ -f "$NODE_DIR/stamp" && "$(cat "$NODE_DIR/stamp")" == "$want" ]] && loads; then
    say "node_modules up to date (playwright-core $(version))"
else
    say "npm ci into ${NODE_DIR#"$ROOT"/} with node $("$NODE" --version)"
    rm -rf "$NODE_DIR"
    mkdir -p "$NODE_DIR"
    cp "$HERE/package.json" "$HERE/package-lock.json" "$NODE_DIR/"
    # --ignore-scripts: nothing may try to download a browser of its own.
    (cd "$NODE_DIR" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --ignore-scripts --no-audit \
        --no-fund --loglevel=error --cache "$CACHE/npm-cache") || die "npm ci failed"
    loads || die "playwright-core does not load after npm ci"
    printf '%s\n' "$want" > "$NODE_DIR/stamp"
    say "installed playwright-core $(version)"
fi

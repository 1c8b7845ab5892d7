#!/usr/bin/env bash
# End-to-end test of the browser playground (GET /) in headless Chromium.
#
# Installs what is missing (Debian `chromium`; `playwright-core` from the lock file into
# scripts/e2e/node_modules, git-ignored), builds the debug server, starts it on
# 127.0.0.1 with a temporary data directory, drives the page with
# scripts/e2e/playground.mjs and writes the screenshot to docs/playground.png.
# Stops the server and exits non-zero on any failure; every step has a time limit.
#
#   scripts/playground-e2e.sh                 # everything
#   IMAGE=test-images/x.png SCREENSHOT=/tmp/p.png scripts/playground-e2e.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
started=$(date +%s)

IMAGE=${IMAGE:-test-images/face-astronaut.png}
BAD_IMAGE=${BAD_IMAGE:-test-images/bad-text-file.jpg}
SCREENSHOT=${SCREENSHOT:-docs/playground.png}
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
E2E_TIMEOUT=${E2E_TIMEOUT:-300}

say() { printf '[playground-e2e] %s\n' "$*"; }
abs() { if [[ $1 == /* ]]; then echo "$1"; else echo "$root/$1"; fi; }

# --- what the run needs ------------------------------------------------------------
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  say "node and npm are required (Node.js >= 20)"
  exit 1
fi
apt_install() {
  say "installing $*"
  export DEBIAN_FRONTEND=noninteractive
  timeout 600 apt-get install -y --no-install-recommends "$@" ||
    { timeout 300 apt-get update && timeout 600 apt-get install -y --no-install-recommends "$@"; }
}
[[ -x $CHROMIUM ]] || apt_install chromium
# Without recommends Chromium may have no fonts at all; the screenshot needs one.
dpkg -s fonts-dejavu-core >/dev/null 2>&1 || apt_install fonts-dejavu-core
# pngquant keeps the committed screenshot small (a palette PNG, about a third the size).
command -v pngquant >/dev/null || apt_install pngquant
if [[ ! -f scripts/e2e/node_modules/playwright-core/package.json ]]; then
  say "installing playwright-core"
  (cd scripts/e2e && timeout 300 npm ci --no-audit --no-fund --loglevel=error)
fi

say "building the server (debug)"
timeout 1800 cargo build --quiet --bin progimage
say "built in $(( $(date +%s) - started ))s"

# --- the server ----------------------------------------------------------------------
work=$(mktemp -d -t progimage-e2e.XXXXXX)
server_pid=
cleanup() {
  if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PROGIMAGE_LOG_FORMAT=json RUST_LOG=info \
  "${CARGO_TARGET_DIR:-target}/debug/progimage" --listen 127.0.0.1:0 --data-dir "$work/data" \
  >"$work/server.log" 2>&1 &
server_pid=$!

# The server logs the address it bound; port 0 lets the kernel pick a free one.
addr=
for _ in $(seq 300); do
  addr=$(grep -o '"address":"127\.0\.0\.1:[0-9]*"' "$work/server.log" | head -1 | cut -d'"' -f4) || true
  [[ -n $addr ]] && break
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.1
done
if [[ -z $addr ]]; then
  say "the server did not start:"
  cat "$work/server.log"
  exit 1
fi
base="http://$addr"
timeout 10 bash -c "until curl -fsS '$base/health' >/dev/null; do sleep 0.2; done"
say "server at $base"

# --- the browser ---------------------------------------------------------------------
mkdir -p "$(dirname "$SCREENSHOT")" "$work/profile"
status=0
BASE_URL=$base IMAGE=$(abs "$IMAGE") BAD_IMAGE=$(abs "$BAD_IMAGE") SCREENSHOT=$(abs "$SCREENSHOT") \
  USER_DATA_DIR=$work/profile CHROMIUM=$CHROMIUM \
  timeout --kill-after=10 "$E2E_TIMEOUT" node scripts/e2e/playground.mjs || status=$?

if [[ $status -ne 0 ]]; then
  say "FAILED (exit $status); server log:"
  tail -n 40 "$work/server.log"
  exit "$status"
fi
# --ext/--force write in place; exit 99 means "quality too low", keep the original then.
pngquant --quality=70-95 --speed 1 --strip --force --ext .png "$(abs "$SCREENSHOT")" ||
  say "pngquant could not shrink the screenshot; kept as captured"
say "passed in $(( $(date +%s) - started ))s; screenshot: $SCREENSHOT ($(stat -c %s "$SCREENSHOT") bytes)"

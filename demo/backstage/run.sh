#!/usr/bin/env bash
# The demo portal with a Backstage: starts the test Backstage backend (tests/backstage, with the demo's
# catalog and tenants laid over its config) on 127.0.0.1:7007, then portico on demo/backstage/portico.yaml
# at http://localhost:8080 (tenant demo) and http://globex.localhost:8080 (tenant globex). Ctrl-C stops
# both. Loopback only; installs the test Backstage first if needed (about 3 minutes the first time).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
scripts/install-backstage.sh
work="$(mktemp -d)"
mkfifo "$work/stdin"
# start.mjs runs until its stdin closes: this script holds the pipe open for as long as it lives.
exec 3<>"$work/stdin"
BACKSTAGE_EXTRA_CONFIG="$root/demo/backstage/app-config.yaml" \
DEMO_CATALOG="$root/demo/backstage/catalog.yaml" \
  node tests/backstage/start.mjs "${BACKSTAGE_PORT:-7007}" <"$work/stdin" >"$work/ready" &
backstage=$!
trap 'kill "$backstage" 2>/dev/null || true; rm -rf "$work"' EXIT
echo "starting the test Backstage (up to a minute)..." >&2
until [[ -s "$work/ready" ]]; do
  kill -0 "$backstage" 2>/dev/null || { echo "the test Backstage did not start (see above)" >&2; exit 1; }
  sleep 0.5
done
ready="$(head -n1 "$work/ready")"
url="$(node -p 'JSON.parse(process.argv[1]).url' "$ready")"
key="$(node -p 'JSON.parse(process.argv[1]).sign_in_key' "$ready")"
echo "Backstage: $url. The portal: http://localhost:8080/ (alice, dave, nora) and http://globex.localhost:8080/ (alice, gina)" >&2
export PORTICO_DEMO_BACKSTAGE="$url" PORTICO_DEMO_SIGNING_KEY="$key"
# portico takes this script's place and inherits the pipe: when it exits, however it exits, the pipe
# closes and start.mjs stops the Backstage.
rm -rf "$work"
trap - EXIT
if [[ -n "${PORTICO_BIN:-}" ]]; then # a binary built already
  exec "$PORTICO_BIN" serve --config demo/backstage/portico.yaml "$@"
fi
exec cargo run --release -- serve --config demo/backstage/portico.yaml "$@"

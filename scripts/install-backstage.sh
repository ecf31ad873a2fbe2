#!/usr/bin/env bash
# Installs the test Backstage backend (tests/backstage) from its lockfile, for `cargo test --test api backstage`.
# Runs `npm ci` only when tests/backstage/node_modules is missing or older than package-lock.json.
# better-sqlite3 has no usable prebuilt binary here (GitHub is unreachable), so it compiles SQLite from source:
# that needs python3, make, g++ and the local Node headers, which npm_config_nodedir points node-gyp at.
set -euo pipefail
dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/../tests/backstage" && pwd)"
marker="$dir/node_modules/.package-lock.json" # npm writes it on every install
if [[ -f "$marker" && ! "$dir/package-lock.json" -nt "$marker" ]]; then
  exit 0
fi
for tool in node npm python3 make g++; do
  if ! command -v "$tool" >/dev/null; then
    echo "install-backstage: \`$tool\` is missing; it is needed to build better-sqlite3" >&2
    exit 1
  fi
done
if [[ -z "${npm_config_nodedir:-}" ]]; then
  # The prefix of the running node: its headers are in <prefix>/include/node.
  npm_config_nodedir="$(node -p 'require("node:path").resolve(process.execPath, "..", "..")')"
  export npm_config_nodedir
fi
if [[ ! -f "$npm_config_nodedir/include/node/node.h" ]]; then
  echo "install-backstage: no Node headers at $npm_config_nodedir/include/node (set npm_config_nodedir)" >&2
  exit 1
fi
echo "installing the Backstage test backend (about 3 minutes the first time)..." >&2
log="$(mktemp)"
if ! (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error) >"$log" 2>&1; then
  cat "$log" >&2
  rm -f "$log"
  echo "install-backstage: npm ci failed in $dir" >&2
  exit 1
fi
rm -f "$log"
touch "$marker"

#!/usr/bin/env bash
# A manual check (too heavy for CI) that Backstage's REAL web UI works behind portico at /backstage/.
#
#   scripts/check-backstage-ui.sh            (PORTICO_UI_PORT=<port> to move portico off 7490)
#
# 1. Builds the smallest real Backstage frontend (scripts/backstage-ui/: the catalog, and
#    ProxiedSignInPage with provider `portico`) in $BACKSTAGE_UI_DIR (default /tmp/portico-backstage-ui),
#    with the packages of tests/backstage's Backstage release, and app.baseUrl = backend.baseUrl =
#    http://127.0.0.1:<port>/backstage baked in at build time (a static build reads no config at run
#    time). It is reused while its sources and the port are unchanged. The first run installs about
#    1 GB of npm packages and takes about 2 minutes (install) plus
#    10 s (build).
# 2. Runs scripts/backstage-ui/check.mjs: the test Backstage backend (tests/backstage/start.mjs), a
#    static server for the build (serve.mjs: files, SPA fallback to index.html, like the app-backend),
#    portico on 127.0.0.1:<port> with `backstage.ui` pointing at it, and a headless Chromium that signs in
#    as eve, opens /backstage/ at the top level and checks that the UI is signed in and lists acme's
#    catalog (payments-api) and not globex's (inventory-api). Screenshot: target/e2e/backstage-ui-real.png.
#    CHECK_BACKSTAGE_ENT_CLAIM=1 sets auth.omitIdentityTokenOwnershipClaim: false in Backstage (its
#    tokens then carry `ent`, which portico's answer to the UI's sign-in reads ownershipEntityRefs from);
#    CHECK_VERBOSE=1 shows every log line of the processes started.
# Needs: Node 20 with npm, cargo, /usr/bin/chromium (scripts/ensure-chromium.sh), and the test backend
# installed (scripts/install-backstage.sh, run here if needed). Exits 0 on success; everything it
# starts is stopped on exit.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
src="$repo/scripts/backstage-ui"
work="${BACKSTAGE_UI_DIR:-/tmp/portico-backstage-ui}"
port="${PORTICO_UI_PORT:-7490}"

fail() { echo "check-backstage-ui: $*" >&2; exit 1; }
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for tool in node npm cargo; do command -v "$tool" >/dev/null || fail "\`$tool\` is missing"; done
[[ -x "${CHROMIUM_PATH:-/usr/bin/chromium}" ]] || fail "no Chromium at ${CHROMIUM_PATH:-/usr/bin/chromium} (scripts/ensure-chromium.sh)"
[[ -d "$repo/node_modules/playwright-core" ]] || fail "playwright-core is missing: run npm ci in $repo"
if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
  fail "127.0.0.1:$port is in use; set PORTICO_UI_PORT to a free port"
fi

"$repo/scripts/install-backstage.sh"
(cd "$repo" && cargo build --bins --quiet) || fail "cargo build failed"

# The frontend: sources copied in, installed once, built again when the sources or the port change.
mkdir -p "$work/packages/app"
cp "$src/package.json" "$src/package-lock.json" "$src/.npmrc" "$src/tsconfig.json" "$work/"
rm -rf "$work/packages/app/src" "$work/packages/app/public"
cp -r "$src/app/." "$work/packages/app/"
cat >"$work/app-config.yaml" <<YAML
# Written by scripts/check-backstage-ui.sh: the frontend's config, baked in at build time.
app:
  title: Backstage behind portico
  baseUrl: http://127.0.0.1:$port/backstage
backend:
  baseUrl: http://127.0.0.1:$port/backstage
YAML
stamp="$( (cd "$work" && cat package.json app-config.yaml && find packages/app -path '*/node_modules' -prune -o -path '*/dist' -prune -o -type f -print | sort | xargs cat) | sha256sum | cut -d' ' -f1)"
installed="$(cat "$work/package.json" "$work/package-lock.json" "$work/.npmrc" "$work/packages/app/package.json" | sha256sum | cut -d' ' -f1)"
if [[ ! -d "$work/node_modules/@backstage/cli" || "$(cat "$work/.installed" 2>/dev/null)" != "$installed" ]]; then
  echo "check-backstage-ui: installing the Backstage frontend packages in $work (about 2 minutes the first time)..." >&2
  started=$SECONDS
  # From the lockfile (scripts/backstage-ui/package-lock.json): the versions this check was run with.
  (cd "$work" && npm ci --no-audit --no-fund --loglevel=error) || fail "npm ci failed in $work"
  echo "check-backstage-ui: installed in $((SECONDS - started)) s" >&2
  echo "$installed" >"$work/.installed"
fi
dist="$work/packages/app/dist"
if [[ ! -f "$dist/index.html" || "$(cat "$work/.built" 2>/dev/null)" != "$stamp" ]]; then
  echo "check-backstage-ui: building the Backstage frontend (backstage-cli package build)..." >&2
  started=$SECONDS
  if ! (cd "$work/packages/app" && NODE_OPTIONS=--max-old-space-size=4096 npx --no-install backstage-cli package build \
      --config ../../app-config.yaml) >"$work/build.log" 2>&1; then
    tail -40 "$work/build.log" >&2
    fail "the frontend build failed in $work/packages/app (log: $work/build.log)"
  fi
  echo "check-backstage-ui: built in $((SECONDS - started)) s" >&2
  echo "$stamp" >"$work/.built"
fi
[[ -f "$dist/index.html" ]] && ls "$dist"/static/*.js >/dev/null 2>&1 || fail "no index.html and static/*.js in $dist"
grep -q "/backstage/static/" "$dist/index.html" || fail "$dist/index.html does not load its bundle from /backstage/static/"

node "$repo/scripts/backstage-ui/check.mjs" "$dist" "$port" "$work" &
pids+=($!)
status=0
wait "${pids[0]}" || status=$?
pids=()
exit "$status"

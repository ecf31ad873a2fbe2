#!/usr/bin/env bash
# Makes sure Debian's redis-server is installed for the Redis session-store tests: they start their own
# redis-server on a free loopback port (no persistence) and stop it at the end, so no system service is
# started or needed. apt-get runs only when the binary is missing.
set -euo pipefail
if command -v redis-server >/dev/null; then
  exit 0
fi
if [[ "$(id -u)" -ne 0 ]]; then
  echo "redis-server is missing: install Debian's 'redis-server' package (sudo apt-get install redis-server)" >&2
  exit 1
fi
echo "installing Debian's redis-server package for the Redis session-store tests..." >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# policy-rc.d refuses service starts during the install: the tests start their own server.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [[ ! -e "$policy" ]]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod +x "$policy"
  created_policy=1
fi
status=0
apt-get install -y -qq --no-install-recommends redis-server >/dev/null || status=$?
if [[ "$created_policy" -eq 1 ]]; then
  rm -f "$policy"
fi
exit "$status"

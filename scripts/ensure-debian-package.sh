#!/usr/bin/env bash
# Usage: scripts/ensure-debian-package.sh BINARY PACKAGE
#
# Makes sure a program the tests start themselves is installed, from Debian's package: redis-server for
# the Redis session-store tests, nginx for the load-balancer test (tests/api/scale_out.rs). The tests run
# their own instance on a free loopback port with a config of their own, so no system service is
# started or needed: the install refuses service starts (policy-rc.d). apt-get runs only when BINARY is
# found neither on PATH nor in /usr/sbin (where Debian puts daemons, often not on a user's PATH).
set -euo pipefail
if [[ $# -ne 2 ]]; then
  echo "usage: $0 BINARY PACKAGE   (e.g. $0 nginx nginx)" >&2
  exit 2
fi
binary=$1
package=$2
if command -v "$binary" >/dev/null || [[ -x "/usr/sbin/$binary" ]]; then
  exit 0
fi
if [[ "$(id -u)" -ne 0 ]]; then
  echo "$binary is missing: install Debian's '$package' package (sudo apt-get install $package)" >&2
  exit 1
fi
echo "installing Debian's $package package (for $binary)..." >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# policy-rc.d refuses service starts during the install: the tests start their own server. It is only
# created (and removed again) when the machine has none of its own.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [[ ! -e "$policy" ]]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod +x "$policy"
  created_policy=1
fi
status=0
apt-get install -y -qq --no-install-recommends "$package" >/dev/null || status=$?
if [[ "$created_policy" -eq 1 ]]; then
  rm -f "$policy"
fi
exit "$status"

#!/usr/bin/env bash
# Makes sure Debian's Jetty 9 is installed for the canonical-path tests: they run a stock embedded-Jetty
# servlet app (tests/support/jetty/) as an upstream, because servlet containers strip `;` path parameters
# and portico's access decision has to cover what they route. apt-get runs only when a jar is missing.
set -euo pipefail
jetty_jar="${JETTY_JAR:-/usr/share/java/jetty9-server.jar}"
if [[ -f "$jetty_jar" ]] && command -v javac >/dev/null; then
  exit 0
fi
if [[ "$(id -u)" -ne 0 ]]; then
  echo "Jetty 9 is missing at $jetty_jar: install Debian's 'libjetty9-java' package (sudo apt-get install libjetty9-java default-jdk-headless)" >&2
  exit 1
fi
echo "installing Debian's libjetty9-java package for the canonical-path tests..." >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
packages=(libjetty9-java)
command -v javac >/dev/null || packages+=(default-jdk-headless)
apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null

#!/usr/bin/env bash
# Makes sure Debian's redis-server is installed for the Redis session-store tests (they start their own
# on a free loopback port; no service is started). Kept for the messages and docs that name it: the
# work is done by ensure-debian-package.sh, which the Makefile calls directly.
exec "$(dirname "$0")/ensure-debian-package.sh" redis-server redis-server

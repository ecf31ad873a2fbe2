# The two commands a newcomer needs: `make run` starts the demo portal, `make test` runs every test.
# Both install what they need first (the pinned npm packages, Express among them; Chromium for the browser
# tests; Debian's Jetty 9 for the canonical-path tests; Debian's redis-server and nginx, which the Redis
# and scale-out tests start on loopback ports of their own; a real Backstage backend for the Backstage
# tests, built once into tests/backstage/node_modules).

# `make demo-backstage`: the demo portal with the test Backstage (demo/backstage/run.sh).
# The browser tests run two files at a time: each starts its own portal and Chromium on ports of its
# own, and most of their time is spent waiting on a browser, so two share the machine's cores well
# (about 4 minutes instead of 6 on 2 cores).
.PHONY: run demo-backstage test test-rust test-e2e test-packaging deps lint doc bench bench-instructions

run: deps
	cargo run --release -- serve

demo-backstage: deps
	demo/backstage/run.sh

test: deps
	scripts/ensure-chromium.sh
	scripts/ensure-jetty.sh
	scripts/ensure-debian-package.sh redis-server redis-server
	scripts/ensure-debian-package.sh nginx nginx
	scripts/install-backstage.sh
	cargo build --bins
	scripts/check-packaging.sh
	cargo test --all-targets
	node --test --test-concurrency=2 tests/support/op-selftest.mjs e2e/*.test.mjs

test-rust: deps
	scripts/ensure-jetty.sh
	scripts/ensure-debian-package.sh redis-server redis-server
	scripts/ensure-debian-package.sh nginx nginx
	scripts/install-backstage.sh
	cargo test --all-targets

test-e2e: deps
	scripts/ensure-chromium.sh
	cargo build --bins
	node --test --test-concurrency=2 tests/support/op-selftest.mjs e2e/*.test.mjs

# The container image definition (hadolint) and the systemd unit (systemd-analyze verify and security).
test-packaging: deps
	cargo build --bins
	scripts/check-packaging.sh

# Proxy cost against nginx and lighttpd on loopback, portico with sessions in memory and in Redis
# (installs nginx, lighttpd, redis-server, wrk as root). About a minute.
bench: deps
	bench/run.sh

# Instructions per proxied request under callgrind: repeatable, for before/after comparisons.
bench-instructions: deps
	bench/instructions.sh

lint: deps
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings

# rustdoc warnings (a broken intra-doc link) fail this. CI runs it last, on a built tree: on a fresh
# clone of this 2-core machine, `cargo doc` run right after the first clippy build has four times had
# cargo's own rustc probe fail (fed another rustc's error text as its input) and cache that failure in
# target/.rustc_info.json; on a built tree the same command passes. A second run, with that cache
# dropped, covers the rest.
doc: deps
	RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --quiet || \
	  { rm -f target/.rustc_info.json; RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --quiet; }

# npm ci only when the lockfile changed since the last install.
deps: node_modules/.package-lock.json

node_modules/.package-lock.json: package-lock.json package.json
	npm ci --no-audit --no-fund
	@touch $@

#!/bin/sh
# Runs every fuzz target for a bounded time (default 60 s each): ./fuzz/run.sh [seconds] [target…]
# Not part of CI or `make test`. Needs only the stable toolchain: cargo-fuzz needs nightly flags, which
# RUSTC_BOOTSTRAP=1 unlocks. The sanitizer is off: portico forbids unsafe code, and without ASan each
# target runs several times faster on a small machine. Findings land in fuzz/artifacts/<target>/.
set -eu
cd "$(dirname "$0")"
seconds=${1:-60}
[ $# -gt 0 ] && shift
targets=${*:-"path_decide config_load backstage_scope cookies_headers"}

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi
export RUSTC_BOOTSTRAP=1

status=0
for target in $targets; do
    # Seeds (committed) plus what earlier runs found (corpus/, not committed).
    mkdir -p "corpus/$target"
    [ -d "seeds/$target" ] && cp -n "seeds/$target"/* "corpus/$target/" 2>/dev/null || true
    echo "== $target: ${seconds}s" >&2
    if ! cargo fuzz run --sanitizer none --release "$target" "corpus/$target" -- \
        -max_total_time="$seconds" -max_len=8192 -timeout=10 -rss_limit_mb=1024 \
        -print_final_stats=1; then
        echo "== $target FAILED: see fuzz/artifacts/$target/" >&2
        status=1
    fi
done
exit $status

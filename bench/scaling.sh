#!/usr/bin/env bash
# Does portico scale from one worker to two like nginx does? (issue 13)
#
# On a 2-core machine there is no core left for the load generator and the upstream, so this is not a
# throughput figure: it is a comparison made under equal conditions. nginx with `worker_processes 1`
# and `2`, and portico with `server.workers: 1` and `2`, are each measured with the same wrk (2
# threads), the same upstream (nginx serving a 1 KiB file) and nothing pinned: every process may run on
# either core, as in production. The result is each proxy's ratio req/s(2 workers) / req/s(1 worker),
# and portico's ratio over nginx's. A ratio near 1 means portico gains from its second worker what
# nginx gains from its own; the absolute req/s say little, since wrk and the upstream (nginx, 2 workers) share the cores.
# CPU per request (all of the proxy's threads) is reported too: it should barely move with the workers.
#
# Usage: bench/scaling.sh   Env: BENCH_DURATION=8s  BENCH_CONNECTIONS=64  PORTICO_BIN=path (no build)
#
# Everything listens on 127.0.0.1 only, lives in a mktemp -d work dir, every wrk run is bounded by -d
# and by `timeout`, and every process started is killed on exit, failure or Ctrl-C.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/portico-config.sh
. "$ROOT/bench/portico-config.sh"

die() { echo "error: $*" >&2; exit 1; }
log() { echo "[scaling] $*" >&2; }
DURATION=${BENCH_DURATION:-8s}
DURATION_S=${DURATION%s}
[[ $DURATION_S =~ ^[0-9]+$ && $DURATION_S -gt 0 && $DURATION_S -le 120 ]] || die "BENCH_DURATION is 1s..120s"
CONNECTIONS=${BENCH_CONNECTIONS:-64}
[[ $CONNECTIONS =~ ^[0-9]+$ && $CONNECTIONS -ge 2 && $CONNECTIONS -le 500 ]] || die "BENCH_CONNECTIONS is 2..500"
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
for tool in "$NGINX" wrk curl; do
    command -v "$tool" >/dev/null || [[ -x $tool ]] || die "missing $tool (bench/run.sh installs nginx and wrk when run as root)"
done
if [[ -z ${PORTICO_BIN:-} ]]; then
    (cd "$ROOT" && cargo build --release --bin portico)
    PORTICO_BIN=$ROOT/target/release/portico
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/portico-scaling.XXXXXX")
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_listening() { # PID PORT LOG
    for _ in $(seq 100); do
        kill -0 "$1" 2>/dev/null || { tail -n 20 "$3" >&2; die "a process exited at start (log above)"; }
        port_open "$2" && return 0
        sleep 0.1
    done
    die "nothing listens on :$2 after 10 s"
}
cpu_ticks() { # utime + stime of a process and its children (nginx's workers), in clock ticks
    local pid stat rest total=0
    local -a f
    for pid in "$1" $(pgrep -P "$1" || true); do
        stat=$(<"/proc/$pid/stat") || continue
        rest=${stat##*) }
        read -r -a f <<<"$rest"
        total=$((total + f[11] + f[12]))
    done
    echo "$total"
}
CLK_TCK=$(getconf CLK_TCK)

mkdir -p "$WORK/www" "$WORK/upstream"
head -c 1024 /dev/zero | tr '\0' 'x' >"$WORK/www/file1k"
# With a master process (2 workers) nginx's workers run as an unprivileged user, which must read it.
chmod a+rX "$WORK" "$WORK/www" "$WORK/www/file1k"
nginx_conf() { # DIR PORT WORKERS BODY
    mkdir -p "$1/tmp"
    cat <<EOF
worker_processes $3;
master_process $([[ $3 -gt 1 ]] && echo on || echo off);
daemon off;
pid $1/nginx.pid;
error_log $1/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $1/tmp; proxy_temp_path $1/tmp; fastcgi_temp_path $1/tmp;
    uwsgi_temp_path $1/tmp; scgi_temp_path $1/tmp;
    tcp_nodelay on;
    keepalive_requests 10000000;
    $4
}
EOF
}
U_PORT=$(free_port)
# Two upstream workers, so the upstream is not what limits the two-worker rows.
nginx_conf "$WORK/upstream" "$U_PORT" 2 "server { listen 127.0.0.1:$U_PORT backlog=4096; root $WORK/www; location / { } }" \
    >"$WORK/upstream/nginx.conf"
"$NGINX" -p "$WORK/upstream/" -c "$WORK/upstream/nginx.conf" -e "$WORK/upstream/error.log" &
PIDS+=($!)
wait_listening "$!" "$U_PORT" "$WORK/upstream/error.log"

# measure NAME PID URL [COOKIE]: prints "req/s cpu-µs-per-request"
measure() {
    local name=$1 pid=$2 url=$3 cookie=${4:-} header=()
    [[ -n $cookie ]] && header=(-H "Cookie: $cookie")
    local body
    body=$(curl -sS --max-time 5 "${header[@]}" "$url") || die "$name: $url does not answer"
    [[ ${#body} -eq 1024 ]] || die "$name: $url did not answer with the 1 KiB file: ${body:0:300}"
    timeout 30 wrk -t2 -c"$CONNECTIONS" -d2s "${header[@]}" "$url" >/dev/null # warm-up
    local before after out requests
    before=$(cpu_ticks "$pid")
    out=$(timeout $((DURATION_S + 20)) wrk -t2 -c"$CONNECTIONS" -d"$DURATION" "${header[@]}" "$url")
    after=$(cpu_ticks "$pid")
    grep -qE 'Non-2xx|Socket errors' <<<"$out" && die "$name: wrk saw errors: $out"
    requests=$(awk '/requests in/ { print $1 }' <<<"$out")
    awk -v r="$requests" -v d="$DURATION_S" -v t=$((after - before)) -v hz="$CLK_TCK" \
        'BEGIN { printf "%.0f %.2f\n", r / d, t / hz * 1e6 / r }'
}

declare -A RPS CPU
for workers in 1 2; do
    dir="$WORK/nginx$workers"
    port=$(free_port)
    nginx_conf "$dir" "$port" "$workers" "upstream u { server 127.0.0.1:$U_PORT; keepalive 64; }
    server { listen 127.0.0.1:$port backlog=4096;
             location / { proxy_pass http://u; proxy_http_version 1.1; proxy_set_header Connection \"\"; } }" \
        >"$dir.conf"
    "$NGINX" -p "$dir/" -c "$dir.conf" -e "$dir/error.log" &
    pid=$!
    PIDS+=("$pid")
    wait_listening "$pid" "$port" "$dir/error.log"
    log "nginx, worker_processes $workers"
    read -r RPS[nginx$workers] CPU[nginx$workers] < <(measure "nginx $workers" "$pid" "http://127.0.0.1:$port/file1k")
    kill "$pid"
    wait "$pid" 2>/dev/null || true

    dir="$WORK/portico$workers"
    mkdir -p "$dir"
    port=$(free_port)
    PORTICO_BENCH_WORKERS=$workers portico_bench_config "$port" "$U_PORT" >"$dir/portico.yaml"
    RUST_LOG=warn NO_COLOR=1 "$PORTICO_BIN" serve --config "$dir/portico.yaml" >"$dir/log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    wait_listening "$pid" "$port" "$dir/log"
    cookie=$(curl -sS --max-time 5 -D - -o /dev/null -H "Origin: http://127.0.0.1:$port" -d 'user=bench' \
        "http://127.0.0.1:$port/auth/dev-login" | tr -d '\r' | sed -n 's/^[Ss]et-[Cc]ookie: *\(portico_session=[^;]*\).*/\1/p' | head -n 1)
    [[ -n $cookie ]] || die "portico: dev sign-in gave no session cookie"
    threads=$(cat /proc/"$pid"/task/*/comm 2>/dev/null | grep -c '^portico-worker' || true)
    [[ $threads -eq $((workers - 1)) ]] || die "portico with workers: $workers runs $threads extra worker threads"
    log "portico, workers: $workers"
    read -r RPS[portico$workers] CPU[portico$workers] < <(measure "portico $workers" "$pid" "http://127.0.0.1:$port/apps/echo/file1k" "$cookie")
    kill "$pid"
    wait "$pid" 2>/dev/null || true
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
NGINX_GAIN=$(ratio "${RPS[nginx2]}" "${RPS[nginx1]}")
PORTICO_GAIN=$(ratio "${RPS[portico2]}" "${RPS[portico1]}")
cat <<EOF
wrk -t2 -c$CONNECTIONS -d$DURATION, 1 KiB file through each proxy, nothing pinned ($(nproc) cores), access logs off;
portico signed in, access check, identity headers and assertion as in bench/run.sh.

| proxy | req/s, 1 worker | req/s, 2 workers | 2 / 1 | CPU µs/req, 1 worker | CPU µs/req, 2 workers |
| --- | ---: | ---: | ---: | ---: | ---: |
| nginx | ${RPS[nginx1]} | ${RPS[nginx2]} | $NGINX_GAIN | ${CPU[nginx1]} | ${CPU[nginx2]} |
| portico | ${RPS[portico1]} | ${RPS[portico2]} | $PORTICO_GAIN | ${CPU[portico1]} | ${CPU[portico2]} |

portico's gain over nginx's: $(ratio "$PORTICO_GAIN" "$NGINX_GAIN")
EOF

#!/usr/bin/env bash
# Proxy overhead benchmark: the same 1 KiB GET load (wrk) sent on loopback to
#   1. the upstream directly (nginx serving a static 1 KiB file),
#   2. nginx proxy_pass, 3. lighttpd mod_proxy, 4. portico (signed-in session, /apps/echo/…),
#   5. portico with its sessions in Redis (a redis-server on core 0, no persistence),
#   6. the hyper floor (examples/bare_proxy.rs: portico's stack forwarding only),
#   7. nginx proxy_cache and 8. portico's response cache (`cache: on`), on a cached asset (the same
#      1 KiB file, marked `public, max-age=3600` by the upstream): answered from each proxy's cache,
#      the upstream asked once,
# each proxy alone on core 1, wrk, the upstream and Redis on core 0. Reports req/s, p99 latency and
# the proxy's CPU time per request, and the ratios portico/nginx, lighttpd/nginx, Redis store/memory
# store and to the floor.
# Then what portico serves itself, each beside nginx (the proxy instance, core 1) serving a static file
# of the same bytes: 7. the signed-in user's /shell/config.json, 8. an embedded Luigi file
# (luigi-client.js); the issue's target is config.json at most 2x nginx's CPU per request.
#
# Usage: bench/run.sh            (see bench/README.md)
# Env:   BENCH_DURATION=10s  BENCH_CONNECTIONS=32  BENCH_WARMUP=2s  BENCH_ACCESS_LOG=on|off
#        BENCH_KEEP=1 (keep the work dir)  PORTICO_BIN=path (skip the cargo build, use this binary)
#
# Everything listens on 127.0.0.1 only; every wrk run is bounded by -d and by `timeout`; every process
# the script starts is killed on exit, failure or Ctrl-C.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/portico-config.sh
. "$ROOT/bench/portico-config.sh"
BENCH_DIR="$ROOT/bench"
RESULTS="$BENCH_DIR/results-latest.md"

to_seconds() { # 10 / 10s / 2m / 1h -> seconds
    local v=$1
    case "$v" in
        *s) v=${v%s}; m=1 ;;
        *m) v=${v%m}; m=60 ;;
        *h) v=${v%h}; m=3600 ;;
        *) m=1 ;;
    esac
    [[ $v =~ ^[0-9]+$ && $v -gt 0 ]] || { echo "error: bad duration '$1' (use e.g. 10s, 1m)" >&2; exit 2; }
    echo $((v * m))
}
DURATION_S=$(to_seconds "${BENCH_DURATION:-10s}")
WARMUP_S=$(to_seconds "${BENCH_WARMUP:-2s}")
CONNECTIONS=${BENCH_CONNECTIONS:-32}
[[ $CONNECTIONS =~ ^[0-9]+$ && $CONNECTIONS -ge 1 && $CONNECTIONS -le 500 ]] \
    || { echo "error: BENCH_CONNECTIONS must be 1..500, got '$CONNECTIONS'" >&2; exit 2; }
ACCESS_LOG=${BENCH_ACCESS_LOG:-on}
[[ $ACCESS_LOG == on || $ACCESS_LOG == off ]] || { echo "error: BENCH_ACCESS_LOG is on or off" >&2; exit 2; }
THREADS=1
LOAD_CORE=0   # wrk + upstream
PROXY_CORE=1  # the proxy under test, alone

START_TIME=$(date +%s)
log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf 'bench: error: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------------------------------------------
# Processes we start, and cleanup: on any exit (success, failure, Ctrl-C, TERM) kill exactly those.
NAME=bench
KEEP=${BENCH_KEEP:-}
# shellcheck source=bench/processes.sh
source "$(dirname "${BASH_SOURCE[0]}")/processes.sh"
trap 'echo "bench: error: line $LINENO failed: $BASH_COMMAND" >&2' ERR

# ---------------------------------------------------------------------------------------------------
# Prerequisites: Debian packages, two cores, the portico binary.
(($(nproc) >= 2)) || die "needs at least 2 CPU cores (one for wrk + upstream, one for the proxy); this machine has $(nproc)"

NGINX=$(command -v nginx || echo /usr/sbin/nginx)
LIGHTTPD=$(command -v lighttpd || echo /usr/sbin/lighttpd)
missing=()
[[ -x $NGINX ]] || missing+=(nginx)
[[ -x $LIGHTTPD ]] || missing+=(lighttpd)
command -v wrk >/dev/null || missing+=(wrk)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v curl >/dev/null || missing+=(curl)
command -v taskset >/dev/null || missing+=(util-linux)
if ((${#missing[@]})); then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
        log "installing Debian packages: ${missing[*]}"
        # The packages' own service (port 80) is not used: the script runs its own instances.
        DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null
        NGINX=$(command -v nginx || echo /usr/sbin/nginx)
        LIGHTTPD=$(command -v lighttpd || echo /usr/sbin/lighttpd)
    else
        die "missing ${missing[*]}: run  sudo apt-get update && sudo apt-get install -y ${missing[*]}"
    fi
fi
CLK_TCK=$(getconf CLK_TCK)

if [[ -n ${PORTICO_BIN:-} ]]; then
    PORTICO=$PORTICO_BIN
    [[ -x $PORTICO ]] || die "PORTICO_BIN=$PORTICO is not an executable"
    log "using PORTICO_BIN=$PORTICO (no build)"
    FLOOR=$(dirname "$PORTICO")/examples/bare_proxy
    WS_ECHO=$(dirname "$PORTICO")/examples/ws_echo
else
    if [[ ! -f $ROOT/node_modules/@luigi-project/core/luigi.js ]] || [[ $ROOT/package-lock.json -nt $ROOT/node_modules/.package-lock.json ]]; then
        log "installing the pinned npm packages portico embeds (npm ci)"
        (cd "$ROOT" && npm ci --no-audit --no-fund >/dev/null)
    fi
    log "building portico (cargo build --release)"
    build_start=$(date +%s)
    (cd "$ROOT" && cargo build --release --bin portico --example bare_proxy --example ws_echo)
    log "build took $(($(date +%s) - build_start)) s"
    PORTICO="$ROOT/target/release/portico"
    FLOOR="$ROOT/target/release/examples/bare_proxy"
    WS_ECHO="$ROOT/target/release/examples/ws_echo"
fi
# The "hyper floor" row: examples/bare_proxy.rs, portico's runtime, server and client doing nothing else.
[[ -x $FLOOR ]] || { log "no $FLOOR (cargo build --release --example bare_proxy): the hyper floor row is skipped"; FLOOR=""; }
# The WebSocket rows: examples/ws_echo.rs is the echo upstream and the load generator.
[[ -x $WS_ECHO ]] || { log "no $WS_ECHO (cargo build --release --example ws_echo): the WebSocket rows are skipped"; WS_ECHO=""; }

# ---------------------------------------------------------------------------------------------------
# Work dir, free ports, helpers.
WORK=$(mktemp -d "${TMPDIR:-/tmp}/portico-bench.XXXXXX")
mkdir -p "$WORK/www/static" "$WORK/upstream" "$WORK/nginx" "$WORK/lighttpd/tmp" "$WORK/lighttpd/docroot" "$WORK/portico" \
    "$WORK/portico-redis" "$WORK/redis" "$WORK/wrk"
# Exactly 1024 bytes, printable.
awk 'BEGIN { line = "portico bench: a 1 KiB static body for proxy overhead measurements.\n"
             while (length(body) < 1024) body = body line
             printf "%s", substr(body, 1, 1024) }' >"$WORK/www/file1k"
[[ $(stat -c %s "$WORK/www/file1k") -eq 1024 ]] || die "could not write the 1 KiB body"
# 1 MiB of random bytes for the download rows (incompressible, as a bundle or an image would be).
head -c 1048576 /dev/urandom >"$WORK/www/file1m"

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
USED_PORTS=" "
FREE_PORT=""
free_port() { # sets FREE_PORT
    # Below the ephemeral range (32768+) so wrk's and the proxies' client sockets cannot take it.
    local p
    for _ in $(seq 500); do
        p=$((20000 + RANDOM % 12000))
        [[ $USED_PORTS == *" $p "* ]] && continue
        port_open "$p" && continue
        USED_PORTS+="$p "
        FREE_PORT=$p
        return 0
    done
    die "no free port found"
}

# start NAME CORE LOGFILE CMD... : starts CMD pinned to CORE, records its pid in START_PID.
START_PID=""
start() {
    local name=$1 core=$2 logfile=$3
    shift 3
    taskset -c "$core" "$@" >>"$logfile" 2>&1 &
    START_PID=$!
    PIDS+=("$START_PID")
    log "started $name (pid $START_PID, core $core)"
}

wait_listening() { # NAME PID PORT LOGFILE
    local name=$1 pid=$2 port=$3 logfile=$4
    for _ in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || { tail -n 20 "$logfile" >&2; die "$name exited at start (log above)"; }
        port_open "$port" && return 0
        sleep 0.1
    done
    tail -n 20 "$logfile" >&2
    die "$name is not listening on 127.0.0.1:$port after 10 s"
}

cpu_ticks() { # "utime stime" of a whole process (all its threads), in clock ticks
    local stat rest
    stat=$(<"/proc/$1/stat") || die "process $1 is gone"
    rest=${stat##*) }
    local -a f
    read -r -a f <<<"$rest"
    echo "${f[11]} ${f[12]}"
}
core_jiffies() { # "busy total" jiffies of one core from /proc/stat (steal counts as busy: someone else ran)
    awk -v c="cpu$1" '$1 == c { busy = $2 + $3 + $4 + $7 + $8 + $9; print busy, busy + $5 + $6 }' /proc/stat
}
upstream_accepts() { # connections the upstream has accepted so far
    curl -sS --max-time 5 "http://127.0.0.1:$U_PORT/__upstream_status" | awk 'NR == 3 { print $1 }'
}

free_port; U_PORT=$FREE_PORT
free_port; N_PORT=$FREE_PORT
free_port; L_PORT=$FREE_PORT
free_port; P_PORT=$FREE_PORT
free_port; F_PORT=$FREE_PORT
free_port; PR_PORT=$FREE_PORT
free_port; R_PORT=$FREE_PORT
free_port; W_PORT=$FREE_PORT

# ---------------------------------------------------------------------------------------------------
# The upstream: nginx serving the static file, one process, on the load core.
cat >"$WORK/upstream/nginx.conf" <<EOF
worker_processes 1;
master_process off;
daemon off;
pid $WORK/upstream/nginx.pid;
error_log $WORK/upstream/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $WORK/upstream/client_body;
    proxy_temp_path $WORK/upstream/proxy;
    fastcgi_temp_path $WORK/upstream/fastcgi;
    uwsgi_temp_path $WORK/upstream/uwsgi;
    scgi_temp_path $WORK/upstream/scgi;
    default_type application/octet-stream;
    sendfile on;
    tcp_nodelay on;
    keepalive_requests 10000000;
    keepalive_timeout 60s;
    server {
        listen 127.0.0.1:$U_PORT backlog=4096;
        root $WORK/www;
        location / { }
        # The same file as a cacheable asset: what a hashed bundle of a micro-app looks like.
        location = /cached/file1k {
            alias $WORK/www/file1k;
            add_header Cache-Control "public, max-age=3600";
        }
        # Counts the connections the upstream accepted: shows whether a proxy reuses them.
        location = /__upstream_status { stub_status; }
    }
}
EOF
start "upstream nginx :$U_PORT" "$LOAD_CORE" "$WORK/upstream/stdout.log" \
    "$NGINX" -p "$WORK/upstream/" -c "$WORK/upstream/nginx.conf" -e "$WORK/upstream/error.log"
UPSTREAM_PID=$START_PID
wait_listening "upstream nginx" "$UPSTREAM_PID" "$U_PORT" "$WORK/upstream/error.log"

# ---------------------------------------------------------------------------------------------------
# nginx proxy_pass, one process, keep-alive pool to the upstream.
POOL=$((CONNECTIONS > 32 ? CONNECTIONS : 32))
if [[ $ACCESS_LOG == on ]]; then NGINX_ACCESS="access_log $WORK/nginx/access.log;"; else NGINX_ACCESS="access_log off;"; fi
cat >"$WORK/nginx/nginx.conf" <<EOF
worker_processes 1;
master_process off;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 4096; }
http {
    $NGINX_ACCESS
    client_body_temp_path $WORK/nginx/client_body;
    proxy_temp_path $WORK/nginx/proxy;
    fastcgi_temp_path $WORK/nginx/fastcgi;
    uwsgi_temp_path $WORK/nginx/uwsgi;
    scgi_temp_path $WORK/nginx/scgi;
    # The cached-asset row: nginx keeps entries in files (served from the page cache), keys in memory.
    proxy_cache_path $WORK/nginx/cache keys_zone=bench:10m max_size=64m;
    tcp_nodelay on;
    keepalive_requests 10000000;
    keepalive_timeout 60s;
    upstream bench_upstream {
        server 127.0.0.1:$U_PORT;
        keepalive $POOL;
        keepalive_requests 10000000;
        keepalive_timeout 60s;
    }
    server {
        listen 127.0.0.1:$N_PORT backlog=4096;
        # The same bytes portico serves itself (rows 7 and 8), from disk; /file1k is still proxied.
        location /static/ {
            root $WORK/www;
            default_type application/octet-stream;
            sendfile on;
        }
        location / {
            proxy_pass http://bench_upstream;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
        # The WebSocket echo upstream (examples/ws_echo.rs), upgraded as nginx's docs show.
        location /ws/ {
            proxy_pass http://127.0.0.1:$W_PORT;
            proxy_http_version 1.1;
            proxy_set_header Upgrade \$http_upgrade;
            proxy_set_header Connection "upgrade";
            proxy_read_timeout 120s;
        }
        # Honours the upstream's Cache-Control (public, max-age=3600), as portico does.
        location /cached/ {
            proxy_pass http://bench_upstream;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_cache bench;
            add_header X-Cache \$upstream_cache_status;
        }
    }
}
EOF
start "nginx proxy :$N_PORT" "$PROXY_CORE" "$WORK/nginx/stdout.log" \
    "$NGINX" -p "$WORK/nginx/" -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx/error.log"
NGINX_PID=$START_PID
wait_listening "nginx proxy" "$NGINX_PID" "$N_PORT" "$WORK/nginx/error.log"

# ---------------------------------------------------------------------------------------------------
# lighttpd mod_proxy, single process (lighttpd 1.4 has no pool of upstream connections: see README).
if [[ $ACCESS_LOG == on ]]; then
    LIGHTTPD_MODULES='"mod_proxy", "mod_accesslog"'
    LIGHTTPD_ACCESS="accesslog.filename = \"$WORK/lighttpd/access.log\""
else
    LIGHTTPD_MODULES='"mod_proxy"'
    LIGHTTPD_ACCESS=""
fi
cat >"$WORK/lighttpd/lighttpd.conf" <<EOF
server.bind = "127.0.0.1"
server.port = $L_PORT
server.document-root = "$WORK/lighttpd/docroot"
server.errorlog = "$WORK/lighttpd/error.log"
server.upload-dirs = ( "$WORK/lighttpd/tmp" )
server.max-worker = 0
server.max-connections = 1024
server.max-keep-alive-requests = 65535
server.max-keep-alive-idle = 60
server.modules += ( $LIGHTTPD_MODULES )
$LIGHTTPD_ACCESS
proxy.server = ( "" => ( ( "host" => "127.0.0.1", "port" => $U_PORT ) ) )
EOF
"$LIGHTTPD" -tt -f "$WORK/lighttpd/lighttpd.conf" >"$WORK/lighttpd/check.log" 2>&1 \
    || { cat "$WORK/lighttpd/check.log" >&2; die "lighttpd rejected its config"; }
start "lighttpd proxy :$L_PORT" "$PROXY_CORE" "$WORK/lighttpd/stdout.log" \
    "$LIGHTTPD" -D -f "$WORK/lighttpd/lighttpd.conf"
LIGHTTPD_PID=$START_PID
wait_listening "lighttpd proxy" "$LIGHTTPD_PID" "$L_PORT" "$WORK/lighttpd/stdout.log"

# ---------------------------------------------------------------------------------------------------
# portico: dev sign-in tenant, one app proxied to the upstream; tokio limited to one worker thread.
if [[ $ACCESS_LOG == on ]]; then PORTICO_RUST_LOG=info; else PORTICO_RUST_LOG=info,access=off; fi
# start_portico DIR PORT [SESSIONS_YAML] [cache]: writes the config, starts portico on the proxy core, sets
# START_PID, and checks that it serves on one thread.
start_portico() {
    local dir=$1 port=$2
    portico_bench_config "$port" "$U_PORT" "${3:-}" "${4:-}" >"$dir/portico.yaml"
    "$PORTICO" check "$dir/portico.yaml" >"$dir/check.log" 2>&1 \
        || { cat "$dir/check.log" >&2; die "portico check rejected the generated config $dir/portico.yaml"; }
    start "portico :$port" "$PROXY_CORE" "$dir/portico.log" \
        env TOKIO_WORKER_THREADS=1 RUST_LOG="$PORTICO_RUST_LOG" NO_COLOR=1 "$PORTICO" serve --config "$dir/portico.yaml"
    local pid=$START_PID
    wait_listening "portico" "$pid" "$port" "$dir/portico.log"
    # `env` execs portico, so the pid is portico's own. With `server.workers: 1` (bench/portico-config.sh)
    # it serves on its main thread: no `portico-worker-N` threads. (TOKIO_WORKER_THREADS=1 is for builds
    # older than `workers:`, whose multi-thread runtime then has one pool thread, named tokio-rt-worker.)
    PORTICO_WORKERS=$(cat /proc/"$pid"/task/*/comm 2>/dev/null | grep -cE '^(tokio-(rt-worker|runtime-w)|portico-worker)' || true)
    PORTICO_THREADS=$(find /proc/"$pid"/task -mindepth 1 -maxdepth 1 | wc -l)
    log "portico :$port: $PORTICO_THREADS threads, $PORTICO_WORKERS worker thread(s) besides the main one"
    [[ $PORTICO_WORKERS -le 1 ]] || log "WARNING: expected one serving thread, found $PORTICO_WORKERS worker threads (taskset still confines them to core $PROXY_CORE)"
    START_PID=$pid
}
PORTICO_BENCH_WS_PORT=$W_PORT start_portico "$WORK/portico" "$P_PORT" "" cache
PORTICO_PID=$START_PID

# portico with the Redis session store: redis-server (no persistence) on the load core, like the
# upstream, so the proxy core runs portico alone; Redis's own CPU per request is reported beside.
start "redis-server :$R_PORT" "$LOAD_CORE" "$WORK/redis/redis.log" \
    redis-server --port "$R_PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$WORK/redis"
REDIS_PID=$START_PID
wait_listening "redis-server" "$REDIS_PID" "$R_PORT" "$WORK/redis/redis.log"
head -c 32 /dev/urandom | base64 >"$WORK/portico-redis/session.key"
start_portico "$WORK/portico-redis" "$PR_PORT" \
    "sessions: { store: redis, redis: { url: \"redis://127.0.0.1:$R_PORT/0\", key_file: \"$WORK/portico-redis/session.key\" } }"
PORTICO_REDIS_PID=$START_PID

if [[ -n $FLOOR ]]; then
    start "hyper floor :$F_PORT" "$PROXY_CORE" "$WORK/floor.log" \
        env TOKIO_WORKER_THREADS=1 "$FLOOR" "127.0.0.1:$F_PORT" "http://127.0.0.1:$U_PORT"
    FLOOR_PID=$START_PID
    wait_listening "hyper floor" "$FLOOR_PID" "$F_PORT" "$WORK/floor.log"
fi

# Sign in and take the session cookie.
sign_in() { # PORT: prints the portico_session cookie pair
    local set_cookie cookie
    set_cookie=$(curl -sS --max-time 5 -D - -o /dev/null -H "Origin: http://127.0.0.1:$1" \
        -d 'user=bench' "http://127.0.0.1:$1/auth/dev-login" | tr -d '\r' | grep -i '^set-cookie:' || true)
    cookie=$(sed -n 's/^[Ss]et-[Cc]ookie: *\(portico_session=[^;]*\).*/\1/p' <<<"$set_cookie" | head -n 1)
    [[ -n $cookie && $cookie != portico_session= ]] || die "dev sign-in at :$1 gave no portico_session cookie (got: ${set_cookie:-no Set-Cookie})"
    echo "$cookie"
}
COOKIE=$(sign_in "$P_PORT")
COOKIE_REDIS=$(sign_in "$PR_PORT")

# ---------------------------------------------------------------------------------------------------
# Verify every path before measuring anything: 200 and exactly the 1 KiB body.
TARGETS=(direct nginx lighttpd portico portico_redis nginx_cache portico_cache)
declare -A URL PID LABEL
if [[ -n $FLOOR ]]; then
    TARGETS+=(floor)
    URL[floor]="http://127.0.0.1:$F_PORT/file1k"
    PID[floor]=$FLOOR_PID
    LABEL[floor]="hyper floor (examples/bare_proxy.rs)"
fi
URL[direct]="http://127.0.0.1:$U_PORT/file1k"
URL[nginx]="http://127.0.0.1:$N_PORT/file1k"
URL[lighttpd]="http://127.0.0.1:$L_PORT/file1k"
URL[portico]="http://127.0.0.1:$P_PORT/apps/echo/file1k"
URL[portico_redis]="http://127.0.0.1:$PR_PORT/apps/echo/file1k"
URL[nginx_cache]="http://127.0.0.1:$N_PORT/cached/file1k"
URL[portico_cache]="http://127.0.0.1:$P_PORT/apps/assets/cached/file1k"
PID[nginx_cache]=$NGINX_PID
PID[portico_cache]=$PORTICO_PID
LABEL[nginx_cache]="nginx proxy_cache, cached asset"
LABEL[portico_cache]="portico cache: on, cached asset"
PID[direct]=""
PID[nginx]=$NGINX_PID
PID[lighttpd]=$LIGHTTPD_PID
PID[portico]=$PORTICO_PID
PID[portico_redis]=$PORTICO_REDIS_PID
LABEL[direct]="upstream direct (nginx static)"
LABEL[nginx]="nginx $("$NGINX" -v 2>&1 | sed 's|.*nginx/||') proxy_pass"
LABEL[lighttpd]="lighttpd $("$LIGHTTPD" -v 2>&1 | sed -n 's|^lighttpd/\([^ ]*\).*|\1|p') mod_proxy"
LABEL[portico]="portico (session + access check)"
LABEL[portico_redis]="portico, sessions in Redis $(redis-server --version | sed -n 's/.* v=\([^ ]*\).*/\1/p')"
header_args() {
    case $1 in
        portico | portico_cache | portico_config | portico_1m) printf '%s\n' -H "Cookie: $COOKIE" ;;
        portico_redis) printf '%s\n' -H "Cookie: $COOKIE_REDIS" ;;
    esac
}


# What portico serves itself, beside nginx serving the same bytes from a file (issue 13): the
# signed-in user's shell config (per user, built per request) and an embedded Luigi file.
SHELL_CONFIG_URL="http://127.0.0.1:$P_PORT/shell/config.json"
code=$(curl -sS --max-time 5 -o "$WORK/www/static/config.json" -w '%{http_code}' -H "Cookie: $COOKIE" "$SHELL_CONFIG_URL" || echo "000")
[[ $code == 200 ]] || die "portico $SHELL_CONFIG_URL answered $code, expected 200"
cp "$ROOT/node_modules/@luigi-project/client/luigi-client.js" "$WORK/www/static/luigi-client.js"
LUIGI_VERSION=$(sed -n 's/.*"version": *"\([^"]*\)".*/\1/p' "$ROOT/node_modules/@luigi-project/client/package.json" | head -n 1)
TARGETS+=(portico_config nginx_config portico_luigi nginx_luigi)
URL[portico_config]=$SHELL_CONFIG_URL
URL[nginx_config]="http://127.0.0.1:$N_PORT/static/config.json"
URL[portico_luigi]="http://127.0.0.1:$P_PORT/shell/luigi-client/$LUIGI_VERSION/luigi-client.js"
URL[nginx_luigi]="http://127.0.0.1:$N_PORT/static/luigi-client.js"
PID[portico_config]=$PORTICO_PID
PID[nginx_config]=$NGINX_PID
PID[portico_luigi]=$PORTICO_PID
PID[nginx_luigi]=$NGINX_PID
CONFIG_BYTES=$(stat -c %s "$WORK/www/static/config.json")
LUIGI_BYTES=$(stat -c %s "$WORK/www/static/luigi-client.js")
LABEL[portico_config]="portico /shell/config.json (signed in, $CONFIG_BYTES B)"
LABEL[nginx_config]="nginx static file, same $CONFIG_BYTES B"
LABEL[portico_luigi]="portico embedded luigi-client.js ($LUIGI_BYTES B)"
LABEL[nginx_luigi]="nginx static file, same $LUIGI_BYTES B"
# A 1 MiB download through nginx and portico: what a large bundle or an artifact costs per byte.
TARGETS+=(nginx_1m portico_1m)
URL[nginx_1m]="http://127.0.0.1:$N_PORT/file1m"
URL[portico_1m]="http://127.0.0.1:$P_PORT/apps/echo/file1m"
PID[nginx_1m]=$NGINX_PID
PID[portico_1m]=$PORTICO_PID
LABEL[nginx_1m]="nginx proxy_pass, 1 MiB download"
LABEL[portico_1m]="portico, 1 MiB download"
declare -A EXPECT
EXPECT[nginx_1m]="$WORK/www/file1m"
EXPECT[portico_1m]="$WORK/www/file1m"
EXPECT[portico_config]="$WORK/www/static/config.json"
EXPECT[nginx_config]="$WORK/www/static/config.json"
EXPECT[portico_luigi]="$WORK/www/static/luigi-client.js"
EXPECT[nginx_luigi]="$WORK/www/static/luigi-client.js"

for t in "${TARGETS[@]}"; do
    mapfile -t hdr < <(header_args "$t")
    code=$(curl -sS --max-time 5 -o "$WORK/verify-$t.body" -w '%{http_code}' "${hdr[@]}" "${URL[$t]}" || echo "000")
    [[ $code == 200 ]] || die "$t: ${URL[$t]} answered $code, expected 200"
    expected=${EXPECT[$t]:-$WORK/www/file1k}
    cmp -s "$WORK/verify-$t.body" "$expected" || die "$t: ${URL[$t]} did not return the bytes of $expected"
done
# The cached rows: the second request is a hit (the first filled the cache).
for t in nginx_cache portico_cache; do
    mapfile -t hdr < <(header_args "$t")
    status=$(curl -sS --max-time 5 -D - -o /dev/null "${hdr[@]}" "${URL[$t]}" | tr -d '\r' | sed -n 's/^[Xx]-[Cc]ache: *//p')
    [[ $status == HIT ]] || die "$t: ${URL[$t]} answered X-Cache '${status:-none}' the second time, expected HIT"
done
for t in portico portico_redis portico_cache; do
    code=$(curl -sS --max-time 5 -o /dev/null -w '%{http_code}' "${URL[$t]}" || echo "000")
    [[ $code == 401 ]] || die "$t without the session cookie answered $code, expected 401"
done
log "verified: all ${#TARGETS[@]} paths answer 200 with their expected body; portico without the cookie answers 401"

# ---------------------------------------------------------------------------------------------------
# Measure.
cat >"$WORK/wrk/report.lua" <<'EOF'
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d p50_us=%d p99_us=%d max_us=%d errors_connect=%d errors_read=%d errors_write=%d errors_status=%d errors_timeout=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout))
end
EOF

# run_wrk TARGET SECONDS OUTFILE: bounded by -d, and by `timeout` in case wrk ever hangs.
run_wrk() {
    local t=$1 secs=$2 out=$3
    local -a hdr
    mapfile -t hdr < <(header_args "$t")
    timeout --kill-after=5 $((secs + 30)) \
        taskset -c "$LOAD_CORE" wrk -t"$THREADS" -c"$CONNECTIONS" -d"${secs}s" --timeout 5s --latency \
        -s "$WORK/wrk/report.lua" "${hdr[@]}" "${URL[$t]}" >"$out" 2>&1 &
    local wrk_pid=$!
    PIDS+=("$wrk_pid")
    local rc=0
    wait "$wrk_pid" || rc=$?
    ((rc == 0)) || { cat "$out" >&2; die "wrk against $t failed (exit $rc)"; }
}

field() { sed -n "s/.* $2=\([0-9]*\).*/\1/p" "$1" | head -n 1; }

declare -A RPS P50 P99 CPU_US SYS_US BUSY OTHER UP_US UP_CONNS ERRS REQS REDIS_US
NOISY=0
read -r LOAD1 _ </proc/loadavg
if awk -v l="$LOAD1" 'BEGIN { exit !(l > 1.0) }'; then
    log "WARNING: load average is $LOAD1 before the first run: something else may be using the CPUs (each run's 'other load' column tells)"
fi
INVALID=0
for t in "${TARGETS[@]}"; do
    log "$t: warm-up ${WARMUP_S}s, then ${DURATION_S}s with -t$THREADS -c$CONNECTIONS"
    run_wrk "$t" "$WARMUP_S" "$WORK/wrk/$t-warmup.txt"
    sleep 0.5
    pid=${PID[$t]}
    before="0 0" after="0 0"
    [[ -n $pid ]] && before=$(cpu_ticks "$pid")
    up_before=$(cpu_ticks "$UPSTREAM_PID")
    redis_before=$(cpu_ticks "$REDIS_PID")
    accepts_before=$(upstream_accepts)
    core_before=$(core_jiffies "$PROXY_CORE")
    run_wrk "$t" "$DURATION_S" "$WORK/wrk/$t.txt"
    [[ -n $pid ]] && after=$(cpu_ticks "$pid")
    up_after=$(cpu_ticks "$UPSTREAM_PID")
    redis_after=$(cpu_ticks "$REDIS_PID")
    core_after=$(core_jiffies "$PROXY_CORE")
    accepts_after=$(upstream_accepts)
    read -r b_user b_sys <<<"$before"
    read -r a_user a_sys <<<"$after"
    read -r ub_user ub_sys <<<"$up_before"
    read -r ua_user ua_sys <<<"$up_after"
    read -r cb_busy cb_total <<<"$core_before"
    read -r ca_busy ca_total <<<"$core_after"
    # What else ran on the proxy's core (other processes, steal): should be close to 0 %.
    OTHER[$t]=$(awk -v b="$((ca_busy - cb_busy))" -v t="$((ca_total - cb_total))" -v p="$((a_user + a_sys - b_user - b_sys))" \
        'BEGIN { o = t > 0 ? (b - p) / t * 100 : 0; if (o < 0) o = 0; printf "%.0f", o }')
    if ((OTHER[$t] > 10)); then
        NOISY=1
        log "WARNING: during $t, ${OTHER[$t]} % of core $PROXY_CORE went to something other than the proxy under test"
    fi
    # Minus the one connection of the status request itself.
    UP_CONNS[$t]=$((accepts_after - accepts_before - 1))
    out="$WORK/wrk/$t.txt"
    grep -q '^BENCH ' "$out" || { cat "$out" >&2; die "no wrk summary for $t"; }
    reqs=$(field "$out" requests)
    dur=$(field "$out" duration_us)
    ((reqs > 0)) || die "$t: wrk completed no request"
    errs=0
    for k in connect read write status timeout; do errs=$((errs + $(field "$out" "errors_$k"))); done
    ERRS[$t]=$errs
    REQS[$t]=$reqs
    ((errs == 0)) || { INVALID=1; log "WARNING: $t had $errs errors (non-2xx or socket errors): its numbers are not valid"; }
    RPS[$t]=$(awk -v r="$reqs" -v d="$dur" 'BEGIN { printf "%.0f", r / (d / 1e6) }')
    P50[$t]=$(awk -v v="$(field "$out" p50_us)" 'BEGIN { printf "%.3f", v / 1000 }')
    P99[$t]=$(awk -v v="$(field "$out" p99_us)" 'BEGIN { printf "%.3f", v / 1000 }')
    per_req() { awk -v d="$1" -v hz="$CLK_TCK" -v r="$reqs" 'BEGIN { printf "%.2f", d / hz * 1e6 / r }'; }
    UP_US[$t]=$(per_req $((ua_user + ua_sys - ub_user - ub_sys)))
    read -r rb_user rb_sys <<<"$redis_before"
    read -r ra_user ra_sys <<<"$redis_after"
    REDIS_US[$t]=$(per_req $((ra_user + ra_sys - rb_user - rb_sys)))
    if [[ -n $pid ]]; then
        CPU_US[$t]=$(per_req $((a_user + a_sys - b_user - b_sys)))
        SYS_US[$t]=$(per_req $((a_sys - b_sys)))
        BUSY[$t]=$(awk -v d="$((a_user + a_sys - b_user - b_sys))" -v hz="$CLK_TCK" -v w="$dur" \
            'BEGIN { printf "%.0f", d / hz / (w / 1e6) * 100 }')
    else
        CPU_US[$t]="-"
        SYS_US[$t]="-"
        BUSY[$t]="-"
    fi
    log "$t: ${RPS[$t]} req/s, p99 ${P99[$t]} ms, proxy CPU ${CPU_US[$t]} µs/req"
    sleep 1
done

# ---------------------------------------------------------------------------------------------------
# Report.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0 || a == "-" || b == "-") print "-"; else printf "%.2f", a / b }'; }
# ---------------------------------------------------------------------------------------------------
# WebSocket echo round trips (wrk speaks no WebSocket): ws_echo load, on the load core, through nginx
# and portico to ws_echo serve, also on the load core. Each of WS_CONNECTIONS connections sends a
# 64-byte message and waits for its echo, again and again; CPU per round trip as for the rows above.
WS_CONNECTIONS=$CONNECTIONS
declare -A WS_RTS WS_P50 WS_P99 WS_CPU WS_SYS
if [[ -n $WS_ECHO ]]; then
    start "ws_echo serve :$W_PORT" "$LOAD_CORE" "$WORK/ws_echo.log" "$WS_ECHO" serve "127.0.0.1:$W_PORT"
    wait_listening "ws_echo" "$START_PID" "$W_PORT" "$WORK/ws_echo.log"
    for t in nginx portico; do
        case $t in
            nginx) ws_url="ws://127.0.0.1:$N_PORT/ws/echo" ws_pid=$NGINX_PID ws_cookie=() ;;
            portico) ws_url="ws://127.0.0.1:$P_PORT/apps/ws/echo" ws_pid=$PORTICO_PID ws_cookie=("$COOKIE") ;;
        esac
        log "websocket $t: warm-up ${WARMUP_S}s, then ${DURATION_S}s with $WS_CONNECTIONS connections"
        timeout $((WARMUP_S + 30)) taskset -c "$LOAD_CORE" "$WS_ECHO" load "$ws_url" "$WS_CONNECTIONS" "$WARMUP_S" "${ws_cookie[@]}" \
            >"$WORK/ws-$t-warmup.txt" 2>&1 || { cat "$WORK/ws-$t-warmup.txt" >&2; die "websocket $t: the warm-up failed"; }
        read -r b_user b_sys <<<"$(cpu_ticks "$ws_pid")"
        timeout $((DURATION_S + 30)) taskset -c "$LOAD_CORE" "$WS_ECHO" load "$ws_url" "$WS_CONNECTIONS" "$DURATION_S" "${ws_cookie[@]}" \
            >"$WORK/ws-$t.txt" 2>&1 || { cat "$WORK/ws-$t.txt" >&2; die "websocket $t: the run failed"; }
        read -r a_user a_sys <<<"$(cpu_ticks "$ws_pid")"
        rts=$(sed -n 's/.*round_trips=\([0-9]*\).*/\1/p' "$WORK/ws-$t.txt")
        ((rts > 0)) || die "websocket $t: no round trip completed"
        WS_RTS[$t]=$(awk -v r="$rts" -v d="$DURATION_S" 'BEGIN { printf "%.0f", r / d }')
        WS_P50[$t]=$(awk -v v="$(sed -n 's/.*p50_us=\([0-9]*\).*/\1/p' "$WORK/ws-$t.txt")" 'BEGIN { printf "%.3f", v / 1000 }')
        WS_P99[$t]=$(awk -v v="$(sed -n 's/.*p99_us=\([0-9]*\).*/\1/p' "$WORK/ws-$t.txt")" 'BEGIN { printf "%.3f", v / 1000 }')
        WS_CPU[$t]=$(awk -v d="$((a_user + a_sys - b_user - b_sys))" -v hz="$CLK_TCK" -v r="$rts" 'BEGIN { printf "%.2f", d / hz * 1e6 / r }')
        WS_SYS[$t]=$(awk -v d="$((a_sys - b_sys))" -v hz="$CLK_TCK" -v r="$rts" 'BEGIN { printf "%.2f", d / hz * 1e6 / r }')
    done
fi

R_RPS=$(ratio "${RPS[portico]}" "${RPS[nginx]}")
R_P99=$(ratio "${P99[portico]}" "${P99[nginx]}")
R_CPU=$(ratio "${CPU_US[portico]}" "${CPU_US[nginx]}")
S_RPS=$(ratio "${RPS[portico_redis]}" "${RPS[portico]}")
S_P99=$(ratio "${P99[portico_redis]}" "${P99[portico]}")
S_CPU=$(ratio "${CPU_US[portico_redis]}" "${CPU_US[portico]}")
L_RPS=$(ratio "${RPS[lighttpd]}" "${RPS[nginx]}")
L_P99=$(ratio "${P99[lighttpd]}" "${P99[nginx]}")
L_CPU=$(ratio "${CPU_US[lighttpd]}" "${CPU_US[nginx]}")
K_RPS=$(ratio "${RPS[portico_cache]}" "${RPS[nginx_cache]}")
K_P99=$(ratio "${P99[portico_cache]}" "${P99[nginx_cache]}")
K_CPU=$(ratio "${CPU_US[portico_cache]}" "${CPU_US[nginx_cache]}")
if [[ -n $FLOOR ]]; then
    F_RPS=$(ratio "${RPS[floor]}" "${RPS[nginx]}")
    F_P99=$(ratio "${P99[floor]}" "${P99[nginx]}")
    F_CPU=$(ratio "${CPU_US[floor]}" "${CPU_US[nginx]}")
    O_RPS=$(ratio "${RPS[portico]}" "${RPS[floor]}")
    O_P99=$(ratio "${P99[portico]}" "${P99[floor]}")
    O_CPU=$(ratio "${CPU_US[portico]}" "${CPU_US[floor]}")
fi

C_RPS=$(ratio "${RPS[portico_config]}" "${RPS[nginx_config]}")
C_P99=$(ratio "${P99[portico_config]}" "${P99[nginx_config]}")
C_CPU=$(ratio "${CPU_US[portico_config]}" "${CPU_US[nginx_config]}")
A_RPS=$(ratio "${RPS[portico_luigi]}" "${RPS[nginx_luigi]}")
A_P99=$(ratio "${P99[portico_luigi]}" "${P99[nginx_luigi]}")
A_CPU=$(ratio "${CPU_US[portico_luigi]}" "${CPU_US[nginx_luigi]}")
D_RPS=$(ratio "${RPS[portico_1m]}" "${RPS[nginx_1m]}")
D_P99=$(ratio "${P99[portico_1m]}" "${P99[nginx_1m]}")
D_CPU=$(ratio "${CPU_US[portico_1m]}" "${CPU_US[nginx_1m]}")
mib_per_s() { awk -v r="$1" 'BEGIN { printf "%.0f", r }'; } # one request is one MiB

CPU_MODEL=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
GIT_REV=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ -n $(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null) ]]; then GIT_REV+=" (uncommitted changes)"; fi
WRK_VERSION=$(wrk -v 2>&1 || true)  # wrk -v prints its version and the usage, and exits 1
WRK_VERSION=$(sed -n 's/^wrk \([^ ]*\).*/\1/p' <<<"$WRK_VERSION" | head -n 1)
ELAPSED=$(($(date +%s) - START_TIME))

{
    echo "# Proxy overhead benchmark: latest run"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'), portico $GIT_REV, $(nproc) cores ($CPU_MODEL), Linux $(uname -r)."
    echo "wrk ${WRK_VERSION:-?} \`-t$THREADS -c$CONNECTIONS -d${DURATION_S}s\` (after a ${WARMUP_S}s warm-up), GET of a 1024-byte static file on 127.0.0.1"
    echo "(the config.json and Luigi rows: what portico serves itself, and nginx serving the same bytes from a file; no Accept-Encoding, so uncompressed; the last two: a 1 MiB file);"
    echo "wrk, the upstream (nginx, static file) and redis-server on core $LOAD_CORE, each proxy alone on core $PROXY_CORE; access logs $ACCESS_LOG;"
    echo "portico with server.workers ${PORTICO_BENCH_WORKERS-1} ($PORTICO_WORKERS worker threads besides main, $PORTICO_THREADS threads)."
    echo
    echo "| target | req/s | p50 ms | p99 ms | proxy CPU µs/req | of which kernel | proxy core busy | other load on core $PROXY_CORE | upstream CPU µs/req | upstream conns opened | requests | errors |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    for t in "${TARGETS[@]}"; do
        busy=${BUSY[$t]}
        [[ $busy != - ]] && busy="$busy %"
        echo "| ${LABEL[$t]} | ${RPS[$t]} | ${P50[$t]} | ${P99[$t]} | ${CPU_US[$t]} | ${SYS_US[$t]} | $busy | ${OTHER[$t]} % | ${UP_US[$t]} | ${UP_CONNS[$t]} | ${REQS[$t]} | ${ERRS[$t]} |"
    done
    echo
    echo "| ratio | req/s | p99 | CPU/request |"
    echo "| --- | ---: | ---: | ---: |"
    echo "| portico / nginx | $R_RPS | $R_P99 | $R_CPU |"
    echo "| portico, Redis store / memory store | $S_RPS | $S_P99 | $S_CPU |"
    echo "| lighttpd / nginx | $L_RPS | $L_P99 | $L_CPU |"
    echo "| portico cache / nginx proxy_cache (cached asset) | $K_RPS | $K_P99 | $K_CPU |"
    if [[ -n $FLOOR ]]; then
        echo "| hyper floor / nginx | $F_RPS | $F_P99 | $F_CPU |"
        echo "| portico / hyper floor | $O_RPS | $O_P99 | $O_CPU |"
    fi
    echo "| portico /shell/config.json / nginx same-size static (target: CPU <= 2) | $C_RPS | $C_P99 | $C_CPU |"
    echo "| portico embedded Luigi file / nginx same-size static | $A_RPS | $A_P99 | $A_CPU |"
    echo "| portico / nginx, 1 MiB download | $D_RPS | $D_P99 | $D_CPU |"
    echo
    echo "1 MiB downloads: nginx $(mib_per_s "${RPS[nginx_1m]}") MiB/s, portico $(mib_per_s "${RPS[portico_1m]}") MiB/s (CPU per MiB: the CPU µs/req column)."
    echo
    if [[ -n $WS_ECHO ]]; then
        echo "WebSocket echo, $WS_CONNECTIONS connections, 64-byte text messages, one in flight per connection (examples/ws_echo.rs on core $LOAD_CORE):"
        echo
        echo "| target | round trips/s | p50 ms | p99 ms | proxy CPU µs/round trip | of which kernel |"
        echo "| --- | ---: | ---: | ---: | ---: | ---: |"
        echo "| nginx | ${WS_RTS[nginx]} | ${WS_P50[nginx]} | ${WS_P99[nginx]} | ${WS_CPU[nginx]} | ${WS_SYS[nginx]} |"
        echo "| portico | ${WS_RTS[portico]} | ${WS_P50[portico]} | ${WS_P99[portico]} | ${WS_CPU[portico]} | ${WS_SYS[portico]} |"
        echo "| portico / nginx | $(ratio "${WS_RTS[portico]}" "${WS_RTS[nginx]}") | $(ratio "${WS_P50[portico]}" "${WS_P50[nginx]}") | $(ratio "${WS_P99[portico]}" "${WS_P99[nginx]}") | $(ratio "${WS_CPU[portico]}" "${WS_CPU[nginx]}") | |"
        echo
    fi
    echo "Redis's own CPU per request during the Redis-store run: ${REDIS_US[portico_redis]} µs (on core $LOAD_CORE, not in the proxy's figure)."
    echo
    echo "Whole run (build included): ${ELAPSED} s."
    if ((NOISY)); then
        echo
        echo "**NOISY RUN: something else used the proxy's core during a measurement (see 'other load'); rerun on a quiet machine.**"
    fi
    if ((INVALID)); then
        echo
        echo "**INVALID RUN: some target had errors (see the errors column); do not use these numbers.**"
    fi
} >"$RESULTS"

echo
cat "$RESULTS"
echo
echo "(written to ${RESULTS#"$ROOT"/})"
((INVALID == 0)) || exit 1

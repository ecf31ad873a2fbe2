#!/usr/bin/env bash
# Memory benchmark (issue 13): what an idle keep-alive client connection costs portico and nginx, whether
# the memory comes back when the clients leave, and what a session costs portico.
#
#   1. Idle connections: portico (the proxied path with a signed-in session, bench/portico-config.sh)
#      and nginx proxy_pass (as in bench/run.sh), each alone on core 1, the upstream on core 0. A loopback
#      client (examples/idle_clients.rs, core 0) opens MEM_CONNECTIONS connections to one of them, 32 at a
#      time; each sends one GET of the 1 KiB file, reads the answer, then stays open and idle. The
#      proxy's RSS (VmRSS of /proc/<pid>/status) is read before, MEM_SETTLE seconds after the last one
#      is open ("held"), and MEM_AFTER seconds after the client closed them all ("after").
#   2. Sessions: a fresh portico; MEM_SESSIONS dev sign-ins (POST /auth/dev-login, the real sign-in
#      path) by one user with a name, an email and two groups; the RSS before and after, per session.
#      Then examples/session_cost.rs: 100,000 sessions stored through the store's own API in one
#      process, without tokens and with OIDC tokens of typical sizes.
#
# Usage: bench/memory.sh        Env: MEM_CONNECTIONS=10000 MEM_SESSIONS=20000 MEM_SETTLE=5 MEM_AFTER=5
#        PORTICO_BIN=path (skip the cargo build; idle_clients and session_cost are looked for beside
#        it, in examples/)
#        BENCH_KEEP=1 (keep the work dir)
#
# Everything listens on 127.0.0.1 only; the client holds its connections at most MEM_HOLD_MAX seconds
# (default 300) and every wait is bounded; every process the script starts is killed on exit.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/portico-config.sh
. "$ROOT/bench/portico-config.sh"

CONNECTIONS=${MEM_CONNECTIONS:-10000}
SESSIONS=${MEM_SESSIONS:-20000}
SETTLE=${MEM_SETTLE:-5}
AFTER=${MEM_AFTER:-5}
HOLD_MAX=${MEM_HOLD_MAX:-300}
[[ $CONNECTIONS =~ ^[0-9]+$ && $CONNECTIONS -ge 100 && $CONNECTIONS -le 15000 ]] \
    || { echo "error: MEM_CONNECTIONS must be 100..15000 (the fd limit is about 20000 per process)" >&2; exit 2; }
[[ $SESSIONS =~ ^[0-9]+$ && $SESSIONS -ge 100 && $SESSIONS -le 100000 ]] \
    || { echo "error: MEM_SESSIONS must be 100..100000" >&2; exit 2; }
for v in SETTLE AFTER HOLD_MAX; do
    [[ ${!v} =~ ^[0-9]+$ && ${!v} -le 600 ]] || { echo "error: MEM_$v must be 0..600 seconds" >&2; exit 2; }
done
LOAD_CORE=0
PROXY_CORE=1

log() { printf '[memory %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf 'memory: error: %s\n' "$*" >&2; exit 1; }

NAME=memory
KEEP=${BENCH_KEEP:-}
# shellcheck source=bench/processes.sh
source "$ROOT/bench/processes.sh"
trap 'echo "memory: error: line $LINENO failed: $BASH_COMMAND" >&2' ERR

(($(nproc) >= 2)) || die "needs at least 2 CPU cores"
(($(ulimit -n) >= CONNECTIONS + 200)) || ulimit -n $((CONNECTIONS + 1000)) 2>/dev/null \
    || die "the open-file limit ($(ulimit -n)) is below MEM_CONNECTIONS + 200"
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
missing=()
[[ -x $NGINX ]] || missing+=(nginx)
command -v curl >/dev/null || missing+=(curl)
command -v taskset >/dev/null || missing+=(util-linux)
if ((${#missing[@]})); then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
        log "installing Debian packages: ${missing[*]}"
        DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null
        NGINX=$(command -v nginx || echo /usr/sbin/nginx)
    else
        die "missing ${missing[*]}: run  sudo apt-get update && sudo apt-get install -y ${missing[*]}"
    fi
fi

if [[ -n ${PORTICO_BIN:-} ]]; then
    PORTICO=$PORTICO_BIN
    [[ -x $PORTICO ]] || die "PORTICO_BIN=$PORTICO is not an executable"
    CLIENT=$(dirname "$PORTICO")/examples/idle_clients
    SESSION_COST=$(dirname "$PORTICO")/examples/session_cost
    log "using PORTICO_BIN=$PORTICO (no build)"
else
    if [[ ! -f $ROOT/node_modules/@luigi-project/core/luigi.js ]]; then
        log "installing the pinned npm packages portico embeds (npm ci)"
        (cd "$ROOT" && npm ci --no-audit --no-fund >/dev/null)
    fi
    log "building portico and the client (cargo build --release)"
    (cd "$ROOT" && cargo build --release --bin portico --example idle_clients --example session_cost)
    TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
    PORTICO="$TARGET/release/portico"
    CLIENT="$TARGET/release/examples/idle_clients"
    SESSION_COST="$TARGET/release/examples/session_cost"
fi
[[ -x $CLIENT ]] || die "no $CLIENT (cargo build --release --example idle_clients)"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/portico-memory.XXXXXX")
mkdir -p "$WORK/www" "$WORK/upstream" "$WORK/nginx" "$WORK/portico" "$WORK/sessions"
awk 'BEGIN { line = "portico bench: a 1 KiB static body for proxy overhead measurements.\n"
             while (length(body) < 1024) body = body line
             printf "%s", substr(body, 1, 1024) }' >"$WORK/www/file1k"

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
USED_PORTS=" "
FREE_PORT=""
free_port() {
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
START_PID=""
start() { # NAME CORE LOGFILE CMD...
    local name=$1 core=$2 logfile=$3
    shift 3
    taskset -c "$core" "$@" >>"$logfile" 2>&1 &
    START_PID=$!
    PIDS+=("$START_PID")
    log "started $name (pid $START_PID, core $core)"
}
wait_listening() { # NAME PID PORT LOGFILE
    for _ in $(seq 100); do
        kill -0 "$2" 2>/dev/null || { tail -n 20 "$4" >&2; die "$1 exited at start (log above)"; }
        port_open "$3" && return 0
        sleep 0.1
    done
    tail -n 20 "$4" >&2
    die "$1 is not listening on 127.0.0.1:$3 after 10 s"
}
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

free_port; U_PORT=$FREE_PORT
free_port; N_PORT=$FREE_PORT
free_port; P_PORT=$FREE_PORT
free_port; S_PORT=$FREE_PORT
MAXCONN=$((CONNECTIONS + 1000))

# The upstream: nginx serving the static file (as in bench/run.sh).
cat >"$WORK/upstream/nginx.conf" <<EOF
worker_processes 1;
master_process off;
daemon off;
pid $WORK/upstream/nginx.pid;
error_log $WORK/upstream/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $WORK/upstream/client_body;
    proxy_temp_path $WORK/upstream/proxy;
    fastcgi_temp_path $WORK/upstream/fastcgi;
    uwsgi_temp_path $WORK/upstream/uwsgi;
    scgi_temp_path $WORK/upstream/scgi;
    default_type application/octet-stream;
    keepalive_requests 10000000;
    keepalive_timeout 60s;
    server {
        listen 127.0.0.1:$U_PORT backlog=4096;
        root $WORK/www;
        location / { }
    }
}
EOF
start "upstream nginx :$U_PORT" "$LOAD_CORE" "$WORK/upstream/stdout.log" \
    "$NGINX" -p "$WORK/upstream/" -c "$WORK/upstream/nginx.conf" -e "$WORK/upstream/error.log"
wait_listening "upstream nginx" "$START_PID" "$U_PORT" "$WORK/upstream/error.log"

# nginx proxy_pass as in bench/run.sh (keep-alive pool, access log), with room for the connections and
# a keep-alive timeout longer than the hold.
cat >"$WORK/nginx/nginx.conf" <<EOF
worker_processes 1;
master_process off;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections $MAXCONN; }
http {
    access_log $WORK/nginx/access.log;
    client_body_temp_path $WORK/nginx/client_body;
    proxy_temp_path $WORK/nginx/proxy;
    fastcgi_temp_path $WORK/nginx/fastcgi;
    uwsgi_temp_path $WORK/nginx/uwsgi;
    scgi_temp_path $WORK/nginx/scgi;
    tcp_nodelay on;
    keepalive_requests 10000000;
    keepalive_timeout ${HOLD_MAX}s;
    upstream bench_upstream {
        server 127.0.0.1:$U_PORT;
        keepalive 32;
    }
    server {
        listen 127.0.0.1:$N_PORT backlog=4096;
        location / {
            proxy_pass http://bench_upstream;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF
start "nginx proxy :$N_PORT" "$PROXY_CORE" "$WORK/nginx/stdout.log" \
    "$NGINX" -p "$WORK/nginx/" -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx/error.log"
NGINX_PID=$START_PID
wait_listening "nginx proxy" "$NGINX_PID" "$N_PORT" "$WORK/nginx/error.log"

# portico: bench/portico-config.sh's config (one worker), with room for the connections (all from one
# client address) and a keep-alive timeout longer than the hold.
# start_portico DIR PORT SESSIONS_YAML: sets START_PID.
start_portico() {
    local dir=$1 port=$2
    portico_bench_config "$port" "$U_PORT" "$3" \
        | sed "/^server:\$/a\\  max_connections: $MAXCONN\\n  max_connections_per_client: $MAXCONN\\n  keepalive_timeout: ${HOLD_MAX}s" \
        | sed "s/{ id: bench, groups: \[eng\] }/{ id: bench, name: Bench User, email: bench.user@example.com, groups: [eng, platform-team] }/" \
        >"$dir/portico.yaml"
    "$PORTICO" check "$dir/portico.yaml" >"$dir/check.log" 2>&1 \
        || { cat "$dir/check.log" >&2; die "portico check rejected $dir/portico.yaml"; }
    start "portico :$port" "$PROXY_CORE" "$dir/portico.log" \
        env RUST_LOG=info NO_COLOR=1 "$PORTICO" serve --config "$dir/portico.yaml"
    wait_listening "portico" "$START_PID" "$port" "$dir/portico.log"
}
start_portico "$WORK/portico" "$P_PORT" ""
PORTICO_PID=$START_PID

sign_in() { # PORT: prints the portico_session cookie pair
    local cookie
    cookie=$(curl -sS --max-time 5 -D - -o /dev/null -H "Origin: http://127.0.0.1:$1" \
        -d 'user=bench' "http://127.0.0.1:$1/auth/dev-login" | tr -d '\r' \
        | sed -n 's/^[Ss]et-[Cc]ookie: *\(portico_session=[^;]*\).*/\1/p' | head -n 1)
    [[ -n $cookie && $cookie != portico_session= ]] || die "dev sign-in at :$1 gave no session cookie"
    echo "$cookie"
}
COOKIE=$(sign_in "$P_PORT")

# idle NAME PID URL_PATH PORT [COOKIE]: sets KIB_BEFORE KIB_HELD KIB_AFTER
idle() {
    local name=$1 pid=$2 path=$3 port=$4 cookie=${5:-}
    local -a hdr=()
    [[ -n $cookie ]] && hdr=(-H "Cookie: $cookie")
    # Warm up: the first requests build what every later one reuses (upstream pool, lazy statics).
    for _ in $(seq 20); do
        [[ $(curl -sS --max-time 5 -o /dev/null -w '%{http_code}' "${hdr[@]}" "http://127.0.0.1:$port$path") == 200 ]] \
            || die "$name: GET $path did not answer 200"
    done
    sleep 1
    KIB_BEFORE=$(rss_kib "$pid")
    local out="$WORK/$name-clients.out" fifo="$WORK/$name-clients.fifo"
    mkfifo "$fifo"
    taskset -c "$LOAD_CORE" "$CLIENT" hold "127.0.0.1:$port" "$CONNECTIONS" "$path" "$HOLD_MAX" ${cookie:+"$cookie"} \
        <"$fifo" >"$out" 2>&1 &
    local client=$!
    PIDS+=("$client")
    exec 7>"$fifo" # the client holds its connections until this is closed
    local t0=$SECONDS
    until grep -q '^held=' "$out"; do
        kill -0 "$client" 2>/dev/null || { cat "$out" >&2; die "$name: the client exited early"; }
        ((SECONDS - t0 < 180)) || die "$name: the connections were not all open after 180 s"
        sleep 0.2
    done
    local held_line
    held_line=$(grep '^held=' "$out")
    log "$name: $held_line after $((SECONDS - t0)) s"
    [[ $held_line == "held=$CONNECTIONS errors=0" ]] || { cat "$out" >&2; die "$name: not every connection was answered 200"; }
    sleep "$SETTLE"
    KIB_HELD=$(rss_kib "$pid")
    exec 7>&-
    wait "$client" || die "$name: the client failed (see $out)"
    sleep "$AFTER"
    KIB_AFTER=$(rss_kib "$pid")
    log "$name: RSS $KIB_BEFORE KiB before, $KIB_HELD KiB held, $KIB_AFTER KiB ${AFTER} s after"
}

idle portico "$PORTICO_PID" /apps/echo/file1k "$P_PORT" "$COOKIE"
P_BEFORE=$KIB_BEFORE P_HELD=$KIB_HELD P_AFTER=$KIB_AFTER
idle nginx "$NGINX_PID" /file1k "$N_PORT"
N_BEFORE=$KIB_BEFORE N_HELD=$KIB_HELD N_AFTER=$KIB_AFTER

# Sessions: a fresh instance that lets one user have them all.
start_portico "$WORK/sessions" "$S_PORT" "sessions: { max_sessions: $((SESSIONS + 1000)), max_sessions_per_user: $((SESSIONS + 1000)) }"
SESSIONS_PID=$START_PID
# Warm up the sign-in path (first requests build lazy statics, the log writer, the map's first table).
taskset -c "$LOAD_CORE" "$CLIENT" sign-in "127.0.0.1:$S_PORT" 100 bench >/dev/null
sleep 1
S_BEFORE=$(rss_kib "$SESSIONS_PID")
t0=$SECONDS
signed=$(taskset -c "$LOAD_CORE" timeout 300 "$CLIENT" sign-in "127.0.0.1:$S_PORT" "$SESSIONS" bench)
[[ $signed == "signed_in=$SESSIONS errors=0" ]] || die "sessions: $signed"
# Long enough for mimalloc to purge what the sign-ins freed (portico's collector runs every second).
sleep "$SETTLE"
S_AFTER=$(rss_kib "$SESSIONS_PID")
log "sessions: $SESSIONS sign-ins in $((SECONDS - t0)) s, RSS $S_BEFORE -> $S_AFTER KiB"
STORE_LINES="(no $SESSION_COST: cargo build --release --example session_cost)"
if [[ -x $SESSION_COST ]]; then
    STORE_LINES=$(taskset -c "$PROXY_CORE" timeout 300 "$SESSION_COST" 100000)
fi

per_conn() { awk -v a="$1" -v b="$2" -v n="$CONNECTIONS" 'BEGIN { printf "%.2f", (b - a) / n }'; }
P_PER=$(per_conn "$P_BEFORE" "$P_HELD")
N_PER=$(per_conn "$N_BEFORE" "$N_HELD")
RATIO=$(awk -v p="$P_PER" -v n="$N_PER" 'BEGIN { if (n > 0) printf "%.1f", p / n; else print "n/a" }')
PER_SESSION=$(awk -v a="$S_BEFORE" -v b="$S_AFTER" -v n="$SESSIONS" 'BEGIN { printf "%.0f", (b - a) * 1024 / n }')
left() { awk -v a="$1" -v c="$2" 'BEGIN { printf "%+.1f MiB", (c - a) / 1024 }'; }

REPORT=$(cat <<EOF
## Memory ($(date -u +%Y-%m-%dT%H:%MZ), $CONNECTIONS idle connections, $SESSIONS sessions)

| server | RSS before | RSS held | KiB per idle connection | RSS ${AFTER} s after they left | left over |
| --- | ---: | ---: | ---: | ---: | ---: |
| portico | $P_BEFORE KiB | $P_HELD KiB | $P_PER | $P_AFTER KiB | $(left "$P_BEFORE" "$P_AFTER") |
| nginx | $N_BEFORE KiB | $N_HELD KiB | $N_PER | $N_AFTER KiB | $(left "$N_BEFORE" "$N_AFTER") |

portico / nginx per idle connection: $RATIO

Sessions (dev sign-in, memory store): RSS $S_BEFORE KiB -> $S_AFTER KiB for $SESSIONS sessions: $PER_SESSION bytes per session

Sessions through the store's API (examples/session_cost.rs):
$STORE_LINES
EOF
)
echo "$REPORT"

#!/usr/bin/env bash
# Instructions per proxied request, counted by valgrind's callgrind: repeatable where wall-clock CPU
# figures are not (on a shared 2-core VM, bench/run.sh's CPU per request moves by ±10 % between runs).
#
# It starts a static nginx upstream and portico (under callgrind) on loopback, signs in once, sends
# N keep-alive GETs of /apps/echo/file1k, and reports (instructions(N) - instructions(0)) / N, which
# leaves start-up and sign-in out. Same config and path as bench/run.sh's portico target.
#
# Usage:
#   bench/instructions.sh                              # builds release; N=2000
#   PORTICO_BIN=a/portico BASE_BIN=b/portico bench/instructions.sh   # compare two builds
#   BENCH_CALLGRIND_OUT=/tmp/cg.out bench/instructions.sh             # keep the profile of the busy run
#   BENCH_REQUESTS=5000 bench/instructions.sh
#   BENCH_STORE=redis bench/instructions.sh            # sessions in a redis-server of its own
#   FLOOR_BIN=target/release/examples/bare_proxy bench/instructions.sh  # and the hyper floor's figure
#   BENCH_AUTH=token bench/instructions.sh             # a script's personal access token, not the cookie
#
# Everything listens on 127.0.0.1, lives in a mktemp -d work dir, is bounded by `timeout`, and is
# stopped by an exit trap. Needs valgrind, nginx, curl and python3 (Debian packages; installed with
# apt-get when run as root).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/portico-config.sh
. "$ROOT/bench/portico-config.sh"
N=${BENCH_REQUESTS:-2000}
[[ $N =~ ^[0-9]+$ && $N -gt 0 && $N -le 100000 ]] || { echo "error: BENCH_REQUESTS must be 1..100000" >&2; exit 2; }
STORE=${BENCH_STORE:-memory}
[[ $STORE == memory || $STORE == redis ]] || { echo "error: BENCH_STORE is memory or redis" >&2; exit 2; }
# `cookie`: the signed-in browser's session; `token`: a personal access token minted for the same user
# (`Authorization: Bearer`: token check, rate limit, an audit line per request; needs a build with
# personal tokens, so BASE_BIN must have them too).
AUTH=${BENCH_AUTH:-cookie}
[[ $AUTH == cookie || $AUTH == token ]] || { echo "error: BENCH_AUTH is cookie or token" >&2; exit 2; }

need() {
    local missing=()
    local pairs=("valgrind:valgrind" "nginx:nginx" "curl:curl")
    [[ $STORE == memory ]] || pairs+=("redis-server:redis-server")
    for pair in "${pairs[@]}"; do
        command -v "${pair%%:*}" >/dev/null 2>&1 || [[ -x /usr/sbin/${pair%%:*} ]] || missing+=("${pair#*:}")
    done
    ((${#missing[@]} == 0)) && return
    if [[ $(id -u) == 0 ]]; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        echo "error: missing ${missing[*]}; install with: sudo apt-get install -y ${missing[*]}" >&2
        exit 2
    fi
}
need
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

if [[ -z ${PORTICO_BIN:-} ]]; then
    (cd "$ROOT" && cargo build --release --quiet)
    PORTICO_BIN=$ROOT/target/release/portico
fi

WORK=$(mktemp -d /tmp/portico-instructions.XXXXXX)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
U_PORT=$(free_port)
P_PORT=$(free_port)

mkdir -p "$WORK/upstream/www" "$WORK/upstream/tmp"
head -c 1024 /dev/zero | tr '\0' 'x' >"$WORK/upstream/www/file1k"
cat >"$WORK/upstream/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $WORK/upstream/nginx.pid;
error_log $WORK/upstream/error.log;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $WORK/upstream/tmp;
    proxy_temp_path $WORK/upstream/tmp;
    fastcgi_temp_path $WORK/upstream/tmp;
    uwsgi_temp_path $WORK/upstream/tmp;
    scgi_temp_path $WORK/upstream/tmp;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$U_PORT;
        root $WORK/upstream/www;
    }
}
EOF
"$NGINX" -p "$WORK/upstream/" -c "$WORK/upstream/nginx.conf" -e "$WORK/upstream/error.log" &
PIDS+=($!)

SESSIONS=""
if [[ $STORE == redis ]]; then
    # The Redis store's client-side cost is what callgrind counts; redis-server's own work is not.
    R_PORT=$(free_port)
    redis-server --port "$R_PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$WORK" >"$WORK/redis.log" 2>&1 &
    PIDS+=($!)
    head -c 32 /dev/urandom | base64 >"$WORK/session.key"
    SESSIONS="sessions: { store: redis, redis: { url: \"redis://127.0.0.1:$R_PORT/0\", key_file: \"$WORK/session.key\" } }"
fi
portico_bench_config "$P_PORT" "$U_PORT" "$SESSIONS" >"$WORK/portico.yaml"
if [[ $AUTH == token ]]; then
    # No rate limit: the bench's N requests in a row would run into the default 600/min.
    echo "    tokens: { personal: 30d, rate_limit: \"off\" }" >>"$WORK/portico.yaml"
fi

cat >"$WORK/requests.py" <<'EOF'
import http.client, sys
# credential: `Cookie: …` or `Authorization: …` (a whole header), or empty.
port, n, credential, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
headers = dict([credential.split(": ", 1)]) if credential else {}
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
for _ in range(n):
    conn.request("GET", path, headers=headers)
    answer = conn.getresponse()
    body = answer.read()
    if answer.status != 200 or len(body) != 1024:
        sys.exit(f"unexpected answer: {answer.status}, {len(body)} bytes")
EOF

# A personal access token for the holder of session cookie `$1`, through the JSON API as the page does.
mint_token() {
    local csrf
    csrf=$(curl -sS --max-time 30 -H "Cookie: $1" "http://127.0.0.1:$P_PORT/shell/config.json" |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["portico"]["csrfToken"])')
    curl -sS --max-time 30 -H "Cookie: $1" -H "Origin: http://127.0.0.1:$P_PORT" \
        -H "X-Portico-CSRF: $csrf" -H 'Content-Type: application/json' -d '{"name": "bench"}' \
        "http://127.0.0.1:$P_PORT/auth/tokens" |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])'
}

# Instructions portico executes for start-up, one sign-in and `count` requests.
count_instructions() {
    local bin=$1 count=$2 out="$WORK/callgrind.$RANDOM.out"
    TOKIO_WORKER_THREADS=1 RUST_LOG=info NO_COLOR=1 timeout 600 \
        valgrind --tool=callgrind --callgrind-out-file="$out" "$bin" serve --config "$WORK/portico.yaml" \
        2>"$WORK/portico.log" &
    local pid=$!
    for _ in $(seq 1 120); do
        curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$P_PORT/" && break
        sleep 0.5
    done
    local cookie
    cookie=$(curl -sS --max-time 30 -D - -o /dev/null -H "Origin: http://127.0.0.1:$P_PORT" \
        -d 'user=bench' "http://127.0.0.1:$P_PORT/auth/dev-login" | tr -d '\r' |
        sed -n 's/^[Ss]et-[Cc]ookie: *\(portico_session=[^;]*\).*/\1/p' | head -n 1)
    [[ -n $cookie ]] || { tail -5 "$WORK/portico.log" >&2; echo "error: dev sign-in failed" >&2; kill "$pid"; exit 1; }
    local credential="Cookie: $cookie"
    if [[ $AUTH == token ]]; then
        # Minted in both runs (idle and busy), so the difference is the requests alone.
        credential="Authorization: Bearer $(mint_token "$cookie")"
    fi
    ((count == 0)) || timeout 600 python3 "$WORK/requests.py" "$P_PORT" "$count" "$credential" /apps/echo/file1k
    kill -INT "$pid"
    wait "$pid" || true
    if ((count > 0)) && [[ -n ${BENCH_CALLGRIND_OUT:-} ]]; then
        cp "$out" "$BENCH_CALLGRIND_OUT"   # for callgrind_annotate: where the instructions go
    fi
    sed -n 's/^totals: *//p' "$out"
}

# The same for the hyper floor (examples/bare_proxy.rs): start-up and `count` requests of the file,
# straight to the upstream's path (the floor has no routing, no session).
count_floor_instructions() {
    local bin=$1 count=$2 out="$WORK/callgrind.$RANDOM.out"
    timeout 600 valgrind --tool=callgrind --callgrind-out-file="$out" "$bin" "127.0.0.1:$P_PORT" \
        "http://127.0.0.1:$U_PORT" 2>"$WORK/floor.log" &
    local pid=$!
    for _ in $(seq 1 120); do
        curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$P_PORT/file1k" && break
        sleep 0.5
    done
    ((count == 0)) || timeout 600 python3 "$WORK/requests.py" "$P_PORT" "$count" "" /file1k
    kill -INT "$pid"
    wait "$pid" || true
    sed -n 's/^totals: *//p' "$out"
}

per_request() {
    local bin=$1 count=${2:-count_instructions} idle busy
    idle=$($count "$bin" 0)
    busy=$($count "$bin" "$N")
    echo $(((busy - idle) / N))
}

echo "instructions per proxied request (callgrind, $N keep-alive GETs of a 1 KiB file, start-up and sign-in subtracted; sessions: $STORE; credential: $AUTH)"
NEW=$(per_request "$PORTICO_BIN")
echo "  $PORTICO_BIN: $NEW"
if [[ -n ${BASE_BIN:-} ]]; then
    BASE=$(per_request "$BASE_BIN")
    echo "  $BASE_BIN: $BASE"
    echo "  ratio: $(python3 -c "print(f'{$NEW / $BASE:.3f}')")"
fi
if [[ -n ${FLOOR_BIN:-} ]]; then
    FLOOR=$(per_request "$FLOOR_BIN" count_floor_instructions)
    echo "  hyper floor $FLOOR_BIN: $FLOOR"
    echo "  portico / floor: $(python3 -c "print(f'{$NEW / $FLOOR:.3f}')")"
fi

#!/usr/bin/env bash
# Soak test of a scaled-out portal (issue 12), not part of CI: two `portico serve` instances sharing
# sessions in Redis behind nginx round-robin, the real OpenID Provider (tests/support/op.mjs), a static
# nginx as the upstream app. For DURATION it runs sign-ins through the OP (with logouts) and paced
# proxied traffic through the balancer (bench/soak-load.mjs), and every ~15 s prints the counters, the
# errors (none expected) and the RSS of both instances, nginx and Redis, and Redis's memory.
#
# Usage: bench/soak.sh [DURATION]      DURATION: 3m (default), 90s, 10m; at most 1h
# Env:   SOAK_RATE=200 (proxied requests/s)  SOAK_SIGN_IN_RATE=2 with the OP, 10 with dev sign-in
#        (sign-ins/s in all, each a visit: sign-in, shell config, a proxied page, every other one a
#        logout)  SOAK_SIGN_IN_WORKERS=4
#        SOAK_TOKEN_TTL=30 (s: the OP's access tokens expire, so sessions refresh during the run)
#        SOAK_SIGN_IN=oidc (default: through the real OP) or dev (dev sign-in, no OP: sign-ins without
#        an IdP round trip, and no refresh)
#        PORTICO_BIN=path (no cargo build)  SOAK_KEEP=1 (keep the work dir: configs and logs)
#
# Loopback only: everything listens on 127.0.0.1. Bounded: the load stops by itself after DURATION
# (and is killed 60 s later if it has not). Every process the script starts is killed on exit,
# failure or Ctrl-C; nothing is written outside a mktemp -d work dir. Exit 0 only without errors.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
log() { printf '[soak %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf 'soak: error: %s\n' "$*" >&2; exit 1; }

to_seconds() { # 90 / 90s / 3m / 1h -> seconds
    local v=$1 m=1
    case "$v" in
        *s) v=${v%s} ;;
        *m) v=${v%m}; m=60 ;;
        *h) v=${v%h}; m=3600 ;;
    esac
    [[ $v =~ ^[0-9]+$ && $v -gt 0 ]] || die "bad duration '$1' (use e.g. 90s, 3m)"
    echo $((v * m))
}
DURATION_S=$(to_seconds "${1:-3m}")
((DURATION_S <= 3600)) || die "a soak is bounded: at most 1h"
RATE=${SOAK_RATE:-200}
SIGN_IN=${SOAK_SIGN_IN:-oidc}
[[ $SIGN_IN == oidc || $SIGN_IN == dev ]] || die "SOAK_SIGN_IN is oidc or dev"
# The test OP keeps its grants, sessions and tokens in oidc-provider's in-memory store, an LRU of
# 1,000 to 2,000 records; each sign-in writes about eight. Sign-ins faster than that allows per token
# lifetime evict the load sessions' grants before they refresh, and the refresh then fails with
# invalid_grant: the OP forgot them, not portico.
if [[ $SIGN_IN == oidc ]]; then SIGN_IN_RATE=${SOAK_SIGN_IN_RATE:-2}; else SIGN_IN_RATE=${SOAK_SIGN_IN_RATE:-10}; fi
SIGN_IN_WORKERS=${SOAK_SIGN_IN_WORKERS:-4}
TOKEN_TTL=${SOAK_TOKEN_TTL:-30}
[[ $RATE =~ ^[0-9]+$ && $RATE -ge 1 && $RATE -le 5000 ]] || die "SOAK_RATE must be 1..5000"
[[ $SIGN_IN_WORKERS =~ ^[0-9]+$ && $SIGN_IN_WORKERS -le 16 ]] || die "SOAK_SIGN_IN_WORKERS must be 0..16"
[[ $SIGN_IN_RATE =~ ^[0-9]+$ && $SIGN_IN_RATE -ge 1 && $SIGN_IN_RATE -le 500 ]] || die "SOAK_SIGN_IN_RATE must be 1..500"
[[ $TOKEN_TTL =~ ^[0-9]+$ && $TOKEN_TTL -ge 10 ]] || die "SOAK_TOKEN_TTL must be at least 10 (seconds)"

# ---------------------------------------------------------------------------------------------------
# Processes we start, and cleanup: on any exit kill exactly those.
NAME=soak
KEEP=${SOAK_KEEP:-}
# shellcheck source=bench/processes.sh
source "$(dirname "${BASH_SOURCE[0]}")/processes.sh"

# ---------------------------------------------------------------------------------------------------
# Prerequisites.
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[[ -x $NGINX ]] || die "nginx is missing: scripts/ensure-debian-package.sh nginx nginx"
command -v redis-server >/dev/null || die "redis-server is missing: scripts/ensure-debian-package.sh redis-server redis-server"
command -v node >/dev/null || die "node is missing"
command -v curl >/dev/null || die "curl is missing"
[[ -d $ROOT/node_modules/oidc-provider ]] || die "the test OpenID Provider's packages are missing: npm ci"
command -v openssl >/dev/null || die "openssl is missing"

if [[ -n ${PORTICO_BIN:-} ]]; then
    PORTICO=$PORTICO_BIN
    [[ -x $PORTICO ]] || die "PORTICO_BIN=$PORTICO is not an executable"
else
    log "building portico (cargo build --release)"
    (cd "$ROOT" && cargo build --release --bin portico)
    PORTICO="$ROOT/target/release/portico"
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/portico-soak.XXXXXX")
mkdir -p "$WORK/www" "$WORK/nginx" "$WORK/redis" "$WORK/a" "$WORK/b"
awk 'BEGIN { line = "portico soak: a 1 KiB static body served by the upstream app.\n"
             while (length(body) < 1024) body = body line
             printf "%s", substr(body, 1, 1024) }' >"$WORK/www/file1k"

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
USED_PORTS=" "
free_port() { # prints a port nothing listens on and this script has not handed out yet
    local p
    for _ in $(seq 200); do
        p=$((20000 + RANDOM % 30000))
        [[ $USED_PORTS == *" $p "* ]] && continue
        port_open "$p" && continue
        USED_PORTS+="$p "
        echo "$p"
        return
    done
    die "no free port found"
}
LB_PORT=$(free_port); USED_PORTS+="$LB_PORT "
A_PORT=$(free_port); USED_PORTS+="$A_PORT "
B_PORT=$(free_port); USED_PORTS+="$B_PORT "
U_PORT=$(free_port); USED_PORTS+="$U_PORT "
R_PORT=$(free_port); USED_PORTS+="$R_PORT "
OP_PORT=$(free_port); USED_PORTS+="$OP_PORT "
BASE="http://127.0.0.1:$LB_PORT"
ISSUER="http://127.0.0.1:$OP_PORT"

wait_port() { # NAME PID PORT LOGFILE
    for _ in $(seq 300); do
        port_open "$3" && return
        kill -0 "$2" 2>/dev/null || { tail -n 20 "$4" >&2; die "$1 exited before listening"; }
        sleep 0.1
    done
    tail -n 20 "$4" >&2
    die "$1 did not listen on :$3 within 30 s"
}

# ---------------------------------------------------------------------------------------------------
# Redis, no persistence.
redis-server --port "$R_PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$WORK/redis" \
    >"$WORK/redis/redis.log" 2>&1 &
REDIS_PID=$!
PIDS+=("$REDIS_PID")
wait_port redis "$REDIS_PID" "$R_PORT" "$WORK/redis/redis.log"

# 20 users signing in and out, 4 more for the long-lived sessions of the proxied load.
ACCOUNTS=$(for i in $(seq -w 1 20); do printf '"user%s",' "$i"; done)
ACCOUNTS="[${ACCOUNTS%,}]"
LOAD_ACCOUNTS='["load1","load2","load3","load4"]'
OP_PID=""
if [[ $SIGN_IN == oidc ]]; then
    # The OP runs while its stdin is open: a fifo held by this shell.
    OP_OPTIONS=$(node -e '
    const [base, port, ttl, accounts, load] = process.argv.slice(1);
    const all = {};
    for (const id of [...JSON.parse(accounts), ...JSON.parse(load)]) {
      all[id] = { name: `Soak ${id}`, email: `${id}@acme.test`, groups: ["acme-eng"] };
    }
    console.log(JSON.stringify({
      port: Number(port),
      accessTokenTtl: Number(ttl),
      accounts: all,
      clients: [{
        client_id: "portico", client_secret: "portico-secret",
        redirect_uris: [`${base}/auth/callback`],
        post_logout_redirect_uris: [`${base}/auth/signed-out`],
        backchannel_logout_uri: `${base}/auth/backchannel-logout`,
      }],
    }));' "$BASE" "$OP_PORT" "$TOKEN_TTL" "$ACCOUNTS" "$LOAD_ACCOUNTS")
    mkfifo "$WORK/op.stdin"
    (cd "$ROOT" && exec node tests/support/op.mjs "$OP_OPTIONS" <"$WORK/op.stdin" >"$WORK/op.out" 2>"$WORK/op.log") &
    OP_PID=$!
    PIDS+=("$OP_PID")
    exec 3>"$WORK/op.stdin"
    wait_port "the OpenID Provider" "$OP_PID" "$OP_PORT" "$WORK/op.log"
fi

# ---------------------------------------------------------------------------------------------------
# portico: one config for both instances, each started with its own --listen.
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$WORK/signing.pem" 2>/dev/null
openssl rand -base64 32 >"$WORK/session.key"
if [[ $SIGN_IN == oidc ]]; then
    AUTH_YAML="      oidc: { issuer: \"$ISSUER\", client_id: portico, client_secret: portico-secret, scopes: [profile, email, groups] }"
else
    AUTH_YAML="      dev_sign_in:
        users:"
    for id in $(node -e 'console.log([...JSON.parse(process.argv[1]), ...JSON.parse(process.argv[2])].join(" "))' "$ACCOUNTS" "$LOAD_ACCOUNTS"); do
        AUTH_YAML+="
          - { id: $id, groups: [acme-eng] }"
    done
fi
cat >"$WORK/portico.yaml" <<YAML
version: 1
server:
  trusted_proxies: [127.0.0.1]
  signing_keys: [$WORK/signing.pem]
sessions:
  store: redis
  redis:
    url: redis://127.0.0.1:$R_PORT/0
    key_file: $WORK/session.key
tenants:
  acme:
    hosts: [127.0.0.1]
    public_origin: $BASE
    auth:
$AUTH_YAML
    roles:
      developer: { groups: [acme-eng] }
    apps:
      - { id: echo, access: { roles: [developer] }, upstream: "http://127.0.0.1:$U_PORT" }
YAML
"$PORTICO" check "$WORK/portico.yaml" >"$WORK/check.log" 2>&1 || { cat "$WORK/check.log" >&2; die "portico check rejected the config"; }

declare -A INSTANCE_PID
if [[ $SIGN_IN == oidc ]]; then READY_CODE=303; else READY_CODE=200; fi
for name in a b; do
    if [[ $name == a ]]; then port=$A_PORT; else port=$B_PORT; fi
    NO_COLOR=1 RUST_LOG=info "$PORTICO" serve --config "$WORK/portico.yaml" --listen "127.0.0.1:$port" \
        >"$WORK/$name/portico.log" 2>&1 &
    INSTANCE_PID[$name]=$!
    PIDS+=("$!")
    wait_port "portico $name" "${INSTANCE_PID[$name]}" "$port" "$WORK/$name/portico.log"
    # Discovery runs in the background: sign-in is ready when /auth/login redirects to the OP (or, with
    # dev sign-in, to the picker).
    for _ in $(seq 300); do
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$port/auth/login" || true)
        [[ $code == "$READY_CODE" ]] && break
        sleep 0.1
    done
    [[ $code == "$READY_CODE" ]] || { tail -n 20 "$WORK/$name/portico.log" >&2; die "sign-in at portico $name never became ready ($code)"; }
done

# ---------------------------------------------------------------------------------------------------
# nginx: the balancer (round-robin, keep-alive pool, the headers a deployment sets) and the upstream.
cat >"$WORK/nginx/nginx.conf" <<EOF
worker_processes 1;
master_process off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $WORK/nginx/client_body;
    proxy_temp_path $WORK/nginx/proxy;
    fastcgi_temp_path $WORK/nginx/fastcgi;
    uwsgi_temp_path $WORK/nginx/uwsgi;
    scgi_temp_path $WORK/nginx/scgi;
    upstream portico {
        server 127.0.0.1:$A_PORT;
        server 127.0.0.1:$B_PORT;
        keepalive 32;
    }
    server {
        listen 127.0.0.1:$LB_PORT;
        location / {
            proxy_pass http://portico;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            # \$http_host keeps the port (\$host drops it; portico compares Origin with Host).
            proxy_set_header Host \$http_host;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto \$scheme;
            proxy_set_header X-Forwarded-Host \$http_host;
        }
    }
    server {
        listen 127.0.0.1:$U_PORT;
        root $WORK/www;
    }
}
EOF
"$NGINX" -p "$WORK/nginx/" -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx/error.log" -g 'daemon off;' \
    >"$WORK/nginx/stdout.log" 2>&1 &
NGINX_PID=$!
PIDS+=("$NGINX_PID")
wait_port nginx "$NGINX_PID" "$LB_PORT" "$WORK/nginx/error.log"
wait_port "nginx upstream" "$NGINX_PID" "$U_PORT" "$WORK/nginx/error.log"

if [[ $SIGN_IN == oidc ]]; then SIGN_IN_TEXT="the real OP :$OP_PORT"; else SIGN_IN_TEXT="dev sign-in"; fi
log "portico $("$PORTICO" --version 2>/dev/null || echo '?') ×2 (:$A_PORT, :$B_PORT) behind nginx :$LB_PORT, Redis :$R_PORT, $SIGN_IN_TEXT"
log "soak for ${DURATION_S}s: $SIGN_IN_RATE sign-ins/s ($SIGN_IN_WORKERS workers), $RATE proxied req/s, access tokens expire every ${TOKEN_TTL}s"

# ---------------------------------------------------------------------------------------------------
# The load, bounded by its own deadline and by timeout.
LOAD_OPTIONS=$(cat <<EOF
{"base":"$BASE","issuer":"$ISSUER","sign_in":"$SIGN_IN","duration_s":$DURATION_S,"rate":$RATE,"sign_in_rate":$SIGN_IN_RATE,"sign_in_workers":$SIGN_IN_WORKERS,
 "report_every_s":15,"accounts":$ACCOUNTS,"load_accounts":$LOAD_ACCOUNTS,"redis_port":$R_PORT,
 "pids":{"portico a":${INSTANCE_PID[a]},"portico b":${INSTANCE_PID[b]},"nginx":$NGINX_PID,"redis":$REDIS_PID}}
EOF
)
rc=0
timeout --kill-after=5 $((DURATION_S + 60)) node "$ROOT/bench/soak-load.mjs" "$LOAD_OPTIONS" || rc=$?

# What the instances logged at WARN or ERROR (none expected beyond start-up notices).
for name in a b; do
    warnings=$(grep -c ' WARN ' "$WORK/$name/portico.log" || true)
    errors=$(grep -c ' ERROR ' "$WORK/$name/portico.log" || true)
    log "portico $name logged $warnings WARN and $errors ERROR lines"
    grep -E ' (WARN|ERROR) ' "$WORK/$name/portico.log" | sed -E 's/^[^ ]+ +//' | sort | uniq -c | sort -rn | head -n 5 >&2 || true
done
((rc == 0)) || die "the soak saw errors (exit $rc): see above"
log "no errors"

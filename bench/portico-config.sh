# Sourced by bench/run.sh and bench/instructions.sh: the one config both measure, so their figures
# speak of the same request path (dev sign-in tenant, role `developer`, one app proxied upstream).
# App `assets` is the same upstream with `cache: on`, for run.sh's cached-asset rows (the upstream
# marks `/cached/…` `public, max-age`); only with a fourth argument `cache`, so instructions.sh can
# still compare with builds older than the response cache.
# `server.workers` is PORTICO_BENCH_WORKERS (default 1: the proxy has one core to itself, like nginx's
# `worker_processes 1`); set it empty to compare with builds older than `workers:`, which refuse it.

# portico_bench_config LISTEN_PORT UPSTREAM_PORT [SESSIONS_YAML] [cache]: prints the config YAML; the
# third argument is a top-level `sessions:` section (the Redis store's), else sessions are in memory.
portico_bench_config() {
    local PORTICO_BENCH_WORKERS=${PORTICO_BENCH_WORKERS-1}
    cat <<YAML
version: 1
server:
  listen: 127.0.0.1:$1
${PORTICO_BENCH_WORKERS:+  workers: $PORTICO_BENCH_WORKERS}
${3:-}
default_tenant: bench
tenants:
  bench:
    hosts: [127.0.0.1:$1]
    auth: { dev_sign_in: { users: [{ id: bench, groups: [eng] }] } }
    roles:
      developer: { groups: [eng] }
    apps:
      - { id: echo, access: { roles: [developer] }, upstream: http://127.0.0.1:$2 }
YAML
    # The WebSocket echo upstream of run.sh's WebSocket rows (examples/ws_echo.rs), when it runs one.
    if [[ -n ${PORTICO_BENCH_WS_PORT:-} ]]; then
        echo "      - { id: ws, access: { roles: [developer] }, upstream: http://127.0.0.1:$PORTICO_BENCH_WS_PORT }"
    fi
    if [[ ${4:-} == cache ]]; then
        echo "      - { id: assets, access: { roles: [developer] }, upstream: http://127.0.0.1:$2, cache: on }"
    fi
}

# Sourced by bench/run.sh and bench/instructions.sh: the one config both measure, so their figures
# speak of the same request path (dev sign-in tenant, role `developer`, one app proxied upstream).

# portico_bench_config LISTEN_PORT UPSTREAM_PORT: prints the config YAML.
portico_bench_config() {
    cat <<YAML
version: 1
server:
  listen: 127.0.0.1:$1
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
}

# Sourced by bench/run.sh and bench/soak.sh: the processes a script starts and the cleanup that kills
# exactly those on any exit (success, failure, Ctrl-C, TERM), then removes the work dir unless the run
# failed or the caller asked to keep it.
#
# Before sourcing, set NAME (the prefix of messages) and KEEP (non-empty: keep the work dir). Then
# append each started process's pid to PIDS and set WORK to the work dir.

PIDS=()
WORK=""
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    local pid
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    # Up to 5 s for a graceful stop (portico drains; Redis and nginx exit at once), then KILL.
    for _ in $(seq 50); do
        local alive=0
        for pid in "${PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        ((alive)) || break
        sleep 0.1
    done
    for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [[ -n $WORK && -d $WORK ]]; then
        if [[ $rc -eq 0 && -z $KEEP ]]; then
            rm -rf "$WORK"
        else
            echo "$NAME: work dir kept (configs, logs): $WORK" >&2
        fi
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'echo "$NAME: interrupted" >&2; exit 130' INT
trap 'echo "$NAME: terminated" >&2; exit 143' TERM

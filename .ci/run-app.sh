#!/usr/bin/env bash
# Runs the API and one arq worker side by side (used by `make run`, inside
# .ci/with-services.sh).  Each runs in its own process group; Ctrl-C / SIGTERM,
# or either of them exiting, stops both (children included) and waits for them.
#
#   API_HOST / API_PORT  where uvicorn listens (default 127.0.0.1:8000)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

API_HOST="${API_HOST:-127.0.0.1}"
API_PORT="${API_PORT:-8000}"
VENV="$ROOT/.venv"
[[ -x "$VENV/bin/uvicorn" ]] || die "$VENV/bin/uvicorn not found: run 'make venv'"

pids=()
names=()
cleanup() {
    local status=$?
    trap - EXIT INT TERM HUP
    if ((${#pids[@]})); then
        log "stopping ${names[*]}"
        stop_groups 20 "${pids[@]}"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

if tcp_open "$API_PORT"; then
    die "port $API_PORT is already in use (another 'make run'?); set API_PORT=... to use another one"
fi

start_group "$VENV/bin/uvicorn" app.main:app --host "$API_HOST" --port "$API_PORT" --ws-per-message-deflate false
pids+=("$START_PID"); names+=("api(pid $START_PID)")
start_group "$VENV/bin/python" -m workers
pids+=("$START_PID"); names+=("worker(pid $START_PID)")

log "API: http://$API_HOST:$API_PORT/graphql (GraphiQL)  |  worker: python -m workers  |  Ctrl-C stops everything"

# Returns when the first of them exits, or early when a trapped signal arrives.
set +e
wait -n "${pids[@]}"
status=$?
set -e
log "a process exited with status $status; stopping the rest"
((status != 0)) || status=1   # the API and the worker are not meant to exit by themselves
exit "$status"

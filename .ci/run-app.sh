#!/usr/bin/env bash
# Runs the API and one arq worker side by side (used by `make run`, inside
# .ci/with-services.sh).  Each runs in its own process group; Ctrl-C, SIGTERM or
# SIGHUP (to this script or its whole process group), or either of them exiting,
# stops both (children included) and waits for them.  Before they start, on an
# empty database, it creates a local user `admin` and prints its token once
# (python -m app ensure-admin).
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
    # Ignore further signals while stopping (a signal to the whole process group reaches this script twice:
    # directly and forwarded by with-services.sh); with the default action the second one killed it here and
    # left uvicorn, in its own process group, running.
    trap '' INT TERM HUP
    trap - EXIT
    if ((${#pids[@]})); then
        log "stopping ${names[*]}"
        stop_groups 20 "${pids[@]}"
    fi
    exit "$status"
}
trap cleanup EXIT
# Each first ignores further signals, then exits into cleanup: a second signal arriving while the EXIT trap has
# only begun (one to the whole process group reaches a script directly and forwarded) would otherwise run
# `exit` inside it and abandon the clean-up.
trap "trap '' INT TERM HUP; exit 130" INT
trap "trap '' INT TERM HUP; exit 143" TERM
trap "trap '' INT TERM HUP; exit 129" HUP

if tcp_open "$API_PORT"; then
    die "port $API_PORT is already in use (another 'make run'?); set API_PORT=... to use another one"
fi

graphiql_url="http://$API_HOST:$API_PORT/graphql"
# A failure here (the database unreachable) is reported in one line and does not stop the API from starting.
"$VENV/bin/python" -m app ensure-admin --graphiql-url "$graphiql_url" || log "could not check for a first user (see above)"

# Graceful shutdown is bounded: open GraphQL subscriptions would otherwise hold it.
start_group "$VENV/bin/uvicorn" app.main:app --host "$API_HOST" --port "$API_PORT" --ws-per-message-deflate false \
    --timeout-graceful-shutdown 5
pids+=("$START_PID"); names+=("api(pid $START_PID)")
start_group "$VENV/bin/python" -m workers
pids+=("$START_PID"); names+=("worker(pid $START_PID)")

log "API: $graphiql_url (GraphiQL)  |  worker: python -m workers  |  Ctrl-C stops everything"

# Returns when the first of them exits, or early when a trapped signal arrives.
set +e
wait -n "${pids[@]}"
status=$?
set -e
log "a process exited with status $status; stopping the rest"
((status != 0)) || status=1   # the API and the worker are not meant to exit by themselves
exit "$status"

#!/usr/bin/env bash
# Usage: .ci/with-services.sh [--ephemeral | --persist] [--] CMD [ARGS...]
#
# Runs CMD with MongoDB and Redis available, then stops whatever it started
# (also on failure, Ctrl-C or SIGTERM) and exits with CMD's status.
#
#   MONGODB_URL set   -> used as is;  unset -> FerretDB (SQLite backend) on a free port
#   REDIS_URL   set   -> used as is;  unset -> redis-server on a free port
#
# --ephemeral (default): everything lives in a throwaway .data/test-<pid>/,
#     removed afterwards (KEEP_TEST_DATA=1 keeps it); WORKSPACE_ROOT is always
#     inside it, so tests start from empty databases and workspaces.
# --persist: data in .data/ferretdb/ and .data/redis/ (AOF) kept between runs;
#     WORKSPACE_ROOT defaults to .data/workspaces/.
#
# Exports MONGODB_URL, REDIS_URL, WORKSPACE_ROOT and DVC_NO_ANALYTICS=1.
# The binaries must already be there: run .ci/tools.sh (make tools) first.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

mode=ephemeral
while (($#)); do
    case "$1" in
        --ephemeral) mode=ephemeral; shift ;;
        --persist) mode=persist; shift ;;
        --) shift; break ;;
        -*) die "unknown option $1 (usage: $0 [--ephemeral|--persist] [--] CMD...)" ;;
        *) break ;;
    esac
done
(($#)) || die "usage: $0 [--ephemeral|--persist] [--] CMD [ARGS...]"

START_TIMEOUT="${SERVICE_START_TIMEOUT:-30}"

if [[ "$mode" == ephemeral ]]; then
    base="$DATA_DIR/test-$$"
else
    base="$DATA_DIR"
fi
logs="$base/logs"

service_pids=()   # process-group leaders we started
service_names=()

cleanup() {
    local status=$?
    trap - EXIT INT TERM HUP
    if ((${#service_pids[@]})); then
        log "stopping ${service_names[*]}"
        stop_groups 15 "${service_pids[@]}"
        rm -f "$logs"/*.pid
    fi
    if [[ "$mode" == ephemeral && -d "$base" ]]; then
        if [[ -n "${KEEP_TEST_DATA:-}" ]]; then
            log "KEEP_TEST_DATA is set: keeping ${base#"$ROOT"/}"
        else
            rm -rf "$base"
        fi
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# wait_ready NAME PID LOG CHECK...: poll CHECK until it succeeds, the process
# dies, or the deadline passes (then show the log tail and fail).
wait_ready() {
    local name="$1" pid="$2" logfile="$3"; shift 3
    local deadline=$((SECONDS + START_TIMEOUT))
    until "$@" >/dev/null 2>&1; do
        if ! alive "$pid"; then
            log_tail "$logfile"
            die "$name exited during start-up (log: ${logfile#"$ROOT"/})"
        fi
        if ((SECONDS >= deadline)); then
            log_tail "$logfile"
            die "$name not ready after ${START_TIMEOUT}s (log: ${logfile#"$ROOT"/})"
        fi
        sleep 0.1
    done
}

# In --persist mode only one instance may use .data/ at a time.  Leftover
# services of a run that was SIGKILLed are recognised by their pid files.
take_persist_lock() {
    mkdir -p "$DATA_DIR"
    exec 9>"$DATA_DIR/.lock"
    flock -n 9 || die "another 'make run' is already using ${DATA_DIR#"$ROOT"/}/ (lock ${DATA_DIR#"$ROOT"/}/.lock)"
    local pidfile pid
    for pidfile in "$logs"/*.pid; do
        [[ -e "$pidfile" ]] || continue
        pid="$(cat "$pidfile" 2>/dev/null || true)"
        if [[ "$pid" =~ ^[0-9]+$ ]] && alive "$pid" &&
            grep -qE 'ferretdb|redis-server' "/proc/$pid/cmdline" 2>/dev/null; then
            log "stopping leftover $(basename "$pidfile" .pid) (pid $pid) from an interrupted run"
            kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
            for _ in $(seq 50); do alive "$pid" || break; sleep 0.1; done
            kill -KILL -- "-$pid" 2>/dev/null || true
        fi
        rm -f "$pidfile"
    done
}

need_mongo=0; need_redis=0
[[ -n "${MONGODB_URL:-}" ]] || need_mongo=1
[[ -n "${REDIS_URL:-}" ]] || need_redis=1

mkdir -p "$logs"
if [[ "$mode" == persist ]] && ((need_mongo || need_redis)); then
    take_persist_lock
fi

ports=()
if ((need_mongo + need_redis)); then
    mapfile -t ports < <(free_ports $((need_mongo + need_redis)))
    ((${#ports[@]} == need_mongo + need_redis)) || die "could not pick free ports with python3"
fi

if ((need_mongo)); then
    [[ -x "$FERRETDB_BIN" ]] || die "${FERRETDB_BIN#"$ROOT"/} is missing: run 'make tools' (or set MONGODB_URL)"
    port="${ports[0]}"; ports=("${ports[@]:1}")
    dir="$base/ferretdb"; logfile="$logs/ferretdb.log"
    mkdir -p "$dir"
    START_LOG="$logfile" start_group "$FERRETDB_BIN" \
        --handler=sqlite --sqlite-url="file:$dir/" \
        --listen-addr="127.0.0.1:$port" --debug-addr=- \
        --state-dir="$dir" --telemetry=disable \
        --log-level=warn --log-format=text 9>&-
    service_pids+=("$START_PID"); service_names+=(ferretdb)
    echo "$START_PID" >"$logs/ferretdb.pid"
    wait_ready "FerretDB" "$START_PID" "$logfile" tcp_open "$port"
    export MONGODB_URL="mongodb://127.0.0.1:$port/"
    log "FerretDB $FERRETDB_VERSION (SQLite in ${dir#"$ROOT"/}) at $MONGODB_URL"
fi

if ((need_redis)); then
    command -v redis-server >/dev/null || die "redis-server is missing: run 'make tools' (or set REDIS_URL)"
    port="${ports[0]}"; ports=("${ports[@]:1}")
    dir="$base/redis"; logfile="$logs/redis.log"
    mkdir -p "$dir"
    if [[ "$mode" == persist ]]; then
        persistence=(--save "" --appendonly yes)
    else
        persistence=(--save "" --appendonly no)
    fi
    START_LOG="$logfile" start_group redis-server \
        --port "$port" --bind 127.0.0.1 --dir "$dir" "${persistence[@]}" \
        --daemonize no --logfile "" 9>&-
    service_pids+=("$START_PID"); service_names+=(redis-server)
    echo "$START_PID" >"$logs/redis.pid"
    wait_ready "redis-server" "$START_PID" "$logfile" bash -c \
        '[[ "$(redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null)" == PONG ]]' _ "$port"
    export REDIS_URL="redis://127.0.0.1:$port/0"
    log "redis-server ($(redis-server --version | awk '{print $3}'), data in ${dir#"$ROOT"/}) at $REDIS_URL"
fi

if [[ "$mode" == ephemeral ]]; then
    export WORKSPACE_ROOT="$base/workspaces"
else
    export WORKSPACE_ROOT="${WORKSPACE_ROOT:-$DATA_DIR/workspaces}"
fi
mkdir -p "$WORKSPACE_ROOT"
export DVC_NO_ANALYTICS=1

# CMD runs as a child that keeps the terminal: same process group (so Ctrl-C
# reaches it directly) and stdin kept (pdb works).  Background jobs of a
# script start with SIGINT ignored, hence `env --default-signal`.  We wait
# for it interruptibly: SIGTERM/SIGHUP sent to this script are forwarded to it;
# SIGINT is not (Ctrl-C already reached it).  The services are stopped only
# after CMD has exited.
received=""
forward() {
    received="$1"
    [[ "$1" == INT ]] || kill -s "$1" "$child" 2>/dev/null || true
}
if env --default-signal=INT true 2>/dev/null; then
    env --default-signal=INT,QUIT "$@" <&0 9>&- &
else
    "$@" <&0 9>&- &
fi
child=$!
trap 'forward INT' INT
trap 'forward TERM' TERM
trap 'forward HUP' HUP
while alive "$child"; do
    wait "$child" || true
done
set +e
wait "$child"
status=$?
set -e
case "$received" in
    INT) status=130 ;; TERM) status=143 ;; HUP) status=129 ;;
esac
exit "$status"

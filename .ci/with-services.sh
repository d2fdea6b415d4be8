#!/usr/bin/env bash
# Usage: .ci/with-services.sh [--ephemeral | --persist] [--] CMD [ARGS...]
#
# Runs CMD with MongoDB and Redis available, then stops whatever it started
# (also on failure, Ctrl-C or SIGTERM) and exits with CMD's status.
#
#   MONGODB_URL    set -> used as is (no FerretDB, no PostgreSQL);
#                  unset -> FerretDB (PostgreSQL handler) on a free port of 127.0.0.1
#   POSTGRESQL_URL set -> FerretDB stores its data there;
#                  unset -> a PostgreSQL cluster of our own (Debian's postgresql) on a free port of 127.0.0.1,
#                           run as the unprivileged `postgres` user when we are root (PostgreSQL refuses root),
#                           with .ci/postgres-gin-companions.sql applied (GIN indexes FerretDB's filters can use)
#   REDIS_URL      set -> used as is;  unset -> redis-server on a free port
#
# --ephemeral (default): everything lives in a throwaway .data/test-<pid>/,
#     removed afterwards (KEEP_TEST_DATA=1 keeps it); WORKSPACE_ROOT is always
#     inside it, so tests start from empty databases and workspaces. Its PostgreSQL
#     cluster runs without fsync (a crash loses nothing worth keeping).
# --persist: data in .data/postgres/ and .data/redis/ (AOF) kept between runs;
#     WORKSPACE_ROOT defaults to .data/workspaces/. The URLs in use are written to
#     .data/services.env while CMD runs (`python -m app` reads them there).
#
# Exports MONGODB_URL, REDIS_URL, WORKSPACE_ROOT and DVC_NO_ANALYTICS=1 (and POSTGRESQL_URL when it started one).
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

service_pids=()   # process-group leaders we started (PostgreSQL apart: it stops last)
service_names=()
postgres_pid=""
postgres_dir=""
wrote_services_file=0

cleanup() {
    local status=$?
    # Ignore (not default) further signals: a second SIGTERM/SIGHUP (a process manager, a closed terminal hits
    # the whole group) must not kill this script halfway through stopping what it started.
    trap '' INT TERM HUP
    trap - EXIT
    ((wrote_services_file)) && rm -f "$SERVICES_FILE"
    if ((${#service_pids[@]})); then
        log "stopping ${service_names[*]}"
        stop_groups 15 "${service_pids[@]}"
    fi
    if [[ -n "$postgres_pid" ]]; then
        # SIGINT is PostgreSQL's fast shutdown (SIGTERM would wait for every client to disconnect).
        log "stopping postgres"
        STOP_SIGNAL=INT stop_groups 30 "$postgres_pid"
    fi
    rm -f "$logs"/*.pid
    if [[ "$mode" == ephemeral && -n "$postgres_dir" && "$postgres_dir" != "$base"/* ]]; then
        rm -rf "$postgres_dir" "$postgres_dir.password"
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
# Each first ignores further signals, then exits into cleanup: a second signal arriving while the EXIT trap has
# only begun (one to the whole process group reaches a script directly and forwarded) would otherwise run
# `exit` inside it and abandon the clean-up.
trap "trap '' INT TERM HUP; exit 130" INT
trap "trap '' INT TERM HUP; exit 143" TERM
trap "trap '' INT TERM HUP; exit 129" HUP

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
            grep -qE 'ferretdb|redis-server|postgres' "/proc/$pid/cmdline" 2>/dev/null; then
            log "stopping leftover $(basename "$pidfile" .pid) (pid $pid) from an interrupted run"
            kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
            for _ in $(seq 50); do alive "$pid" || break; sleep 0.1; done
            kill -KILL -- "-$pid" 2>/dev/null || true
        fi
        rm -f "$pidfile"
    done
}

# start_postgresql PORT DIR: our own cluster in DIR (created the first time), listening on 127.0.0.1:PORT only
# (no Unix socket), password-protected; exports POSTGRESQL_URL and sets postgres_pid.
start_postgresql() {
    local port="$1" dir="$2" pg_bin pg_user="" password_file password logfile="$logs/postgres.log"
    local -a as_user=() tuning=() initdb_opts=()
    pg_bin="$(find_pg_bin)" || die "PostgreSQL's initdb/postgres not found: run 'make tools' (or set POSTGRESQL_URL or MONGODB_URL)"
    if [[ "$(id -u)" == 0 ]]; then
        # PostgreSQL refuses to run as root: run it as the unprivileged user Debian's package creates.
        pg_user="${POSTGRES_RUN_USER:-postgres}"
        if ! id "$pg_user" >/dev/null 2>&1; then
            useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$pg_user" ||
                die "could not create the system user $pg_user to run PostgreSQL as"
        fi
        as_user=(setpriv --reuid="$(id -u "$pg_user")" --regid="$(id -g "$pg_user")" --init-groups --)
        mkdir -p "$dir"
        if ! "${as_user[@]}" test -x "$dir/.."; then
            # A checkout under a private home (e.g. /root) is not reachable for that user: keep the cluster
            # where it is, outside the checkout.
            dir="${TMPDIR:-/var/tmp}/dvc-pipelines-postgres-$(printf '%s' "$dir" | sha256sum | cut -c1-12)"
            log "the $pg_user user cannot reach ${2#"$ROOT"/}; the PostgreSQL cluster lives in $dir instead"
            mkdir -p "$dir"
        fi
        chown "$pg_user:" "$dir"
    fi
    mkdir -p "$dir" && chmod 700 "$dir"
    postgres_dir="$dir"
    password_file="$dir.password"
    if [[ ! -s "$dir/PG_VERSION" ]]; then
        log "creating a PostgreSQL cluster in ${dir#"$ROOT"/} ($("$pg_bin/postgres" --version))"
        (umask 077 && python3 -c 'import secrets; print(secrets.token_urlsafe(24))' >"$password_file")
        [[ -n "$pg_user" ]] && chown "$pg_user:" "$password_file"
        [[ "$mode" == ephemeral ]] && initdb_opts+=(--no-sync)
        "${as_user[@]}" "$pg_bin/initdb" -D "$dir" -U ferretdb --pwfile="$password_file" \
            --auth=scram-sha-256 -E UTF8 --locale=C "${initdb_opts[@]}" >"$logs/initdb.log" 2>&1 || {
            log_tail "$logs/initdb.log"
            die "initdb failed (log: ${logs#"$ROOT"/}/initdb.log)"
        }
    fi
    [[ -s "$password_file" ]] || die "$password_file is missing: remove ${dir#"$ROOT"/} to start over (its data is lost)"
    password="$(cat "$password_file")"
    if [[ "$mode" == ephemeral ]]; then
        # Throwaway test data: durability buys nothing and costs every commit a disk flush.
        tuning=(-c fsync=off -c synchronous_commit=off -c full_page_writes=off)
    fi
    START_LOG="$logfile" start_group "${as_user[@]}" "$pg_bin/postgres" -D "$dir" -p "$port" \
        -c listen_addresses=127.0.0.1 -c unix_socket_directories= -c max_connections=200 \
        "${tuning[@]}" 9>&-
    postgres_pid="$START_PID"
    echo "$START_PID" >"$logs/postgres.pid"
    wait_ready "PostgreSQL" "$START_PID" "$logfile" "$pg_bin/pg_isready" -q -h 127.0.0.1 -p "$port"
    export POSTGRESQL_URL="postgres://ferretdb:$password@127.0.0.1:$port/postgres"
    # GIN companions of FerretDB's btree indexes, so that its pushed-down filters are index reads (the file says
    # why). Idempotent: applied on every start, so a cluster created before the file gets it too.
    PGPASSWORD="$password" "$pg_bin/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U ferretdb -d postgres \
        -f "$ROOT/.ci/postgres-gin-companions.sql" >"$logs/postgres-setup.log" 2>&1 || {
        log_tail "$logs/postgres-setup.log"
        die "applying .ci/postgres-gin-companions.sql failed (log: ${logs#"$ROOT"/}/postgres-setup.log)"
    }
    log "PostgreSQL $("$pg_bin/postgres" --version | awk '{print $3}') (data in ${dir#"$ROOT"/}${pg_user:+, run as $pg_user}) at 127.0.0.1:$port"
}

need_mongo=0; need_redis=0; need_postgres=0
[[ -n "${MONGODB_URL:-}" ]] || need_mongo=1
[[ -n "${REDIS_URL:-}" ]] || need_redis=1
((need_mongo)) && [[ -z "${POSTGRESQL_URL:-}" ]] && need_postgres=1

mkdir -p "$logs"
if [[ "$mode" == persist ]] && ((need_mongo || need_redis)); then
    take_persist_lock
fi

ports=()
if ((need_mongo + need_redis + need_postgres)); then
    mapfile -t ports < <(free_ports $((need_mongo + need_redis + need_postgres)))
    ((${#ports[@]} == need_mongo + need_redis + need_postgres)) || die "could not pick free ports with python3"
fi

if ((need_postgres)); then
    port="${ports[0]}"; ports=("${ports[@]:1}")
    start_postgresql "$port" "$base/postgres"
fi

if ((need_mongo)); then
    [[ -x "$FERRETDB_BIN" ]] || die "${FERRETDB_BIN#"$ROOT"/} is missing: run 'make tools' (or set MONGODB_URL)"
    port="${ports[0]}"; ports=("${ports[@]:1}")
    dir="$base/ferretdb"; logfile="$logs/ferretdb.log"
    mkdir -p "$dir"
    if compgen -G "$dir/*.sqlite" >/dev/null; then
        log "note: ${dir#"$ROOT"/}/*.sqlite are left from the former SQLite-backed stack and no longer used; delete them when done"
    fi
    # The PostgreSQL URL (it holds a password) goes through the environment, not the command line.
    FERRETDB_POSTGRESQL_URL="$POSTGRESQL_URL" START_LOG="$logfile" start_group "$FERRETDB_BIN" \
        --handler=postgresql \
        --listen-addr="127.0.0.1:$port" --debug-addr=- \
        --state-dir="$dir" --telemetry=disable \
        --log-level=warn --log-format=text 9>&-
    service_pids+=("$START_PID"); service_names+=(ferretdb)
    echo "$START_PID" >"$logs/ferretdb.pid"
    wait_ready "FerretDB" "$START_PID" "$logfile" tcp_open "$port"
    export MONGODB_URL="mongodb://127.0.0.1:$port/"
    log "FerretDB $FERRETDB_VERSION (PostgreSQL handler) at $MONGODB_URL"
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

if [[ "$mode" == persist ]]; then
    # For `python -m app ...` in another terminal (app/settings.py reads this file when its variables are unset).
    (
        umask 077
        {
            printf '# Written by .ci/with-services.sh (make run) while it runs; removed when it stops.\n'
            printf 'MONGODB_URL=%s\nREDIS_URL=%s\nWORKSPACE_ROOT=%s\n' "$MONGODB_URL" "$REDIS_URL" "$WORKSPACE_ROOT"
            [[ -z "${MONGODB_DATABASE:-}" ]] || printf 'MONGODB_DATABASE=%s\n' "$MONGODB_DATABASE"
        } >"$SERVICES_FILE.tmp"
    )
    mv -f "$SERVICES_FILE.tmp" "$SERVICES_FILE"
    wrote_services_file=1
fi

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

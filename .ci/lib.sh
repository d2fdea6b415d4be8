# shellcheck shell=bash
# Helpers shared by the .ci/ scripts.  Source it; do not execute it.

# Repository root (absolute), whatever the caller's working directory.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# STACK_DATA_DIR moves the local services' data elsewhere (the tests of `make run` use a scratch one).
DATA_DIR="${STACK_DATA_DIR:-$ROOT/.data}"
BIN_DIR="$ROOT/.data/bin"
# Where `make run` writes the URLs of the services it started; `python -m app` (app/settings.py) reads it.
SERVICES_FILE="$DATA_DIR/services.env"
# GraphiQL's pinned browser assets (.ci/graphiql-assets.sh), served by the API from here (app/graphiql.py).
GRAPHIQL_ASSETS_DIR="$ROOT/.data/graphiql"

FERRETDB_VERSION="v1.24.2"
FERRETDB_MODULE="github.com/FerretDB/FerretDB"
FERRETDB_BIN="$BIN_DIR/ferretdb"

# Never fails: after a SIGHUP the terminal may be gone, and a failed write must not abort a clean-up.
log() { printf '[%s] %s\n' "$(basename "$0")" "$*" >&2 2>/dev/null || true; }
die() { printf '[%s] ERROR: %s\n' "$(basename "$0")" "$*" >&2; exit 1; }

# The directory of PostgreSQL's server programs (initdb, postgres): $PG_BIN, Debian's newest
# /usr/lib/postgresql/*/bin, or the directory of `initdb` on PATH.
find_pg_bin() {
    local cand
    if [[ -n "${PG_BIN:-}" && -x "$PG_BIN/initdb" ]]; then
        printf '%s\n' "$PG_BIN"
        return 0
    fi
    for cand in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k4 -V -r); do
        if [[ -x "$cand/initdb" && -x "$cand/postgres" ]]; then
            printf '%s\n' "$cand"
            return 0
        fi
    done
    cand="$(command -v initdb 2>/dev/null || true)"
    if [[ -n "$cand" && -x "$(dirname "$cand")/postgres" ]]; then
        dirname "$cand"
        return 0
    fi
    return 1
}

# The Go toolchain: $GO, `go` on PATH, or the standard tarball location.
find_go() {
    local cand
    for cand in "${GO:-}" "$(command -v go 2>/dev/null || true)" /usr/local/go/bin/go; do
        if [[ -n "$cand" && -x "$cand" ]]; then
            printf '%s\n' "$cand"
            return 0
        fi
    done
    return 1
}

# Print N distinct free TCP ports on 127.0.0.1 (one per line).  All sockets are
# held open until every port is chosen, so the ports are distinct.
free_ports() {
    python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    socks.append(s)
for s in socks:
    print(s.getsockname()[1])
    s.close()
EOF
}

# tcp_open PORT: true when something accepts connections on 127.0.0.1:PORT.
tcp_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Print the last lines of a log file, indented, to stderr.
log_tail() {
    local file="$1" lines="${2:-40}"
    if [[ -s "$file" ]]; then
        printf -- '----- last %s lines of %s -----\n' "$lines" "$file" >&2
        tail -n "$lines" "$file" | sed 's/^/  | /' >&2
        printf -- '-----\n' >&2
    else
        printf -- '(log %s is empty or missing)\n' "$file" >&2
    fi
}

# Start "$@" in the background in its own session / process group (so a
# terminal Ctrl-C does not hit it directly and we can stop it, children
# included, with `kill -- -PGID`).  Sets START_PID (== its process group id).
# stdout/stderr go to $START_LOG when set.
start_group() {
    if [[ -n "${START_LOG:-}" ]]; then
        setsid "$@" >>"$START_LOG" 2>&1 &
    else
        setsid "$@" &
    fi
    START_PID=$!
}

alive() { kill -0 "$1" 2>/dev/null; }

# stop_groups TIMEOUT PID...: $STOP_SIGNAL (default TERM) to each process group, wait up to TIMEOUT
# seconds for the leaders to exit, then SIGKILL what is left; reap them.
stop_groups() {
    local timeout="$1"; shift
    local pid left deadline=$((SECONDS + timeout))
    for pid in "$@"; do
        kill -"${STOP_SIGNAL:-TERM}" -- "-$pid" 2>/dev/null || kill -"${STOP_SIGNAL:-TERM}" "$pid" 2>/dev/null || true
    done
    while :; do
        left=0
        for pid in "$@"; do alive "$pid" && left=1; done
        ((left)) || break
        if ((SECONDS >= deadline)); then
            for pid in "$@"; do
                if alive "$pid"; then
                    log "pid $pid did not stop within ${timeout}s; killing it"
                    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
                fi
            done
            break
        fi
        sleep 0.1
    done
    # Also kill any stragglers left in the groups (children of the leaders).
    for pid in "$@"; do kill -KILL -- "-$pid" 2>/dev/null || true; done
    for pid in "$@"; do wait "$pid" 2>/dev/null || true; done
}

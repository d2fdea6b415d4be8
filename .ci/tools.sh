#!/usr/bin/env bash
# Make sure the binaries needed for local services exist:
#   - FerretDB (built from source into .data/bin/ferretdb)  unless MONGODB_URL is set
#   - PostgreSQL's server programs (Debian's postgresql, installed with apt-get)  unless MONGODB_URL or
#     POSTGRESQL_URL is set: FerretDB stores its data there
#   - GraphiQL's browser assets (npm packages at pinned versions, .ci/graphiql-assets.sh) into .data/graphiql
#   - redis-server (from PATH, else installed with apt-get)  unless REDIS_URL is set
#   - bubblewrap (Debian's bubblewrap, /usr/bin/bwrap): the sandbox every stage command runs in (workers/sandbox/)
#   - slirp4netns and iproute2 (/usr/bin/slirp4netns, /usr/bin/ip): the network of stages whose project's owner
#     allowed one (workers/sandbox/network.py); without them such stages fail with the reason
#   - a C compiler for the worker's stage shell (cc, else gcc installed with apt-get): the worker compiles
#     workers/execution/stage_shell.c at start-up and cannot run a stage without it
# With --browser also Debian's chromium (the browser tests in tests/browser/ drive it through Playwright).
# Idempotent and quick when everything is already there.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ferretdb_ok() {
    local out
    [[ -x "$FERRETDB_BIN" ]] || return 1
    out="$("$FERRETDB_BIN" --version 2>/dev/null)" || return 1
    grep -qx "version: $FERRETDB_VERSION" <<<"$out"
}

# go install ...@version does not work here (the proxy refuses the module's
# @v/list, which `go install` needs for its deprecation check) and the module
# zip lacks build/version/version.txt (a plain build panics at start-up), so:
# download the module, copy it somewhere writable, write version.txt, build.
build_ferretdb() {
    local go tmp json src
    go="$(find_go)" || die "Go is needed to build FerretDB $FERRETDB_VERSION (the local MongoDB-compatible server) but was not found.
  Install Go >= 1.24 (e.g. the tarball from https://go.dev/dl/ into /usr/local/go, so /usr/local/go/bin/go exists; or set GO=/path/to/go),
  or set MONGODB_URL=mongodb://HOST:PORT to use an existing MongoDB server instead."
    log "building FerretDB $FERRETDB_VERSION with $go ($("$go" env GOVERSION)); first time takes a few minutes"
    tmp="$(mktemp -d "${TMPDIR:-/tmp}/ferretdb-build.XXXXXX")"
    # shellcheck disable=SC2064  # expand $tmp now
    trap "rm -rf '$tmp'" EXIT
    json="$(cd "$tmp" && "$go" mod download -json "$FERRETDB_MODULE@$FERRETDB_VERSION")" || {
        printf '%s\n' "$json" >&2
        die "go mod download $FERRETDB_MODULE@$FERRETDB_VERSION failed (is the Go module proxy reachable? GOPROXY=$("$go" env GOPROXY))"
    }
    src="$(printf '%s' "$json" | python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')"
    [[ -d "$src" ]] || die "go mod download did not give a module directory: $json"
    cp -R "$src" "$tmp/src"
    chmod -R u+w "$tmp/src"
    printf '%s\n' "$FERRETDB_VERSION" >"$tmp/src/build/version/version.txt"
    (cd "$tmp/src" && CGO_ENABLED=0 "$go" build -buildvcs=false -trimpath -o "$tmp/ferretdb" ./cmd/ferretdb) ||
        die "building FerretDB failed (see the go output above)"
    mkdir -p "$BIN_DIR"
    mv -f "$tmp/ferretdb" "$FERRETDB_BIN"
    ferretdb_ok || die "the FerretDB binary built into $FERRETDB_BIN does not report version $FERRETDB_VERSION"
    log "FerretDB $FERRETDB_VERSION is at ${FERRETDB_BIN#"$ROOT"/}"
}

ensure_redis() {
    if command -v redis-server >/dev/null && command -v redis-cli >/dev/null; then
        return 0
    fi
    if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
        log "redis-server not found; installing it with apt-get"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >&2 && apt-get install -y -qq --no-install-recommends redis-server >&2 ||
            die "apt-get install redis-server failed. Install redis-server (and redis-cli) yourself, or set REDIS_URL=redis://HOST:PORT/0."
        command -v redis-server >/dev/null && command -v redis-cli >/dev/null ||
            die "redis-server/redis-cli still not on PATH after apt-get install"
        return 0
    fi
    die "redis-server (with redis-cli) is needed for the local Redis but was not found, and apt-get cannot be used (not root or not Debian/Ubuntu).
  Install it (e.g. 'sudo apt-get install redis-server'), or set REDIS_URL=redis://HOST:PORT/0 to use an existing Redis server."
}

# apt_install WHAT PACKAGE...: install Debian packages as root, non-interactively; or die saying what to do.
apt_install() {
    local what="$1"; shift
    if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
        log "$what not found; installing $* with apt-get"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >&2 &&
            apt-get install -y -qq --no-install-recommends -o Dpkg::Options::=--force-confold "$@" >&2 ||
            die "apt-get install $* failed. Install $what yourself."
        return 0
    fi
    return 1
}

ensure_postgresql() {
    find_pg_bin >/dev/null && return 0
    # Only this project's own cluster is needed (.ci/with-services.sh creates it under .data/): keep the
    # package from creating and starting a system-wide one.
    if [[ "$(id -u)" == 0 && ! -e /etc/postgresql-common/createcluster.conf ]]; then
        mkdir -p /etc/postgresql-common
        printf 'create_main_cluster = false\n' >/etc/postgresql-common/createcluster.conf
    fi
    apt_install "PostgreSQL (initdb, postgres)" postgresql ||
        die "PostgreSQL's server (initdb and postgres) is needed for the local FerretDB but was not found, and apt-get cannot be used (not root or not Debian/Ubuntu).
  Install it (e.g. 'sudo apt-get install postgresql'; or set PG_BIN=/path/to/bin), or set POSTGRESQL_URL=postgres://USER:PASSWORD@HOST:PORT/DB
  to use an existing PostgreSQL server, or MONGODB_URL=mongodb://HOST:PORT to use an existing MongoDB server."
    find_pg_bin >/dev/null || die "initdb/postgres still not found after apt-get install postgresql (looked in /usr/lib/postgresql/*/bin)"
}

ensure_chromium() {
    [[ -x /usr/bin/chromium ]] && return 0
    apt_install "chromium (for the browser tests)" chromium ||
        die "/usr/bin/chromium is needed by the browser tests (tests/browser/) but was not found, and apt-get cannot be used. Install Debian's chromium package."
    [[ -x /usr/bin/chromium ]] || die "/usr/bin/chromium still missing after apt-get install chromium"
}

ensure_c_compiler() {
    command -v "${CC:-cc}" >/dev/null && return 0
    if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
        log "no C compiler found; installing gcc with apt-get (the worker compiles its stage shell)"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >&2 && apt-get install -y -qq --no-install-recommends gcc libc6-dev >&2 ||
            die "apt-get install gcc failed. Install a C compiler (cc) yourself."
        return 0
    fi
    die "a C compiler (cc) is needed: the worker compiles its stage shell (workers/execution/stage_shell.c) at start-up, and apt-get cannot be used. Install one (e.g. 'sudo apt-get install gcc'), or set CC."
}

ensure_bubblewrap() {
    [[ -x /usr/bin/bwrap ]] && return 0
    apt_install "bubblewrap (the stage sandbox)" bubblewrap ||
        die "/usr/bin/bwrap is needed: every stage command runs in a bubblewrap sandbox, and a worker without it refuses to run stages.
  Install Debian's bubblewrap package, or set STAGES_UNSANDBOXED=true to run stage commands without a sandbox (as the worker's user)."
    [[ -x /usr/bin/bwrap ]] || die "/usr/bin/bwrap still missing after apt-get install bubblewrap"
}

ensure_stage_network() {
    [[ -x /usr/bin/slirp4netns && -x /usr/bin/ip ]] && return 0
    apt_install "slirp4netns and iproute2 (network for stages of projects that allow it)" slirp4netns iproute2 ||
        die "/usr/bin/slirp4netns and /usr/bin/ip are needed for the stages of projects whose owner allowed them a network.
  Install Debian's slirp4netns and iproute2 packages."
    [[ -x /usr/bin/slirp4netns && -x /usr/bin/ip ]] || die "/usr/bin/slirp4netns or /usr/bin/ip still missing after apt-get install"
}

browser=0
[[ "${1:-}" == --browser ]] && browser=1

if [[ -z "${MONGODB_URL:-}" ]]; then
    ferretdb_ok || build_ferretdb
    [[ -n "${POSTGRESQL_URL:-}" ]] || ensure_postgresql
fi
"$ROOT/.ci/graphiql-assets.sh" "$GRAPHIQL_ASSETS_DIR"
if ((browser)); then ensure_chromium; fi
ensure_c_compiler
[[ "${STAGES_UNSANDBOXED:-}" == true ]] || { ensure_bubblewrap; ensure_stage_network; }
if [[ -z "${REDIS_URL:-}" ]]; then
    ensure_redis
fi

# Throwaway PostgreSQL and Redis servers for the test suite, on 127.0.0.1 only.
#
# Sourced by .ci/run (or by hand: `source .ci/services.sh; start_services`). Each server
# lives in a fresh temporary directory, listens on a free port, keeps nothing durable
# (fsync off, no Redis snapshots), and is stopped by `stop_services`. After start:
#   LABELER_TEST_DATABASE_URL  postgresql+psycopg://postgres@127.0.0.1:PORT/postgres
#   LABELER_TEST_REDIS_URL     redis://127.0.0.1:PORT/0
# PostgreSQL refuses to run as root, so as root the cluster belongs to the `postgres` user
# (created by Debian's package); as anyone else it simply belongs to the caller.

SERVICES_DIR=""

_free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Run a command as the user that owns the cluster.
_as_pg_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

start_postgres() {
    local bindir port data
    bindir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
    if [ -z "$bindir" ]; then
        echo "PostgreSQL is not installed (apt-get install postgresql)" >&2
        return 1
    fi
    data="$SERVICES_DIR/postgres"
    mkdir -p "$data"
    if [ "$(id -u)" -eq 0 ]; then
        chown -R postgres: "$SERVICES_DIR"
    fi
    _as_pg_owner "$bindir/initdb" -D "$data" -U postgres --auth=trust -E UTF8 \
        --locale=C.UTF-8 >"$SERVICES_DIR/initdb.log"
    port="$(_free_port)"
    # No durability needed for a test cluster; the Unix socket stays inside the temp dir.
    _as_pg_owner "$bindir/pg_ctl" -D "$data" -l "$SERVICES_DIR/postgres.log" -w start -o \
        "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories=$data \
         -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
         -c max_connections=300" >/dev/null
    export LABELER_TEST_DATABASE_URL="postgresql+psycopg://postgres@127.0.0.1:$port/postgres"
}

start_redis() {
    local port
    port="$(_free_port)"
    redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no \
        --daemonize yes --dir "$SERVICES_DIR" --pidfile "$SERVICES_DIR/redis.pid" \
        --logfile "$SERVICES_DIR/redis.log"
    # Wait until it answers, so the first test never races its start.
    for _ in $(seq 50); do
        redis-cli -p "$port" ping >/dev/null 2>&1 && break
        sleep 0.1
    done
    export LABELER_TEST_REDIS_URL="redis://127.0.0.1:$port/0"
}

start_services() {
    SERVICES_DIR="$(mktemp -d "${TMPDIR:-/tmp}/labeler-services.XXXXXX")"
    start_postgres
    start_redis
}

stop_services() {
    [ -n "$SERVICES_DIR" ] || return 0
    local bindir
    if [ -f "$SERVICES_DIR/redis.pid" ]; then
        kill "$(cat "$SERVICES_DIR/redis.pid")" 2>/dev/null || true
    fi
    bindir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
    if [ -f "$SERVICES_DIR/postgres/postmaster.pid" ]; then
        _as_pg_owner "$bindir/pg_ctl" -D "$SERVICES_DIR/postgres" -m immediate stop \
            >/dev/null 2>&1 || true
    fi
    rm -rf "$SERVICES_DIR"
    SERVICES_DIR=""
}

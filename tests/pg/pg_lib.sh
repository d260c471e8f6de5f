# A throwaway PostgreSQL for tests: Debian's postgresql 15, initdb into a
# temp dir, one server on a free loopback port, trust auth for the role
# "ocib" (a test-only cluster that listens on 127.0.0.1 only).
#
#   start_pg DIR   sets PG_PORT, PG_PID, PG_CONNINFO (libpq) and PG_DIR
#   stop_pg        stops the server (by PID) and removes DIR
#
# The server runs as the "postgres" system user (it refuses root), exec'd
# through setpriv so PG_PID is the postmaster itself. fsync is off: the
# tests kill ocireg, never the database.
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)

start_pg() {
  PG_DIR="$1"
  mkdir -p "$PG_DIR"
  chmod 755 "$PG_DIR"
  local as=()
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres: "$PG_DIR"
    as=(setpriv --reuid postgres --regid postgres --clear-groups --)
  fi
  "${as[@]}" "$PG_BIN/initdb" -D "$PG_DIR/data" -U ocib -A trust --no-sync \
    -E UTF8 --locale C >"$PG_DIR/initdb.log" 2>&1 || {
    echo "initdb failed:"; tail -5 "$PG_DIR/initdb.log"; return 1; }
  local try
  for try in 1 2 3; do
    PG_PORT=$(free_port)
    "${as[@]}" "$PG_BIN/postgres" -D "$PG_DIR/data" -p "$PG_PORT" \
      -c listen_addresses=127.0.0.1 -c unix_socket_directories="$PG_DIR" \
      -c fsync=off -c full_page_writes=off -c max_connections=200 \
      >"$PG_DIR/server.log" 2>&1 &
    PG_PID=$!
    local i
    for i in $(seq 100); do
      "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" && break
      kill -0 "$PG_PID" 2>/dev/null || break
      sleep 0.1
    done
    if "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"; then
      PG_CONNINFO="host=127.0.0.1 port=$PG_PORT user=ocib dbname=postgres"
      return 0
    fi
    kill -QUIT "$PG_PID" 2>/dev/null; wait "$PG_PID" 2>/dev/null || true
  done
  echo "postgres did not start:"; tail -5 "$PG_DIR/server.log"
  return 1
}

stop_pg() {
  if [ -n "${PG_PID:-}" ]; then
    kill -QUIT "$PG_PID" 2>/dev/null || true  # immediate shutdown
    wait "$PG_PID" 2>/dev/null || true
    PG_PID=""
  fi
  [ -n "${PG_DIR:-}" ] && rm -rf "$PG_DIR"
  return 0
}

# psql_pg SQL: runs SQL on the test server; prints unaligned rows.
psql_pg() {
  "$PG_BIN/psql" -X -q -A -t "$PG_CONNINFO" -c "$1"
}

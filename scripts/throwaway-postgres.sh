# Sourced by scripts/test.sh and scripts/bench.sh: a throwaway PostgreSQL cluster in a temporary
# directory, on a free loopback port, fsync off (its data is thrown away). initdb refuses to run
# as root, so when we are root the cluster belongs to the `postgres` user (the Debian package
# creates it). `start_postgres [MAX_CONNECTIONS]` sets PG_ADMIN_URL, PG_PORT and PG_DIR;
# `stop_postgres` stops it and deletes the directory.

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

start_postgres() {
  local max_connections=${1:-200}
  PG_DIR="$(mktemp -d /tmp/gatehouse-pg.XXXXXX)"
  chmod 755 "$PG_DIR"
  PG_PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  PG_AS=()
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres "$PG_DIR"
    PG_AS=(runuser -u postgres --)
  fi
  "${PG_AS[@]}" "$(pg_bin)/initdb" -D "$PG_DIR/data" -A trust -U postgres --no-sync >/dev/null
  "${PG_AS[@]}" "$(pg_bin)/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/log" -w -o \
    "-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=$max_connections -c shared_buffers=128MB" \
    start >/dev/null
  PG_ADMIN_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
}

stop_postgres() {
  if [ -n "${PG_DIR:-}" ] && [ -d "$PG_DIR" ]; then
    "${PG_AS[@]}" "$(pg_bin)/pg_ctl" -D "$PG_DIR/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$PG_DIR"
  fi
}

# Starts a throwaway PostgreSQL cluster on loopback for tests and benchmarks, unless
# HELSE_TEST_POSTGRES_URL is already set. Sourced by scripts/test and scripts/bench; exports
# HELSE_TEST_POSTGRES_URL and stops the cluster when the calling script exits.
# Usage: start_throwaway_postgres [extra postgres -c settings...]
start_throwaway_postgres() {
  if [ -n "${HELSE_TEST_POSTGRES_URL:-}" ]; then return 0; fi
  local pg_bin
  pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)
  if [ -z "$pg_bin" ]; then
    echo "PostgreSQL is not installed; install Debian's package (apt-get install postgresql) or set HELSE_TEST_POSTGRES_URL" >&2
    return 1
  fi
  HELSE_PG_DIR=$(mktemp -d /tmp/helse-pg.XXXXXX)
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  HELSE_PG_AS=()
  if [ "$(id -u)" = 0 ]; then
    # initdb refuses to run as root; the Debian package creates the postgres user.
    chown postgres "$HELSE_PG_DIR"
    HELSE_PG_AS=(runuser -u postgres --)
  fi
  HELSE_PG_BIN=$pg_bin
  "${HELSE_PG_AS[@]}" "$pg_bin/initdb" -D "$HELSE_PG_DIR/data" -U helse --auth=trust --no-sync >/dev/null
  local opts="-c listen_addresses=127.0.0.1 -p $port -k $HELSE_PG_DIR -c max_connections=300"
  for setting in "$@"; do opts="$opts -c $setting"; done
  "${HELSE_PG_AS[@]}" "$pg_bin/pg_ctl" -D "$HELSE_PG_DIR/data" -l "$HELSE_PG_DIR/log" -w -o "$opts" start >/dev/null
  trap 'stop_throwaway_postgres' EXIT
  export HELSE_TEST_POSTGRES_URL="postgres://helse@127.0.0.1:$port/postgres"
  echo "PostgreSQL $("$pg_bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port"
}

stop_throwaway_postgres() {
  "${HELSE_PG_AS[@]}" "$HELSE_PG_BIN/pg_ctl" -D "$HELSE_PG_DIR/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$HELSE_PG_DIR"
}

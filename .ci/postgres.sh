#!/usr/bin/env bash
# Start a throwaway PostgreSQL server on 127.0.0.1 for the persistence tests, installing it from
# Debian's packages when the machine has none. Sourced by .ci/run; exports JIUZHU_TEST_DATABASE_URL
# and registers a trap that stops the server and removes its data directory.
set -euo pipefail

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }

if [ -z "$(pg_bin)" ] || [ ! -x "$(pg_bin)/initdb" ]; then
  echo "installing PostgreSQL from Debian packages..."
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends postgresql >/dev/null
fi
PGBIN="$(pg_bin)"
PGPORT="${JIUZHU_CI_PGPORT:-55432}"
PGDATA_DIR="$(mktemp -d /tmp/jiuzhu-pg.XXXXXX)"

# initdb and postgres refuse to run as root: run them as the 'postgres' user the package created.
if [ "$(id -u)" = 0 ]; then
  id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
  chown postgres "$PGDATA_DIR"
  AS_PG=(runuser -u postgres --)
else
  AS_PG=()
fi

"${AS_PG[@]}" "$PGBIN/initdb" -D "$PGDATA_DIR/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >/dev/null
"${AS_PG[@]}" "$PGBIN/pg_ctl" -D "$PGDATA_DIR/data" -l "$PGDATA_DIR/log" -w -t 60 \
  -o "-c listen_addresses=127.0.0.1 -p $PGPORT -k $PGDATA_DIR -c fsync=on" start >/dev/null

stop_postgres() {
  "${AS_PG[@]}" "$PGBIN/pg_ctl" -D "$PGDATA_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$PGDATA_DIR"
}
trap stop_postgres EXIT

export JIUZHU_TEST_DATABASE_URL="postgresql://postgres@127.0.0.1:$PGPORT/postgres"
echo "PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PGPORT for the persistence tests"

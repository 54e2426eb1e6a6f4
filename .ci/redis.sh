#!/usr/bin/env bash
# Start a throwaway Redis server on 127.0.0.1 (a free port, a temporary directory, nothing saved) for
# the event-stream tests, installing Debian's redis-server when the machine has none. Sourced by
# .ci/run; exports JIUZHU_TEST_REDIS_URL and registers a trap that stops the server (after
# .ci/postgres.sh's, which this chains) and removes its directory.
set -euo pipefail

if ! command -v redis-server >/dev/null 2>&1; then
  echo "installing redis-server from Debian packages..."
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends redis-server >/dev/null
fi
REDIS_DIR="$(mktemp -d /tmp/jiuzhu-redis.XXXXXX)"
REDIS_PORT="${JIUZHU_CI_REDIS_PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}"
redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$REDIS_DIR" --save '' --appendonly no \
  --daemonize yes --pidfile "$REDIS_DIR/redis.pid" --logfile "$REDIS_DIR/redis.log"
for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done

stop_redis() {
  [ -f "$REDIS_DIR/redis.pid" ] && kill "$(cat "$REDIS_DIR/redis.pid")" 2>/dev/null || true
  rm -rf "$REDIS_DIR"
}
_jiuzhu_prev_trap="$(trap -p EXIT | sed -E "s/^trap -- '(.*)' EXIT$/\1/")"
trap "stop_redis; ${_jiuzhu_prev_trap:-:}" EXIT

export JIUZHU_TEST_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
echo "Redis $(redis-server --version | awk '{print $3}') on 127.0.0.1:$REDIS_PORT for the event-stream tests"

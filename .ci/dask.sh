#!/usr/bin/env bash
# Start a throwaway Dask cluster on 127.0.0.1 (a scheduler on a free port and 2 workers of one process
# and one thread each) for the fanned-out batch and simulation tests. Sourced by .ci/run after
# .ci/redis.sh; the workers import jiuzhu from the project's virtualenv, so that is created first
# (make test then finds it up to date). Exports JIUZHU_TEST_DASK_SCHEDULER and registers a trap that
# stops the scheduler and workers (after the earlier scripts' traps, which this chains) and removes
# their directory.
set -euo pipefail

make .venv/bin/jiuzhu >/dev/null
DASK_DIR="$(mktemp -d /tmp/jiuzhu-dask.XXXXXX)"
DASK_PORT="${JIUZHU_CI_DASK_PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}"
DASK_ADDRESS="tcp://127.0.0.1:$DASK_PORT"
.venv/bin/dask scheduler --host 127.0.0.1 --port "$DASK_PORT" --no-dashboard --pid-file "$DASK_DIR/scheduler.pid" \
  >"$DASK_DIR/scheduler.log" 2>&1 &
for i in 1 2; do
  .venv/bin/dask worker "$DASK_ADDRESS" --nworkers 1 --nthreads 1 --no-dashboard --host 127.0.0.1 \
    --local-directory "$DASK_DIR/worker$i" --pid-file "$DASK_DIR/worker$i.pid" --death-timeout 60 \
    >"$DASK_DIR/worker$i.log" 2>&1 &
done

stop_dask() {
  for f in "$DASK_DIR"/worker*.pid "$DASK_DIR"/scheduler.pid; do
    [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true
  done
  sleep 1
  rm -rf "$DASK_DIR"
}
_jiuzhu_prev_trap="$(trap -p EXIT | sed -E "s/^trap -- '(.*)' EXIT$/\1/")"
trap "stop_dask; ${_jiuzhu_prev_trap:-:}" EXIT

# ready when both workers have joined (a worker starts in a few seconds; a loaded machine takes longer)
if ! .venv/bin/python -c "
from distributed import Client
with Client('$DASK_ADDRESS', timeout='60s') as c:
    c.wait_for_workers(2, timeout=120)
" >/dev/null 2>&1; then
  echo "Dask cluster did not start:" >&2
  tail -n 20 "$DASK_DIR"/*.log >&2
  exit 1
fi
export JIUZHU_TEST_DASK_SCHEDULER="$DASK_ADDRESS"
echo "Dask $(.venv/bin/python -c 'import distributed; print(distributed.__version__)') scheduler on $DASK_ADDRESS with 2 workers for the fan-out tests"

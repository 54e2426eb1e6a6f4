"""`make cluster-demo`, small: benchmarks/cluster_demo.py starts its own PostgreSQL, Redis, two replicas,
two consumers and a Dask scheduler with two workers, drives
2,000 events, evaluations and a 2,000-household simulation, SIGKILLs a replica, a consumer and a
worker mid-way, restarts them, and checks from the database that nothing was lost or duplicated."""

from __future__ import annotations

import glob
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(
    not glob.glob("/usr/lib/postgresql/*/bin/initdb") or shutil.which("redis-server") is None,
    reason="needs PostgreSQL and redis-server from the distribution (.ci/postgres.sh and .ci/redis.sh install them)",
)


def test_the_small_cluster_demo_loses_and_duplicates_nothing():
    args = ["--households", "200", "--events", "2000", "--population", "2000", "--clients", "1", "--partitions", "4"]
    r = subprocess.run([sys.executable, "benchmarks/cluster_demo.py", *args], capture_output=True, text=True, cwd=ROOT, timeout=900)
    out = r.stdout
    assert r.returncode == 0, out[-4000:] + r.stderr[-4000:]
    assert out.strip().splitlines()[-1] == "lost 0, duplicated 0"
    assert "SIGKILL replica0, consumer0, Dask worker w0" in out
    assert "simulation: 2,000 households on the Dask cluster" in out
    rates = re.findall(r"replica\d: ([\d,]+) evaluations acknowledged", out)
    assert len(rates) == 2 and all(int(n.replace(",", "")) > 0 for n in rates)  # both replicas answered
    assert "events: 2,000 published over 200 households" in out and "missing 0, applied twice 0" in out
    tmp = re.search(r"temporary directory (\S+)", out).group(1)
    assert not Path(tmp).exists()  # everything removed at the end

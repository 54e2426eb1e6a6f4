"""Load test of POST /v1/evaluate on loopback with wrk, persistence on.

Starts `jiuzhu serve` (SQLite in a fresh directory unless --database-url), creates a
window key, warms up, then runs wrk with the example household and prints
throughput and latency percentiles. Afterwards it counts the stored
determinations: every 200 answered must be a committed row.

    make bench-http                      # defaults: workers = CPU count, 32 connections, 20 s
    .venv/bin/python benchmarks/bench_http.py --connections 16 --duration 30
Needs wrk (Debian: apt-get install wrk).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
JIUZHU = str(Path(sys.executable).with_name("jiuzhu"))
LUA = ROOT / "benchmarks" / "wrk_evaluate.lua"
RESULT = re.compile(r"RESULT (.*)")


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cpu_total() -> tuple[float, float]:
    """(busy, all) CPU seconds of the machine so far."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    hz = os.sysconf("SC_CLK_TCK")
    return (sum(v) - v[3] - v[4]) / hz, sum(v) / hz


def _tree_cpu(root: int) -> float:
    """CPU seconds used by ``root`` and its descendants (alive ones)."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    hz = os.sysconf("SC_CLK_TCK")
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(d)] = int(fields[1])
        times[int(d)] = (int(fields[11]) + int(fields[12])) / hz
    total, todo = 0.0, [root]
    while todo:
        p = todo.pop()
        total += times.get(p, 0.0)
        todo.extend(c for c, pp in parents.items() if pp == p)
    return total


def _wrk(url: str, key: str, body: Path, connections: int, seconds: int, threads: int, server: int = 0) -> dict[str, float]:
    env = {**os.environ, "JIUZHU_KEY": key, "JIUZHU_BODY": str(body)}
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "-s", str(LUA), url + "/v1/evaluate"]
    busy0, all0 = _cpu_total()
    ours0 = _tree_cpu(server) if server else 0.0
    wrk = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
    wrk_cpu = 0.0
    while wrk.poll() is None:
        wrk_cpu = max(wrk_cpu, _tree_cpu(wrk.pid))
        time.sleep(0.5)
    out = wrk.stdout.read() if wrk.stdout else ""
    busy1, all1 = _cpu_total()
    ours = (_tree_cpu(server) - ours0) if server else 0.0
    m = RESULT.search(out)
    if not m:
        raise SystemExit("wrk printed no result:\n" + out)
    r = {k: float(v) for k, v in (kv.split("=") for kv in m.group(1).split())}
    r["cpu_all"] = all1 - all0
    r["cpu_busy"] = busy1 - busy0
    r["cpu_service"] = ours
    r["cpu_wrk"] = wrk_cpu
    r["cpu_others"] = max(0.0, r["cpu_busy"] - ours - wrk_cpu)
    return r


def _wait_quiet(limit: float) -> None:
    """Figures taken while other programs load the machine are not this service's: wait for 3 s at >= 90% idle."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        b0, a0 = _cpu_total()
        time.sleep(3)
        b1, a1 = _cpu_total()
        if (b1 - b0) / (a1 - a0) <= 0.10:
            return
    print(f"(the machine did not become idle within {limit:.0f} s; measuring anyway)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--duration", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1, help="wrk threads")
    ap.add_argument("--database-url", default=None, help="PostgreSQL URL (default: SQLite in a fresh directory)")
    ap.add_argument("--household", type=Path, default=ROOT / "examples" / "liaoning_shenyang_family.json")
    ap.add_argument("--wait-quiet", type=float, default=0, help="wait up to this many seconds for an idle machine first")
    args = ap.parse_args()
    if args.wait_quiet:
        _wait_quiet(args.wait_quiet)
    if shutil.which("wrk") is None:
        print("wrk not found: apt-get install wrk", file=sys.stderr)
        return 2

    data = tempfile.mkdtemp(prefix="jiuzhu-bench-")
    env = {k: v for k, v in os.environ.items() if k not in ("JIUZHU_WRITER_SOCKET", "DATABASE_URL")}
    where = ["--data-dir", data] + (["--database-url", args.database_url] if args.database_url else [])
    key = subprocess.run(
        [JIUZHU, "keys", "create", "--role", "window", "--name", "压测", *where],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout.strip()
    port = _port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [JIUZHU, "serve", "--port", str(port), "--workers", str(args.workers), *where],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        # Wait until every worker answers: connections opened while only one worker listens all stay on it.
        deadline = time.monotonic() + 60
        seen: set[int] = set()
        while len(seen) < args.workers:
            try:
                r = httpx.get(url + "/readyz", timeout=1)
                if r.status_code == 200:
                    seen.add(r.json()["worker"])
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("service did not become ready")
            time.sleep(0.05)
        warm = _wrk(url, key, args.household, args.connections, 3, args.threads)
        r = _wrk(url, key, args.household, args.connections, args.duration, args.threads, server.pid)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(60)

    repo_count = _count(data, args.database_url)
    ok = int(r["requests"] - r["errors_status"]) + int(warm["requests"] - warm["errors_status"])
    db = "PostgreSQL" if args.database_url else "SQLite (WAL, synchronous=FULL)"
    print(f"POST /v1/evaluate, {args.household.name}, {db}, {args.workers} worker(s) + writer process, "
          f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s on loopback, {os.cpu_count()} CPUs")  # fmt: skip
    cores = r["cpu_all"] / args.duration
    print(f"  CPU during the run (core-seconds of {r['cpu_all']:.1f}): service {r['cpu_service']:.1f}, wrk {r['cpu_wrk']:.1f}, "
          f"other processes {r['cpu_others']:.1f} ({r['cpu_others'] / args.duration / cores * 100:.0f}% of the machine"
          f"{', the database server included' if args.database_url else ''})")  # fmt: skip
    if r["cpu_service"] and r["requests"]:
        print(f"  service CPU per request {r['cpu_service'] / r['requests'] * 1e3:.2f} ms")
    print(f"  throughput  {r['rps']:.0f} requests/s  ({int(r['requests'])} requests, {int(r['errors_status'])} non-2xx, "
          f"{int(r['errors_connect'] + r['errors_timeout'])} connect/timeout errors)")  # fmt: skip
    print(
        f"  latency     p50 {r['p50_ms']:.1f} ms   p90 {r['p90_ms']:.1f} ms   p99 {r['p99_ms']:.1f} ms   max {r['max_ms']:.1f} ms"
    )
    print(f"  recorded    {repo_count} determinations for {ok} answers (warm-up included)")
    shutil.rmtree(data, ignore_errors=True)
    return 0 if repo_count >= ok else 1


def _count(data: str, database_url: str | None) -> int:
    from api.core.config import Settings
    from api.storage.db import make_engine
    from api.storage.repository import Repository

    db = make_engine(Settings(data_dir=Path(data), database_url=database_url or ""))
    try:
        return Repository(db).count_determinations()
    finally:
        db.dispose()


if __name__ == "__main__":
    sys.exit(main())

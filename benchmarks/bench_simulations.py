"""Reform simulation through the service: time to accept, to run, and what it costs the window requests meanwhile.

Writes a synthetic population (default 1,000,000 households for 210000), starts
`jiuzhu serve` offering it, and prints:
  * POST /v1/simulations latency (the reform is checked as `jiuzhu simulate` would),
  * the job's run time (started -> finished, as recorded) and its progress as polled,
  * `jiuzhu simulate` on the same population, for comparison,
  * with wrk (Debian: apt-get install wrk): POST /v1/evaluate latency without and with a simulation running.

    .venv/bin/python benchmarks/bench_simulations.py [--households 1000000] [--wrk-seconds 10]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from bench_http import JIUZHU, ROOT, _port, _wrk

REFORM = ROOT / "examples" / "reforms" / "dibao_plus5_edge2.yaml"


def _key(role: str, data: str, env: dict) -> str:
    cmd = [JIUZHU, "keys", "create", "--role", role, "--name", f"压测{role}", "--data-dir", data]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, check=True).stdout.strip()


def _ts(s: str) -> dt.datetime:
    return dt.datetime.fromisoformat(s.replace("Z", "+00:00"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--households", type=int, default=1_000_000)
    ap.add_argument("--wrk-seconds", type=int, default=10, help="0: skip the latency comparison")
    ap.add_argument("--connections", type=int, default=8)
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="jiuzhu-bench-sim-"))
    pops = work / "populations"
    name = f"liaoning-{args.households}"
    env = {k: v for k, v in os.environ.items() if k not in ("JIUZHU_WRITER_SOCKET", "DATABASE_URL")}
    env["JIUZHU_POPULATIONS_DIR"] = str(pops)
    subprocess.run(
        [JIUZHU, "synth", "--locality", "210000", "--households", str(args.households), "--seed", "1", "--out", str(pops / name)],
        check=True,
        stdout=subprocess.DEVNULL,
        env=env,
    )
    t = time.perf_counter()
    subprocess.run([JIUZHU, "simulate", str(pops / name), "--reform", str(REFORM), "--out", str(work / "cli")],
                   check=True, stdout=subprocess.DEVNULL, env=env)  # fmt: skip
    cli_s = time.perf_counter() - t

    data = str(work / "data")
    policy, window = _key("policy", data, env), _key("window", data, env)
    port = _port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [JIUZHU, "serve", "--port", str(port), "--workers", str(os.cpu_count() or 1), "--data-dir", data],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("service did not become ready")
            time.sleep(0.1)
        household = ROOT / "examples" / "liaoning_shenyang_family.json"
        quiet = _wrk(url, window, household, args.connections, args.wrk_seconds, 1) if args.wrk_seconds else None
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {policy}"}, timeout=60) as c:
            body = {"population": name, "reform": REFORM.read_text(encoding="utf-8")}
            t = time.perf_counter()
            r = c.post("/v1/simulations", json=body)
            accept_ms = (time.perf_counter() - t) * 1e3
            assert r.status_code == 202, r.text
            location = r.headers["Location"]
            busy = _wrk(url, window, household, args.connections, args.wrk_seconds, 1) if args.wrk_seconds else None
            samples = []
            while True:
                job = c.get(location).json()
                p = job["progress"] or {}
                samples.append(f"{job['status']}:{p.get('households_done')}")
                if job["status"] in ("done", "failed"):
                    break
                time.sleep(0.5)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(60)

    print(f"reform simulation of {args.households:,} synthetic households (210000), {REFORM.name}, {os.cpu_count()} CPUs")
    print(f"  POST /v1/simulations answered 202 in {accept_ms:.0f} ms (reform checked, job queued)")
    if job["status"] != "done":
        print(f"  job FAILED: {job['errors']}")
        return 1
    run_s = (_ts(job["finished_at"]) - _ts(job["started_at"])).total_seconds()
    wait_s = (_ts(job["started_at"]) - _ts(job["created_at"])).total_seconds()
    print(f"  job: queued {wait_s:.2f} s, ran {run_s:.1f} s (child process start, both rule books, evaluation, files)")
    print(f"  `jiuzhu simulate` on the same population: {cli_s:.1f} s")
    print(f"  progress as polled: {' '.join(dict.fromkeys(samples))}")
    if quiet and busy:
        for label, w in (("no simulation", quiet), ("simulation running", busy)):
            print(f"  POST /v1/evaluate, {label:>18}: {w['rps']:.0f} requests/s, p50 {w['p50_ms']:.1f} ms, p99 {w['p99_ms']:.1f} ms")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

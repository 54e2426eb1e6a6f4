"""Benchmark: a partitioned population in one process and fanned out to a local Dask cluster.

Prints figures; asserts nothing. For each way of running (one process; ``--workers N``) the whole
command runs in a child process; its wall time is printed beside the peak of the resident memory of
its whole process tree (the command, the Dask scheduler and workers it starts), sampled every 0.1 s,
and the machine's load average at the start (the development machine is shared).

    python benchmarks/bench_fanout.py [--households 1000000] [--pop DIR] [--workers 2] [--command batch|simulate]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
JIUZHU = Path(sys.executable).with_name("jiuzhu")
REFORM = ROOT / "examples" / "reforms" / "dibao_plus5_edge2.yaml"


def tree_rss(proc: psutil.Process) -> tuple[int, int]:
    """Resident bytes of a process and all its descendants: (sum, largest single process)."""
    total = largest = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            rss = p.memory_info().rss
        except psutil.Error:
            continue
        total += rss
        largest = max(largest, rss)
    return total, largest


def run(args: list[str]) -> dict:
    load = os.getloadavg()[0]
    t = time.perf_counter()
    child = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    proc = psutil.Process(child.pid)
    peak_sum = peak_one = 0
    while child.poll() is None:
        s, one = tree_rss(proc)
        peak_sum, peak_one = max(peak_sum, s), max(peak_one, one)
        time.sleep(0.1)
    wall = time.perf_counter() - t
    out = child.stdout.read().decode() if child.stdout else ""
    if child.returncode:
        raise SystemExit(f"{' '.join(args)} failed:\n{out}")
    return {"wall": wall, "peak_sum": peak_sum, "peak_one": peak_one, "load": load}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--households", type=int, default=1_000_000)
    ap.add_argument("--pop", type=Path, help="a partitioned population (default: synthesised, Liaoning by county)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--command", choices=["batch", "simulate"], default="batch")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="jiuzhu-fanout-") as tmp:
        pop = a.pop
        if pop is None:
            pop = Path(tmp) / "pop"
            synth = ["synth", "--locality", "210000", "--households", str(a.households), "--seed", "1"]
            subprocess.run(
                [str(JIUZHU), *synth, "--partition-by", "county", "--out", str(pop)], check=True, stdout=subprocess.DEVNULL
            )
        extra = ["--reform", str(REFORM)] if a.command == "simulate" else []
        print(f"{a.command} {pop} ({os.cpu_count()} CPUs)")
        print(f"{'run':<22}{'wall s':>9}{'peak RSS, all processes':>26}{'largest process':>18}{'load at start':>15}")
        for label, flags in (("one process", []), (f"--workers {a.workers}", ["--workers", str(a.workers)])):
            out = Path(tmp) / f"out-{len(flags)}"
            r = run([str(JIUZHU), a.command, str(pop), *extra, "--out", str(out), *flags])
            print(
                f"{label:<22}{r['wall']:>9.1f}{r['peak_sum'] / 2**20:>22.0f} MiB{r['peak_one'] / 2**20:>14.0f} MiB"
                f"{r['load']:>15.1f}"
            )


if __name__ == "__main__":
    main()

"""Benchmark: validating a household record (``engine.schema.validate.parse``), median µs.

Validates each household of examples/ and the 3-member household of bench_evaluate.py again and
again, and prints the median and p99 time per validation for each: the lowest median of
``--rounds`` rounds (the machine is shared; the lowest is the least disturbed). Not a test: it
asserts nothing.

    python benchmarks/bench_validate.py [--n 5000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import statistics
import sys
import time
from pathlib import Path

from engine.schema.validate import parse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_evaluate import three_member_household  # noqa: E402


def households() -> dict[str, dict]:
    out = {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in sorted((ROOT / "examples").glob("*.json"))}
    out["three_member (bench_evaluate)"] = three_member_household()
    return out


def measure(h: dict, n: int) -> tuple[float, float]:
    h = copy.deepcopy(h)
    for _ in range(200):
        parse(h)
    times = []
    gc.disable()
    try:
        for _ in range(n):
            t0 = time.perf_counter_ns()
            parse(h)
            times.append(time.perf_counter_ns() - t0)
    finally:
        gc.enable()
    times.sort()
    return statistics.median(times) / 1000, times[int(len(times) * 0.99)] / 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    hs = households()
    best: dict[str, tuple[float, float]] = {}
    for _ in range(args.rounds):
        for name, h in hs.items():
            best[name] = min(best.get(name, (float("inf"), 0.0)), measure(h, args.n))
    print(f"{'household':40} {'members':>7} {'median µs':>10} {'p99 µs':>8}")
    for name, (med, p99) in best.items():
        print(f"{name:40} {len(hs[name]['members']):7d} {med:10.1f} {p99:8.1f}")


if __name__ == "__main__":
    main()

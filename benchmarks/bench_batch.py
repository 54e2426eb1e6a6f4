"""Benchmark: the columnar batch evaluator on a large synthetic population.

Prints figures; asserts nothing (the speed targets live here, not in tests):

1. households per second through the columnar evaluator, loading timed apart from
   evaluation: for the four core programs (低保, 单人户, 特困, 低保边缘) and for every
   program in the rule book. "Evaluation" is the vectorised rules over columns already
   loaded and laid out per group (best of ``--repeat`` runs); reading Parquet, validating,
   converting and grouping are "loading"; putting results back in input order is
   "assembly".
2. the end-to-end ``jiuzhu batch`` command on the same population (reading, evaluating,
   writing Parquet results) in a child process, with its wall time and peak RSS.

    python benchmarks/bench_batch.py [--households 5000000] [--pop DIR] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
CORE = ["dibao", "dibao_single", "tekun", "dibao_edge"]


def measure(engine, pop: Path, programs, repeat: int) -> dict:
    from engine.batch.run import BatchEvaluator
    from engine.batch.tables import Source, build_part

    be = BatchEvaluator(engine, programs=programs)
    src = Source(pop)
    t = {"read": 0.0, "build": 0.0, "prepare": 0.0, "evaluate": 0.0, "assemble": 0.0}
    households = members = 0
    t0 = time.perf_counter()
    for raw in src.parts(1_000_000):
        t1 = time.perf_counter()
        part = build_part(raw, be.I, be.need_h, be.need_m, None)
        t2 = time.perf_counter()
        prep = be.prepare(part)
        t3 = time.perf_counter()
        best = float("inf")
        for _ in range(repeat):
            s = time.perf_counter()
            res = be.run(prep)
            best = min(best, time.perf_counter() - s)
        s = time.perf_counter()
        res.assemble()
        t["assemble"] += time.perf_counter() - s
        t["read"] += t1 - t0
        t["build"] += t2 - t1
        t["prepare"] += t3 - t2
        t["evaluate"] += best
        households += part.H
        members += part.M
        if res.fallback:
            print(f"  (note: {res.fallback} households went to the single evaluator)")
        del raw, part, prep, res
        t0 = time.perf_counter()
    return {"households": households, "members": members, "programs": [p.code for p in be.plan.programs], **t}


def report(label: str, m: dict) -> None:
    h = m["households"]
    load = m["read"] + m["build"] + m["prepare"]
    print(f"\n{label}: {', '.join(m['programs'])}")
    print(f"  population        {h:,} households, {m['members']:,} members")
    print(
        f"  loading           {load:7.2f} s  (read Parquet {m['read']:.2f} s, validate+convert {m['build']:.2f} s, group {m['prepare']:.2f} s)"
    )
    print(f"  evaluation        {m['evaluate']:7.2f} s  → {h / m['evaluate']:>12,.0f} households/s")
    print(f"  assembly          {m['assemble']:7.2f} s  (results back in input order)")
    print(f"  evaluation+assembly        → {h / (m['evaluate'] + m['assemble']):>12,.0f} households/s")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--households", type=int, default=5_000_000)
    ap.add_argument("--pop", type=Path, default=None, help="population directory (generated if missing)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-cli", action="store_true")
    args = ap.parse_args()
    pop = args.pop or Path(tempfile.gettempdir()) / f"jiuzhu-bench-{args.households}"
    print(f"machine: {os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f} at start")
    if not (pop / "households.parquet").exists():
        from engine.batch import synth

        t = time.perf_counter()
        s = synth.write(pop, "210000", args.households, seed=1)
        print(
            f"synthetic population written: {s.households:,} households, {s.members:,} members in {time.perf_counter() - t:.1f} s → {pop}"
        )
    from engine import default_engine

    engine = default_engine()
    report("core programs", measure(engine, pop, CORE, args.repeat))
    codes = [p.code for p in engine.book.programs]
    if codes != CORE:
        report("all programs", measure(engine, pop, None, args.repeat))
    else:
        print("\nall programs: the rule book holds only the four core programs (figures above)")

    if args.skip_cli:
        return
    for extra in ([], ["--members", "wide"]):
        with tempfile.TemporaryDirectory() as out:
            cmd = [sys.executable, "-m", "engine.cli.main", "batch", str(pop), "--out", out, *extra]
            print(f"\nend to end: jiuzhu batch {pop} --out … {' '.join(extra)} (all programs, Parquet results)")
            print(f"  load average {os.getloadavg()[0]:.2f} at start")
            t = time.perf_counter()
            r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
            wall = time.perf_counter() - t
            # the largest child so far (Linux, KiB -> MiB): run the default shape first
            peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
            print(f"  wall {wall:.1f} s → {m_households(pop) / wall:,.0f} households/s end to end")
            print(f"  peak RSS {peak:,.0f} MiB (budget 1536 MiB), exit {r.returncode}")
            for line in r.stdout.splitlines()[:3]:
                print("  " + line)
            if r.returncode:
                print(r.stderr[-2000:])


def m_households(pop: Path) -> int:
    return pq.ParquetFile(pop / "households.parquet").metadata.num_rows


if __name__ == "__main__":
    main()

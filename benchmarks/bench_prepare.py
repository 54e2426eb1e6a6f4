"""Benchmark: the stages between columns and results in ``jiuzhu batch``, part by part.

Prints figures; asserts nothing. Reads and builds ``--parts`` parts of a population once,
then times, per part, best of ``--repeat``: prepare (group, gather the columns per chunk),
evaluate (the chunks on the thread pool) and assemble (results back in input order), each as
wall time and CPU time (``time.process_time``: both threads' work), scaled to a million
households.

    python benchmarks/bench_prepare.py [--pop DIR] [--parts 3] [--part-size 100000] [--repeat 5]
        [--threads N] [--target ELEMENTS]
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path


def best(f, repeat: int) -> tuple[float, float, object]:
    wall = cpu = float("inf")
    out = None
    for _ in range(repeat):
        w, c = time.perf_counter(), time.process_time()
        out = f()
        wall, cpu = min(wall, time.perf_counter() - w), min(cpu, time.process_time() - c)
    return wall, cpu, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pop", type=Path, default=Path("/work/pop1m"))
    ap.add_argument("--parts", type=int, default=3)
    ap.add_argument("--part-size", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--target", type=int, default=None, help="member slots per chunk (run.TARGET_ELEMENTS)")
    args = ap.parse_args()

    from engine import default_engine
    from engine.batch import run
    from engine.batch.tables import Source, build_part

    if args.target:
        run.TARGET_ELEMENTS = args.target
    be = run.BatchEvaluator(default_engine(), threads=args.threads)
    raws = list(itertools.islice(Source(args.pop).parts(args.part_size), args.parts))
    parts = [build_part(raw, be.I, be.need_h, be.need_m, None) for raw in raws]
    del raws
    H = sum(p.H for p in parts)
    stages = {"prepare": [0.0, 0.0], "evaluate": [0.0, 0.0], "assemble": [0.0, 0.0]}
    chunks = groups = 0
    for part in parts:
        w, c, prep = best(lambda part=part: be.prepare(part), args.repeat)
        stages["prepare"][0] += w
        stages["prepare"][1] += c
        w, c, res = best(lambda prep=prep: be.run(prep), args.repeat)
        stages["evaluate"][0] += w
        stages["evaluate"][1] += c

        def assemble(prep=prep):
            r = be.run(prep)
            w, c = time.perf_counter(), time.process_time()
            r.assemble()
            return time.perf_counter() - w, time.process_time() - c

        times = [assemble() for _ in range(args.repeat)]
        stages["assemble"][0] += min(t[0] for t in times)
        stages["assemble"][1] += min(t[1] for t in times)
        chunks += res.chunks
        groups += res.groups
    scale = 1_000_000 / H
    print(f"{len(parts)} parts, {H:,} households, {groups} groups, {chunks} chunks, {be.threads} threads; per 1M households:")
    for name, (w, c) in stages.items():
        print(f"  {name:9s} wall {w * scale:6.3f} s   cpu {c * scale:6.3f} s")


if __name__ == "__main__":
    main()

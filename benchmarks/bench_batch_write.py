"""Benchmark: the write side of ``jiuzhu batch`` — building the result tables and writing them.

Prints figures; asserts nothing. Each part of the population is read and evaluated once
(not timed), then its result tables are built (best of ``--repeat``) and written, long and
wide member shapes, with the run's own code (``engine.batch.job.result_tables``,
``engine.batch.resultfiles.ResultFiles``). Wall and CPU seconds (``time.process_time``: all
threads) per stage, and the size of each file.

    python benchmarks/bench_batch_write.py [--pop DIR | --households 200000] [--part-size 100000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from engine import default_engine
from engine.batch import job, synth
from engine.batch.resultfiles import ResultFiles
from engine.batch.run import BatchEvaluator
from engine.batch.tables import Source, build_part


def clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def since(t: tuple[float, float]) -> tuple[float, float]:
    return time.perf_counter() - t[0], time.process_time() - t[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pop", type=Path, help="a population directory (default: a synthetic one)")
    ap.add_argument("--households", type=int, default=200_000, help="size of the synthetic population")
    ap.add_argument("--part-size", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    engine = default_engine()
    be = BatchEvaluator(engine)
    with tempfile.TemporaryDirectory() as tmp:
        pop = args.pop
        if pop is None:
            pop = Path(tmp) / "pop"
            synth.write(pop, "210000", args.households, seed=1)
        totals = {(shape, stage): [0.0, 0.0] for shape in ("long", "wide") for stage in ("tables", "write")}
        files = {shape: ResultFiles({}, "parquet") for shape in ("long", "wide")}
        omit: dict[str, list] = {"long": [], "wide": []}
        households = 0
        for raw in Source(pop).parts(args.part_size):
            part = build_part(raw, be.I, be.need_h, be.need_m, None)
            res = be.run(be.prepare(part))
            res.assemble()
            ev = job.Evaluated(part, res, be)
            households += part.H
            for shape, f in files.items():
                best = (9e9, 9e9)
                for _ in range(args.repeat):
                    t = clock()
                    tables = job.result_tables(ev, None, shape, omit[shape])
                    best = min(best, since(t))
                f.paths = f.paths or {name: Path(tmp) / f"{shape}-{name}.parquet" for name in tables}
                t = clock()
                f.write(tables, {})
                for stage, (wall, cpu) in (("tables", best), ("write", since(t))):
                    totals[shape, stage][0] += wall
                    totals[shape, stage][1] += cpu
        for f in files.values():
            f.close()
        print(f"{households:,} households, parts of {args.part_size:,}, best of {args.repeat} per part")
        for (shape, stage), (wall, cpu) in totals.items():
            print(
                f"  {shape:4} {stage:6}  wall {wall:6.2f} s  cpu {cpu:6.2f} s  ({households / max(wall, 1e-9):,.0f} households/s)"
            )
        for f in files.values():
            for path in f.paths.values():
                print(f"  {path.name:28} {path.stat().st_size / 1e6:7.1f} MB")


if __name__ == "__main__":
    main()

"""Benchmark: the columnar batch evaluator on a large synthetic population.

Prints figures; asserts nothing (the speed targets live here, not in tests):

1. households per second through the columnar evaluator, loading timed apart from
   evaluation: for the four core programs (低保, 单人户, 特困, 低保边缘) and for every
   program in the rule book. "Evaluation" is the vectorised rules over columns already
   loaded and laid out per group (best of ``--repeat`` runs); reading Parquet, validating,
   converting and grouping are "loading"; putting results back in input order is
   "assembly".
2. the end-to-end ``jiuzhu batch`` command (reading, checking, evaluating, writing Parquet results;
   start-up included) in a child process, on 1,000,000 and 5,000,000 households, with its wall time,
   households/s, CPU time, peak RSS and each stage's own seconds; then ``--members wide`` and a
   ``jiuzhu simulate`` on the first population.

    python benchmarks/bench_batch.py [--households 1000000 5000000] [--pop DIR ...] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson
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


def end_to_end(pop: Path, extra: list[str], command: str = "batch") -> None:
    """One ``jiuzhu <command>`` in a child process: wall time (start-up included), households/s, the child's
    own peak RSS, and the seconds each stage spent on its own thread (run.json)."""
    households = m_households(pop)
    with tempfile.TemporaryDirectory() as out:
        if command == "batch":
            cmd = [sys.executable, "-m", "engine.cli.main", "batch", str(pop), "--out", out, *extra]
        else:
            reform = ROOT / "examples" / "reforms" / "dibao_plus5_edge2.yaml"
            cmd = [sys.executable, "-m", "engine.cli.main", "simulate", str(pop), "--reform", str(reform), "--out", out]
        print(f"\nend to end: jiuzhu {command} {pop.name} {' '.join(extra)} — {households:,} households, all programs")
        print(f"  load average {os.getloadavg()[0]:.2f} at start")
        t = time.perf_counter()
        errfile = Path(out) / "stderr.txt"
        errs = errfile.open("w")
        child = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=errs, text=True)
        # the child's own high-water mark (VmHWM, kept per address space): wait4's ru_maxrss would carry
        # over the RSS this benchmark process had when it forked the child
        peak_kib = 0
        while True:
            peak_kib = max(peak_kib, _hwm_kib(child.pid))
            pid, status, usage = os.wait4(child.pid, os.WNOHANG)
            if pid:
                break
            time.sleep(0.02)
        wall = time.perf_counter() - t
        errs.close()
        err = errfile.read_text(encoding="utf-8", errors="replace")
        code = os.waitstatus_to_exitcode(status)
        print(f"  wall {wall:.2f} s → {households / wall:>10,.0f} households/s end to end")
        print(
            f"  CPU {usage.ru_utime + usage.ru_stime:.2f} s on {os.cpu_count()} cores; peak RSS {peak_kib / 1024:,.0f} MiB (budget 1536 MiB); exit {code}"
        )
        run = Path(out) / "run.json"
        if run.exists():
            sec = orjson.loads(run.read_bytes())["seconds"]
            print("  each stage on its own thread: " + ", ".join(f"{k} {v:.2f} s" for k, v in sec.items()))
        if code:
            print(err[-2000:])


def _hwm_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def population(households: int, given: Path | None) -> Path:
    pop = given or Path(tempfile.gettempdir()) / f"jiuzhu-bench-{households}"
    if not (pop / "households.parquet").exists():
        from engine.batch import synth

        t = time.perf_counter()
        s = synth.write(pop, "210000", households, seed=1)
        print(
            f"synthetic population written: {s.households:,} households, {s.members:,} members in {time.perf_counter() - t:.1f} s → {pop}"
        )
    return pop


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--households", type=int, nargs="+", default=[1_000_000, 5_000_000])
    ap.add_argument("--pop", type=Path, nargs="*", default=None, help="population directories, one per --households")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-evaluator", action="store_true", help="only the end-to-end commands")
    ap.add_argument("--skip-cli", action="store_true")
    args = ap.parse_args()
    print(f"machine: {os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f} at start")
    pops = [population(n, (args.pop or [None] * len(args.households))[i]) for i, n in enumerate(args.households)]
    if not args.skip_evaluator:
        from engine import default_engine

        engine = default_engine()
        report("core programs", measure(engine, pops[0], CORE, args.repeat))
        report("all programs", measure(engine, pops[0], None, args.repeat))
    if args.skip_cli:
        return
    # the commands start from bytecode, as an installed jiuzhu does (`make` compiles it; edits since make it stale)
    subprocess.run([sys.executable, "-m", "compileall", "-q", "engine", "api"], cwd=ROOT, check=True, capture_output=True)
    for pop in pops:
        end_to_end(pop, [])
    end_to_end(pops[0], ["--members", "wide"])
    end_to_end(pops[0], [], command="simulate")


def m_households(pop: Path) -> int:
    return pq.ParquetFile(pop / "households.parquet").metadata.num_rows


if __name__ == "__main__":
    main()

"""Benchmark: dynamic monitoring, events per second through rules and re-evaluation.

Prints figures; asserts nothing (the speed target lives here, not in tests):

1. per event on one core, in process, no database: where the time goes (validating the
   event, applying it and validating the new household record, the core evaluator,
   durable-rules and the rest of the monitor), over the complete histories of a sample of
   households of the stream;
2. end to end: ``jiuzhu monitor replay`` of the whole SYNTHETIC stream (default 1,000,000
   events over 50,000 households) into a fresh SQLite file, on ``--workers`` processes
   (households partitioned by hash), every event, household and alert committed; wall time
   from the command's start to its exit, including reading and validating the file.

    python benchmarks/bench_monitor.py [--events 1000000] [--households 50000] [--workers 2] [--keep DIR] [--wait-quiet 600]
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

ROOT = Path(__file__).resolve().parent.parent
JIUZHU = str(Path(sys.executable).with_name("jiuzhu"))


def split(sample: list[dict]) -> None:
    from engine.monitor import apply as apply_mod
    from engine.monitor.events import parse_event
    from engine.monitor.monitor import Monitor

    mon = Monitor()
    t = {"event": 0.0, "apply": 0.0, "evaluate": 0.0}
    orig_apply, orig_register, orig_eval = apply_mod.apply_event, apply_mod.register, mon.engine.outline

    def timed(name, fn):
        def wrapper(*a, **k):
            s = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                t[name] += time.perf_counter() - s

        return wrapper

    import engine.monitor.monitor as mm

    mm.apply_event, mm.register = timed("apply", orig_apply), timed("apply", orig_register)
    mon.engine.outline = timed("evaluate", orig_eval)
    groups: dict[str, list[dict]] = {}
    for o in sample:
        groups.setdefault(o["household_id"], []).append(o)
    n = evaluated = 0
    start = time.perf_counter()
    for hid, evs in groups.items():
        state = None
        for o in evs:
            s = time.perf_counter()
            ev = parse_event(o)
            t["event"] += time.perf_counter() - s
            out = mon.process(ev, state)
            state = out.state
            n += 1
            evaluated += out.evaluated
        mon.drop(hid)
    total = time.perf_counter() - start
    mm.apply_event, mm.register = orig_apply, orig_register
    rest = total - sum(t.values())
    print(f"1. one core, in process, no database: {n:,} events of {len(groups):,} households, {evaluated:,} re-evaluated")
    print(f"   {n / total:,.0f} events/s = {total / n * 1e6:,.0f} µs per event:")
    for name, label in (("event", "validate the event"), ("apply", "apply it, validate the new record"),
                        ("evaluate", "core evaluator (per event; per evaluation %.0f µs)" % (t["evaluate"] / max(1, evaluated) * 1e6))):
        print(f"     {label:<58} {t[name] / n * 1e6:7.0f} µs")
    print(f"     {'durable-rules facts, milestones, comparison, alerts':<58} {rest / n * 1e6:7.0f} µs")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--households", type=int, default=50_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch", type=int, default=2000)
    ap.add_argument("--keep", type=Path, default=None, help="directory for the stream and the database (kept)")
    ap.add_argument("--wait-quiet", type=float, default=0, help="wait up to this many seconds for a quiet machine (load < 0.5)")
    args = ap.parse_args()
    deadline = time.monotonic() + args.wait_quiet
    while time.monotonic() < deadline and os.getloadavg()[0] >= 0.5:
        time.sleep(5)

    work = args.keep or Path(tempfile.mkdtemp(prefix="jiuzhu-bench-monitor-"))
    work.mkdir(parents=True, exist_ok=True)
    stream = work / f"events-{args.households}-{args.events}.jsonl"
    if not stream.exists():
        from engine.monitor.synth import generate

        t = time.perf_counter()
        with open(stream, "wb") as f:
            for line in generate(args.households, args.events, seed=1):
                f.write(line)
        print(f"SYNTHETIC stream: {args.events:,} events, {args.households:,} households ({time.perf_counter() - t:.0f} s to write) -> {stream}")
    print(f"machine: {os.cpu_count()} CPUs; load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")

    sample_ids = {f"SYN-MON-{i:07d}" for i in range(0, args.households, max(1, args.households // 300))}
    sample = []
    with open(stream, "rb") as f:
        for line in f:
            o = orjson.loads(line)
            if o["household_id"] in sample_ids:
                sample.append(o)
    split(sample)

    db_dir = work / "db"
    if (db_dir / "jiuzhu.sqlite3").exists():
        for p in db_dir.iterdir():
            p.unlink()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL",)}
    cmd = [JIUZHU, "monitor", "replay", str(stream), "--workers", str(args.workers), "--batch", str(args.batch), "--data-dir", str(db_dir)]
    t = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t
    print(f"2. end to end: {' '.join(cmd[1:3])} ... --workers {args.workers} --batch {args.batch} (SQLite, synchronous=FULL)")
    print("   " + r.stdout.strip().replace("\n", "\n   "))
    if r.returncode:
        print(r.stderr)
    size = sum(p.stat().st_size for p in db_dir.iterdir())
    print(f"   wall time of the command: {wall:.1f} s -> {args.events / wall:,.0f} events/s end to end; database {size / 1e6:,.0f} MB")
    print(f"   load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()

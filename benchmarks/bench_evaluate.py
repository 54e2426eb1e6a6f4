"""Benchmark: one in-process evaluation of a 3-member household, with full explanations.

Prints the median and p99 time of `evaluate(household)` (validation, parameter lookup, the
four core programs, every reason rendered with its citation) and evaluations per second.
Two workloads: the same example household again and again, and 2,000 distinct generated
3-member households (so no cache flatters the figure). Not a test: it asserts nothing.

    python benchmarks/bench_evaluate.py [--n 20000]
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import statistics
import time
from pathlib import Path

from engine import Engine, default_engine, load_rulebook

CORE = frozenset({"dibao", "dibao_single", "tekun", "dibao_edge"})

ROOT = Path(__file__).resolve().parent.parent


def three_member_household(complete: bool = True) -> dict:
    """A grandmother with a disability, her husband and their grandson at high school.

    ``complete`` fills every optional fact a window form asks for (sex, self-care...); the
    incomplete variant leaves some out, so the evaluation also carries "unknown" values.
    """
    members = [
        {
            "id": "p1", "relation": "head", "birth_date": "1956-05-01", "sex": "female", "hukou_locality": "210102",
            "disability": {"category": "limb", "grade": 2}, "self_care": "full", "supporters": "none",
            "incomes": [{"type": "pension", "monthly": "300.00"}],
        },
        {
            "id": "p2", "relation": "spouse", "birth_date": "1958-03-02", "sex": "male", "hukou_locality": "210102",
            "self_care": "full", "supporters": "none",
            "incomes": [{"type": "resident_pension_base", "monthly": "150.00"}],
        },
        {
            "id": "p3", "relation": "grandchild", "birth_date": "2005-09-10", "sex": "male", "schooling": "high_school",
            "hukou_locality": "210102", "self_care": "full", "supporters": "able",
        },
    ]  # fmt: skip
    if not complete:
        for m in members[1:]:
            del m["self_care"], m["sex"]
    return {
        "household_id": "BENCH-1",
        "locality": "210102",
        "as_of": "2021-08-01",
        "area": "urban",
        "members": members,
        "assets": {"financial": "5000.00", "vehicles": [], "properties": 1},
    }


def varied(n: int, seed: int = 7) -> list[dict]:
    rnd = random.Random(seed)
    places = [("210102", "210102"), ("620722", "620722"), ("350502", "350502"), ("500152", "500152")]
    out = []
    for i in range(n):
        loc, hukou = rnd.choice(places)
        members = []
        for j in range(3):
            year = rnd.randint(1935, 2015)
            members.append(
                {
                    "id": f"p{j + 1}",
                    "relation": "head" if j == 0 else rnd.choice(["spouse", "child", "parent"]),
                    "birth_date": f"{year}-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d}",
                    "hukou_locality": hukou,
                    "employed": rnd.random() < 0.4,
                    "serious_illness": rnd.random() < 0.1,
                    "supporters": rnd.choice(["none", "unable", "able"]),
                    "incomes": [
                        {
                            "type": rnd.choice(["wage", "pension", "business", "special_care"]),
                            "monthly": f"{rnd.randint(0, 1500)}.{rnd.randint(0, 99):02d}",
                        }
                    ],
                    **(
                        {"disability": {"category": rnd.choice(["limb", "intellectual", "visual"]), "grade": rnd.randint(1, 4)}}
                        if rnd.random() < 0.15
                        else {}
                    ),
                }
            )
        out.append(
            {
                "household_id": f"V-{i}",
                "locality": loc,
                "as_of": f"{rnd.choice([2021, 2022, 2023])}-{rnd.randint(1, 12):02d}-15",
                "area": rnd.choice(["urban", "rural"]),
                "members": members,
                "assets": {"financial": str(rnd.randint(0, 30000)), "vehicles": [], "properties": rnd.choice([0, 1, 1, 2])},
            }
        )
    return out


def containers_of(det: dict):
    """A function that builds ``det``'s dicts and lists again from premade leaves, as one nested
    literal: what materialising this determination costs before any rule runs or any text is
    formatted. Reasons a determination lists twice (household and program) are built twice here,
    so this is a little above the true floor; the keys are the determination's own, never rule text."""
    leaves: list = []

    def lit(o) -> str:
        if isinstance(o, dict):
            return "{" + ", ".join(f"{k!r}: {lit(v)}" for k, v in o.items()) + "}"
        if type(o) is list:
            return "[" + ", ".join(lit(v) for v in o) + "]"
        leaves.append(o)
        return f"L[{len(leaves) - 1}]"

    ns: dict = {"__builtins__": {}}
    exec(compile(f"def build(L):\n    return {lit(det)}\n", "<containers>", "exec"), ns)
    build = ns["build"]
    assert build(leaves) == det
    return lambda _item: build(leaves)


def measure(fn, items: list, n: int) -> list[float]:
    times = []
    m = len(items)
    clock = time.perf_counter_ns
    gc.collect()
    for i in range(n):
        item = items[i % m]
        t0 = clock()
        fn(item)
        times.append(clock() - t0)
    return times


def report(label: str, times: list[float]) -> None:
    times = sorted(times)
    med = statistics.median(times) / 1000
    p99 = times[int(len(times) * 0.99)] / 1000
    rate = 1e9 / (sum(times) / len(times))
    print(f"{label:<52} median {med:7.1f} µs   p99 {p99:7.1f} µs   {rate:8.0f} evaluations/s")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20000)
    args = ap.parse_args()
    core = Engine(load_rulebook(programs=CORE))
    run(core, f"the four core programs ({', '.join(sorted(CORE))})", args.n)
    print()
    run(default_engine(), "every program in rules/", args.n)


def run(engine: Engine, label: str, n: int) -> None:
    same = three_member_household()
    det = engine.evaluate(same)
    n_reasons = len(det["household"]["reasons"]) + sum(len(p["reasons"]) for p in det["programs"])
    print(f"{label}: 3-member household, {len(det['programs'])} program entries, {n_reasons} reasons")
    mixed = varied(2000)
    for h in mixed[:200]:
        engine.evaluate(h)  # warm parameter caches as a running service would be
    report("same household, dict in", measure(engine.evaluate, [same], n))
    raw = json.dumps(same).encode()
    report("same household, JSON bytes in", measure(engine.evaluate, [raw], n))
    report("same household, some facts not given", measure(engine.evaluate, [three_member_household(False)], n))
    report("2,000 distinct households, dict in", measure(engine.evaluate, mixed, n))
    from engine.schema.validate import parse

    report("same household, decisions only (no rule reasons)", measure(lambda h: engine.evaluate_parsed(parse(h), explain=False), [same], n))
    report("same household, outline (statuses and amounts only)", measure(lambda h: engine.outline(parse(h)), [same], n))
    report("same household, validation only", measure(parse, [same], n))
    report("floor: this determination's dicts and lists only", measure(containers_of(dict(det)), [same], n))
    report("same household, reference interpreter", measure(engine.evaluate_reference, [same], max(n // 4, 1000)))


if __name__ == "__main__":
    main()

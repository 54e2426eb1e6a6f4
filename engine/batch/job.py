"""A batch job: read a population in parts, evaluate, write results (all or nothing).

Results go to temporary files in the output directory and are renamed into place
only when every part has been read, validated and evaluated, so a failed run leaves
no half-written results. ``run.json`` records what was run: population, date,
rule-set version, timings and counts.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import os
import random
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from engine.columnar.columns import Part
from engine.columnar.vectorize import STATUS_CODE
from engine.columnar.verify import batch_outcomes, household_facts, single_facts, single_outcomes
from engine.executors.evaluate import Engine

from . import results as R
from .fanout import Cluster, Fanout, FanoutError, engine_at, home_of
from .partitions import Partition
from .prefetch import ahead
from .resultfiles import ResultFiles
from .run import BatchEvaluator, PartResult, Prepared
from .tables import DEFAULT_PART, PopulationError, RowError, Source, build_part, jsonl_part
from .unique import fingerprints, id_range, in_order, may_repeat, plain_ids

STATUS_NAMES = {v: k for k, v in STATUS_CODE.items()}


@dataclass
class Summary:
    population: str
    households: int = 0
    members: int = 0
    as_of: str | None = None
    ruleset_version: str = ""
    synthetic: bool = False
    seconds: dict[str, float] = field(
        default_factory=lambda: {"read": 0.0, "prepare": 0.0, "evaluate": 0.0, "assemble": 0.0, "write": 0.0}
    )
    wall: float = 0.0  # seconds from the start of the run to its results in place
    fallback: int = 0
    groups: int = 0
    chunks: int = 0
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # program -> status -> households/members
    monthly_cents: dict[str, int] = field(default_factory=dict)  # program -> total amount paid (fen), of the kind in `pays`
    pays: dict[str, str] = field(default_factory=dict)  # program -> monthly | annual | one_off | in_kind | none
    verified: int = 0
    mismatches: list[dict] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "population": self.population,
            "synthetic": self.synthetic,
            "households": self.households,
            "members": self.members,
            "as_of": self.as_of,
            "ruleset_version": self.ruleset_version,
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
            "households_per_second_evaluate": round(self.households / self.seconds["evaluate"])
            if self.seconds["evaluate"]
            else None,
            # the whole run: the stages above overlap on three threads (read ahead, evaluate, write)
            "wall_seconds": round(self.wall, 3),
            "households_per_second": round(self.households / self.wall) if self.wall else None,
            "single_evaluator_households": self.fallback,
            "groups": self.groups,
            "chunks": self.chunks,
            "counts": self.counts,
            "paid_amount": {k: f"{v // 100}.{v % 100:02d}" for k, v in self.monthly_cents.items()},
            "pays": self.pays,
            "verified": self.verified,
            "mismatches": self.mismatches,
            "outputs": self.outputs,
        }


@dataclass
class Evaluated:
    """One evaluated part: its columns, results and the evaluator (for tables and comparisons)."""

    part: Part
    result: PartResult
    evaluator: BatchEvaluator


def evaluate_population(
    engine: Engine,
    population: Path | Source,
    as_of: dt.date | None = None,
    programs: list[str] | None = None,
    part_size: int = DEFAULT_PART,
    progress: Callable[[int], None] | None = None,
    summary: Summary | None = None,
    evaluator: BatchEvaluator | None = None,
) -> Iterator[Evaluated]:
    """Evaluate a population part by part (validated as it is read)."""
    src = population if isinstance(population, Source) else Source(population)
    # one evaluating thread: the read-ahead and writer threads keep the second core busy (a second
    # evaluating thread only contended with them: 1 M households 5.3-6.8 s with two, 4.6-5.4 s with one)
    be = evaluator or BatchEvaluator(engine, programs, threads=1)
    s = summary or Summary(str(population))
    s.synthetic = src.synthetic
    s.ruleset_version = engine.version
    s.as_of = as_of.isoformat() if as_of else None
    bounds: list[tuple[str, str]] = []
    for part, prep, lo_hi in ahead(_prepared(src, be, as_of, part_size, s)):
        t2 = time.perf_counter()
        res = be.run(prep, progress)
        t3 = time.perf_counter()
        res.assemble()
        s.seconds["evaluate"] += t3 - t2
        s.seconds["assemble"] += time.perf_counter() - t3
        s.households += part.H
        s.members += part.M
        s.fallback += res.fallback
        s.groups += res.groups
        s.chunks += res.chunks
        _count(s, res, be)
        bounds.append(lo_hi)
        yield Evaluated(part, res, be)
        del part, prep, res  # free this part: parts in memory are the one read ahead, this one and the one written
    if len(bounds) > 1 or src.partitions:  # partitions read together are checked apart when read
        _check_unique(bounds, src)


def _prepared(
    src: Source, be: BatchEvaluator, as_of: dt.date | None, part_size: int, s: Summary
) -> Iterator[tuple[Part, Prepared, tuple[str, str]]]:
    """Parts read, checked and grouped, with their smallest and largest household id: the read-ahead
    thread's share of the work (``s.seconds`` counts its own time, not the time it waits for the evaluator)."""
    t0 = time.perf_counter()
    for part in _parts(src, be, as_of, part_size):
        lo_hi = id_range(R.id_column(part.household_ids))
        t1 = time.perf_counter()
        prep = be.prepare(part, as_of)
        s.seconds["read"] += t1 - t0
        s.seconds["prepare"] += time.perf_counter() - t1
        yield part, prep, lo_hi
        del part, prep
        t0 = time.perf_counter()


def _parts(src: Source, be: BatchEvaluator, as_of: dt.date | None, part_size: int) -> Iterator[Part]:
    if src.format == "jsonl":
        for parsed, first in src.jsonl_parts(part_size):
            part = jsonl_part(parsed, be.I, be.need_h, be.need_m, first)
            yield part
        return
    for raw in src.parts(part_size):
        yield build_part(raw, be.I, be.need_h, be.need_m, as_of)


def _check_unique(bounds: list[tuple[str, str]], src: Source) -> None:
    """Household ids unique across parts. Each part's ids were checked among themselves when read; parts
    in id order (each part's smallest id above the last one's largest, as exports sorted by id are) cannot
    share one. Otherwise every id is fingerprinted, reading that column again part by part, and only equal
    fingerprints send the check to the ids themselves."""
    if not src.partitions and in_order(bounds):
        return
    if not may_repeat([fingerprints(ids) for ids in _id_batches(src)]):
        return
    allids = pa.chunked_array([plain_ids(ids) for ids in _id_batches(src)], pa.string())
    if len(pc.unique(allids)) != len(allids):
        vc = pc.value_counts(allids)
        dups = [d["values"] for d in vc.to_pylist() if d["counts"] > 1][:20]
        name = src.name("households")
        raise PopulationError([RowError(name, 0, "household_id", f"户编号重复：{d}", "duplicate household_id") for d in dups])


def _id_batches(src: Source) -> Iterator[pa.Array]:
    """The household ids of the population, read again a batch at a time."""
    if src.format == "jsonl":
        for parsed, _first in src.jsonl_parts():
            yield pa.array([h.household_id for h in parsed], pa.string())
        return
    for batch in src._batches("households", ["household_id"], 1 << 20):
        yield batch.column(0)


def _count(s: Summary, res: PartResult, be: BatchEvaluator) -> None:
    for p in be.plan.programs:
        target = res.member if p.member else res.household
        st = target[p.code + ".status"]
        counts = np.bincount(st[st >= 0], minlength=len(STATUS_NAMES))
        d = s.counts.setdefault(p.code, {name: 0 for name in STATUS_NAMES.values()})
        for code, name in STATUS_NAMES.items():
            d[name] += int(counts[code])
        paid = target[p.code + ".paid"] & ~target[p.code + ".null"]
        s.monthly_cents[p.code] = s.monthly_cents.get(p.code, 0) + int(target[p.code + ".cents"][paid].sum())
        s.pays[p.code] = p.pays


def verify_sample(engine: Engine, ev: Evaluated, k: int, rng: random.Random, as_of: dt.date | None) -> tuple[int, list[dict]]:
    """Re-evaluate ``k`` households of a part with the single evaluator; list every difference."""
    part, res, be = ev.part, ev.result, ev.evaluator
    rows = rng.sample(range(part.H), min(k, part.H))
    codes = {p.code for p in be.plan.programs}
    bad = []
    for i in rows:
        h = dict(part.contract(i))
        if as_of is not None:
            h["as_of"] = as_of.isoformat()
        det = engine.evaluate(h)
        a, b = batch_outcomes(res, part, be.plan, i), single_outcomes(det, codes)
        fa, fb = household_facts(res, i), single_facts(det, be.plan.reported)
        if a != b or fa != fb:
            diff = {str(key): {"batch": a.get(key), "single": b.get(key)} for key in set(a) | set(b) if a.get(key) != b.get(key)}
            if fa != fb:
                diff["household"] = {"batch": fa, "single": fb}
            bad.append({"household_id": h["household_id"], "differences": diff})
    return len(rows), bad


@dataclass(frozen=True)
class BatchOptions:
    """What every part of a batch run is evaluated and written with (shipped to the workers as data)."""

    as_of: dt.date | None = None
    programs: tuple[str, ...] | None = None
    part_size: int = DEFAULT_PART
    members: str = "long"
    seed: int = 0


def result_tables(ev: Evaluated, as_of: dt.date | None, members: str, omit: list[R.Omitted]) -> dict[str, pa.Table]:
    """The result tables of one evaluated part; ``omit`` holds the rule for the pairs the long member table
    leaves out, fixed by the first part of the run (one file, one rule)."""
    part, res, plan = ev.part, ev.result, ev.evaluator.plan
    as_of_ymd = part.hcols["as_of"].v if as_of is None else as_of.year * 10000 + as_of.month * 100 + as_of.day
    tables = {"households": R.household_table(part, res, plan, ev.evaluator.I, as_of_ymd)}
    if members == "long":
        if not omit:
            omit.append(R.omitted_pairs(res, plan))
        tables["member_programs"] = R.member_programs_table(part, res, plan, omit[0])
    else:
        tables["members"] = R.member_table(part, res, plan)
    return tables


def _verify_part(engine: Engine, ev: Evaluated, s: Summary, verify: int, total: int | None, rng: random.Random, as_of) -> None:
    """This part's share of the ``verify`` households to re-check with the single evaluator."""
    k = max(1, round(verify * ev.part.H / total)) if total else verify
    n, bad = verify_sample(engine, ev, min(k, verify - s.verified), rng, as_of)
    s.verified += n
    s.mismatches.extend(bad)


@dataclass
class PartitionOutput:
    """One partition of a fanned-out run, as its task returns it: the result tables of each part, and its counts."""

    tables: list[dict[str, pa.Table]]
    summary: Summary
    omit: R.Omitted | None


def batch_partition(
    home: str, root: Path, bundle: list[Partition], opts: BatchOptions, omit: R.Omitted | None, verify: int
) -> PartitionOutput:
    """A Dask task: a bundle of partitions (``Source.bundles``) evaluated part by part, exactly as a run
    over the whole population evaluates it, its tables returned to the caller (which writes them in
    partition order)."""
    engine = engine_at(home)
    s = Summary(str(root))
    src = Source.of_partitions(root, bundle)
    total = src.count()
    rng = random.Random(f"{opts.seed}:{bundle[0].name}")
    box = [omit] if omit is not None else []
    tables = []
    programs = list(opts.programs) if opts.programs else None
    # one thread: a worker process is one of the cluster's cores (the single process uses two)
    be = BatchEvaluator(engine, programs, threads=1)
    for ev in evaluate_population(engine, src, opts.as_of, programs, opts.part_size, None, s, be):
        tables.append(result_tables(ev, opts.as_of, opts.members, box))
        if verify:
            _verify_part(engine, ev, s, verify, total, rng, opts.as_of)
        del ev
    return PartitionOutput(tables, s, box[0] if box else None)


def merge_summary(into: Summary, part: Summary) -> None:
    """Add a partition's counts to the run's (exact: integers, in fen)."""
    into.households += part.households
    into.members += part.members
    for k, v in part.seconds.items():
        into.seconds[k] = into.seconds.get(k, 0.0) + v
    into.fallback += part.fallback
    into.groups += part.groups
    into.chunks += part.chunks
    for code, counts in part.counts.items():
        d = into.counts.setdefault(code, {name: 0 for name in STATUS_NAMES.values()})
        for name, n in counts.items():
            d[name] += n
    for code, cents in part.monthly_cents.items():
        into.monthly_cents[code] = into.monthly_cents.get(code, 0) + cents
    into.pays.update(part.pays)
    into.verified += part.verified
    into.mismatches.extend(part.mismatches)


def quotas(total: int, sizes: list[int | None]) -> list[int]:
    """``total`` split over partitions in proportion to their sizes (largest remainders), summing to
    ``min(total, households)``."""
    n = [x or 0 for x in sizes]
    want = min(total, sum(n))
    if not want:
        return [0] * len(n)
    exact = [want * x / sum(n) for x in n]
    out = [int(e) for e in exact]
    for i in sorted(range(len(n)), key=lambda i: (out[i] - exact[i], i))[: want - sum(out)]:
        out[i] += 1
    return out


def fan_out_batch(
    engine: Engine, src: Source, opts: BatchOptions, cluster: Cluster, verify: int, s: Summary
) -> Iterator[PartitionOutput]:
    """The partitions of ``src`` evaluated on ``cluster``, in partition order, merged into ``s`` as they come."""
    if not src.partitions:
        raise FanoutError(
            f"{src.path} 不是分区的人口数据；--workers/--cluster 需要按地区分区的目录（jiuzhu synth --partition-by county，"
            f"或 DIR/county=<代码>/households.parquet …） / {src.path} is not partitioned: --workers/--cluster need a "
            "partitioned population (DIR/county=<code>/...)"
        )
    bundles = src.bundles(opts.part_size)
    counts = dict((p, sub.count()) for p, sub in src.partitions)
    sizes = [sum(counts[p] or 0 for p in b) for b in bundles]
    verify_q = quotas(verify, sizes) if verify else [0] * len(bundles)
    home, root = home_of(engine), src.path
    with Fanout(cluster) as fan:
        if opts.members == "long":
            # the first part of the first partition fixes which member pairs every partition leaves out
            first = next(fan.map(batch_partition, [(home, root, bundles[0], opts, None, verify_q[0])]))
            rest = fan.map(
                batch_partition,
                [(home, root, b, opts, first.omit, q) for b, q in zip(bundles[1:], verify_q[1:], strict=True)],
            )
            outputs: Iterator[PartitionOutput] = itertools.chain([first], rest)
        else:
            outputs = fan.map(batch_partition, [(home, root, b, opts, None, q) for b, q in zip(bundles, verify_q, strict=True)])
        for outp in outputs:
            if outp.summary.ruleset_version != engine.version:
                raise FanoutError(
                    f"工作进程加载的规则版本 {outp.summary.ruleset_version[:19]}… 与本机 {engine.version[:19]}… 不同"
                    f"（{home}） / a worker loaded other rules than this machine: {home} must hold the same files everywhere"
                )
            merge_summary(s, outp.summary)
            yield outp


def run_batch(
    engine: Engine,
    population: Path,
    out: Path,
    as_of: dt.date | None = None,
    fmt: str = "parquet",
    programs: list[str] | None = None,
    part_size: int = DEFAULT_PART,
    progress: Callable[[int], None] | None = None,
    verify: int = 0,
    seed: int = 0,
    members: str = "long",
    cluster: Cluster | None = None,
) -> Summary:
    """Evaluate a population and write ``households.<fmt>`` and the member results to ``out``:
    ``member_programs.<fmt>`` (``members="long"``: one row per member × program checked) or today's
    wide ``members.<fmt>`` (``members="wide"``: one row per member, columns per program).

    ``cluster``: fan the partitions of a partitioned population out to Dask workers
    (``engine.batch.fanout``); the files are the same as a run in this process."""
    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    s = Summary(str(population))
    src = Source(population)
    member_file = "member_programs" if members == "long" else "members"
    final = {"households": out / f"households.{fmt}", member_file: out / f"{member_file}.{fmt}"}
    tmp = {k: v.with_name(f".{v.name}.{os.getpid()}.tmp") for k, v in final.items()}
    files = ResultFiles(tmp, fmt)
    rng = random.Random(seed)
    total = src.count()
    omit: list[R.Omitted] = []  # fixed by the first part: one file, one rule for what is left out

    def write(tables: dict[str, pa.Table]) -> None:
        t = time.perf_counter()
        meta = {b"jiuzhu.ruleset_version": engine.version.encode()}
        if s.synthetic:
            meta[b"jiuzhu.synthetic"] = b"true"
        files.write(tables, meta)
        s.seconds["write"] += time.perf_counter() - t

    def write_part(ev: Evaluated) -> None:
        write(result_tables(ev, as_of, members, omit))

    def write_partition(outp: PartitionOutput) -> None:
        for tables in outp.tables:
            write(tables)

    writer = ThreadPoolExecutor(1, thread_name_prefix="jiuzhu-batch-writer")
    pending: Future | None = None
    try:
        if cluster is None:
            for ev in evaluate_population(engine, src, as_of, programs, part_size, progress, s):
                # one part is written on the writer thread while the next is read and evaluated here
                # (Parquet encoding and numpy release the GIL); waiting for the previous write first keeps
                # at most two parts in memory and the files in input order
                if pending is not None:
                    pending.result()
                pending = writer.submit(write_part, ev)
                if verify:
                    _verify_part(engine, ev, s, verify, total, rng, as_of)
                del ev
        else:
            s.synthetic = src.synthetic
            s.ruleset_version = engine.version
            s.as_of = as_of.isoformat() if as_of else None
            opts = BatchOptions(as_of, tuple(programs) if programs else None, part_size, members, seed)
            for outp in fan_out_batch(engine, src, opts, cluster, verify, s):
                if pending is not None:
                    pending.result()
                pending = writer.submit(write_partition, outp)
                if progress is not None:
                    progress(outp.summary.households)
                del outp
            _check_unique([], src)  # partitioned: every id is fingerprinted, whatever the parts' order
        if pending is not None:
            pending.result()
            pending = None
        files.close()
        if not tmp["households"].exists():
            raise PopulationError([RowError(str(population), 0, "", "人口数据中没有户", "the population holds no household")])
        for name in final:
            os.replace(tmp[name], final[name])
        s.outputs = [str(final["households"]), str(final[member_file])]
        s.wall = time.perf_counter() - started
        (out / "run.json").write_bytes(orjson.dumps(s.to_dict(), option=orjson.OPT_INDENT_2))
        return s
    finally:
        if pending is not None:  # a failed run: let the write under way finish before its file is removed
            with contextlib.suppress(Exception):
                pending.result()
        writer.shutdown()
        files.abandon()
        for p in tmp.values():
            if p.exists():
                p.unlink()

"""Reform simulation: the same population under the current rules and under a reform.

``run_simulation(population, reform)`` reads the population once, evaluates every part
with both rule books (the reform is materialised by ``engine.batch.reform`` and checked
like any rule change), and reports: households and members by program and status
before and after, monthly and annual cost and its change, the households that gain or
lose each program (written out with their ids), and briefing charts
(``report.html``, self-contained). ``SimulationResult.to_dict()`` is JSON-ready, for the
HTTP service's ``POST /v1/simulations``.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa

from engine.book.rules import default_root
from engine.columnar.values import Interner
from engine.columnar.vectorize import STATUS_CODE, is_granted
from engine.executors.evaluate import Engine, default_engine
from engine.expr.runtime import Missing

from . import charts
from .fanout import Cluster, EngineSpec, Fanout, FanoutError, ReformData
from .partitions import Partition
from .prefetch import ahead
from .reform import Reform, load_reform, reform_rulebook
from .results import decimal_from_cents
from .run import BatchEvaluator
from .schema import AREAS
from .tables import DEFAULT_PART, Source, build_part, jsonl_part

STATUS_NAMES = {v: k for k, v in STATUS_CODE.items()}
BINS = 60
AREA_ORDER = {a: i for i, a in enumerate(AREAS)}  # histogram panels: urban, then rural, then any other


def _compared(what: str, baseline: int, reform: int) -> dict[str, str]:
    """``baseline_<what>``, ``reform_<what>`` and ``change_<what>`` in yuan, from fen."""
    return {f"baseline_{what}": _yuan(baseline), f"reform_{what}": _yuan(reform), f"change_{what}": _yuan(reform - baseline)}


def _yuan(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    c = abs(int(cents))
    return f"{sign}{c // 100}.{c % 100:02d}"


@dataclass
class SimulationResult:
    reform: dict
    population: str
    synthetic: bool
    as_of: str | None
    baseline_version: str
    reform_version: str
    households: int = 0
    members: int = 0
    programs: list[dict] = field(default_factory=list)  # code, name, scope
    counts: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)  # program -> status -> {baseline, reform}
    cost_cents: dict[str, dict[str, int]] = field(default_factory=dict)  # program -> {baseline, reform} monthly fen
    gains: dict[str, int] = field(default_factory=dict)  # program -> households (or members) newly granted
    losses: dict[str, int] = field(default_factory=dict)
    amount_changes: dict[str, int] = field(default_factory=dict)  # program -> granted both times, amount differs
    status_changes: dict[str, int] = field(default_factory=dict)  # program -> any change of status
    histogram: dict[str, dict] = field(default_factory=dict)  # area -> {edges, counts, thresholds}
    # locality code -> program -> [baseline granted, reform granted, baseline fen, reform fen]
    by_locality: dict[str, dict[str, list[int]]] = field(default_factory=dict)
    # program -> {baseline, reform}: granted, but no amount (a standard is not configured where they live)
    unpriced: dict[str, dict[str, int]] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """Costs count what is paid (exclusions applied): monthly cash, per academic year, once, or services."""
        pays = {p["code"]: p.get("pays", "monthly") for p in self.programs}
        cost = {}
        tb = tr = yb = yr = ob = orf = 0
        for code, c in self.cost_cents.items():
            b, r = c["baseline"], c["reform"]
            kind = pays.get(code, "monthly")
            if kind == "monthly":
                tb, tr = tb + b, tr + r
                cost[code] = {"pays": kind, **_compared("monthly", b, r), **_compared("annual", 12 * b, 12 * r)}
            elif kind == "annual":
                yb, yr = yb + b, yr + r
                cost[code] = {"pays": kind, **_compared("annual", b, r)}
            elif kind == "one_off":
                ob, orf = ob + b, orf + r
                cost[code] = {"pays": kind, **_compared("one_off", b, r)}
            elif kind == "in_kind":
                cost[code] = {"pays": kind, **_compared("monthly_services", b, r)}
            else:
                cost[code] = {"pays": kind}
        return {
            "reform": self.reform,
            "population": self.population,
            "synthetic": self.synthetic,
            "as_of": self.as_of,
            "baseline_version": self.baseline_version,
            "reform_version": self.reform_version,
            "households": self.households,
            "members": self.members,
            "programs": self.programs,
            "counts": self.counts,
            "cost": cost,
            "total_cost": {
                "baseline_monthly": _yuan(tb),
                "reform_monthly": _yuan(tr),
                "change_monthly": _yuan(tr - tb),
                "change_annual": _yuan(12 * (tr - tb) + (yr - yb)),
                "baseline_annual": _yuan(12 * tb + yb),
                "reform_annual": _yuan(12 * tr + yr),
                "baseline_one_off": _yuan(ob),
                "reform_one_off": _yuan(orf),
            },
            "gains": self.gains,
            "losses": self.losses,
            "amount_changes": self.amount_changes,
            "status_changes": self.status_changes,
            "histogram": self.histogram,
            "unpriced": {
                c: v for c, v in self.unpriced.items() if pays.get(c, "monthly") != "none" and (v["baseline"] or v["reform"])
            },
            "by_locality": self._by_locality(pays),
            "files": self.files,
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
        }

    def _by_locality(self, pays: dict[str, str]) -> dict[str, dict]:
        """Per household locality: each program's granted count and what it pays (in yuan), before and after."""
        out = {}
        for loc in sorted(self.by_locality):
            progs = {}
            for code, (gb, gr, cb, cr) in self.by_locality[loc].items():
                if gb or gr or cb or cr:
                    progs[code] = {"baseline": gb, "reform": gr, "pays": pays.get(code, "monthly"), **_compared("amount", cb, cr)}
            out[loc] = progs
        return out

    def report_text(self) -> str:
        d = self.to_dict()
        lines = [f"改革试算：{self.reform['name']}" + ("（合成数据 SYNTHETIC）" if self.synthetic else "")]
        for c in self.reform.get("changes", []):
            lines.append(f"  · {c}")
        for r in self.reform.get("rules", []):
            lines.append(f"  · 替换规则文件 {r}")
        lines.append(f"人口：{self.population}，{self.households} 户、{self.members} 人；评估日期 {self.as_of or '按数据'}")
        lines.append("")
        lines.append(f"{'项目':<14}{'状态':<14}{'基线':>10}{'改革后':>10}{'变化':>10}")
        for p in self.programs:
            code = p["code"]
            for status, v in self.counts[code].items():
                if v["baseline"] or v["reform"]:
                    lines.append(f"{code:<16}{status:<16}{v['baseline']:>10}{v['reform']:>10}{v['reform'] - v['baseline']:>+10}")
        lines.append("")
        lines.append(f"{'项目':<14}{'月支出(基线)':>16}{'月支出(改革后)':>16}{'月变化':>14}{'年变化':>16}")
        for code, c in d["cost"].items():
            if c["pays"] != "monthly" or (c["baseline_monthly"] == "0.00" and c["reform_monthly"] == "0.00"):
                continue
            lines.append(
                f"{code:<16}{c['baseline_monthly']:>16}{c['reform_monthly']:>16}{c['change_monthly']:>14}{c['change_annual']:>16}"
            )
        t = d["total_cost"]
        lines.append(
            f"{'合计':<14}{t['baseline_monthly']:>16}{t['reform_monthly']:>16}{t['change_monthly']:>14}{t['change_annual']:>16}"
        )
        for code, c in d["cost"].items():
            if c["pays"] == "annual" and (c["baseline_annual"] != "0.00" or c["reform_annual"] != "0.00"):
                lines.append(f"{code}（按学年）: {c['baseline_annual']} → {c['reform_annual']} 元")
            elif c["pays"] == "one_off" and (c["baseline_one_off"] != "0.00" or c["reform_one_off"] != "0.00"):
                lines.append(f"{code}（一次性）: {c['baseline_one_off']} → {c['reform_one_off']} 元")
        lines.append("")
        for p in self.programs:
            code = p["code"]
            unit = "人" if p["scope"] == "member" else "户"
            g, lo, a = self.gains.get(code, 0), self.losses.get(code, 0), self.amount_changes.get(code, 0)
            if g or lo or a:
                lines.append(f"{code}: 新纳入 {g} {unit}，退出 {lo} {unit}，金额变化 {a} {unit}")
        for name, path in self.files.items():
            lines.append(f"→ {name}: {path}")
        return "\n".join(lines)


def run_simulation(
    population_dir: Path | str,
    reform: Reform | Path | str,
    as_of: dt.date | None = None,
    out_dir: Path | str | None = None,
    engine: Engine | None = None,
    home: Path | None = None,
    part_size: int = DEFAULT_PART,
    cluster: Cluster | None = None,
) -> SimulationResult:
    """Evaluate ``population_dir`` under the current rules and under ``reform``; write outputs to ``out_dir``.

    ``cluster`` (``engine.batch.fanout.Cluster``, e.g. ``Cluster(address="tcp://10.0.0.5:8786")``): the
    partitions of a partitioned population are evaluated on Dask workers, which load the rules under
    ``home`` and the reform as data; the outputs are those of a run in this process."""
    if not isinstance(reform, Reform):
        reform = load_reform(Path(reform))
    base = engine or default_engine()
    home = home or base.book.dir.parent or default_root()
    book, _root = reform_rulebook(reform, home)
    info = {
        "name": reform.name,
        "description": reform.description,
        "file": str(reform.path),
        "changes": [c.describe() for c in reform.changes],
        "rules": sorted(reform.rules),
    }
    specs = None
    if cluster is not None:
        where = str(Path(home).resolve())
        specs = (EngineSpec(where), EngineSpec(where, ReformData.of(reform)))
    return compare_population(
        base, Engine(book), population_dir, info, as_of or reform.effective, out_dir, part_size, cluster, specs
    )


def _programs_of(be_b: BatchEvaluator, be_r: BatchEvaluator) -> dict[str, dict]:
    programs: dict[str, Any] = {}
    for be in (be_b, be_r):
        for p in be.plan.programs:
            programs.setdefault(
                p.code, {"code": p.code, "name": p.name, "scope": "member" if p.member else "household", "pays": p.pays}
            )
    return programs


def _result(info: dict, population: str, synthetic: bool, as_of, base: Engine, ref: Engine, programs: dict) -> SimulationResult:
    result = SimulationResult(
        reform=info,
        population=population,
        synthetic=synthetic,
        as_of=as_of.isoformat() if as_of else None,
        baseline_version=base.version,
        reform_version=ref.version,
    )
    result.programs = list(programs.values())
    for code in programs:
        result.counts[code] = {s: {"baseline": 0, "reform": 0} for s in STATUS_NAMES.values()}
        result.cost_cents[code] = {"baseline": 0, "reform": 0}
        result.unpriced[code] = {"baseline": 0, "reform": 0}
    return result


@dataclass
class Comparison:
    """What some parts of a population add to a simulation: counts, costs, histogram bins, changed rows.
    Comparisons of consecutive partitions merge exactly (integers, in fen) into that of the whole."""

    result: SimulationResult
    hist: _Histogram
    changes: list[pa.Table]
    evaluate_s: float = 0.0

    def merge(self, other: Comparison) -> None:
        r, o = self.result, other.result
        r.households += o.households
        r.members += o.members
        for code, statuses in o.counts.items():
            for status, v in statuses.items():
                for key in ("baseline", "reform"):
                    r.counts[code][status][key] += v[key]
        for mine, theirs in ((r.cost_cents, o.cost_cents), (r.unpriced, o.unpriced)):
            for code, v in theirs.items():
                for key in ("baseline", "reform"):
                    mine[code][key] += v[key]
        for loc, progs in o.by_locality.items():
            for code, sums in progs.items():
                slot = r.by_locality.setdefault(loc, {}).setdefault(code, [0, 0, 0, 0])
                for k in range(4):
                    slot[k] += sums[k]
        for mine, theirs in ((r.gains, o.gains), (r.losses, o.losses), (r.amount_changes, o.amount_changes)):
            for code, n in theirs.items():
                mine[code] = mine.get(code, 0) + n
        for code, n in o.status_changes.items():
            r.status_changes[code] = r.status_changes.get(code, 0) + n
        self.hist.merge(other.hist)
        self.changes.extend(other.changes)
        self.evaluate_s += other.evaluate_s


def compare_population(
    base: Engine,
    ref: Engine,
    population_dir: Path | str,
    info: dict,
    as_of: dt.date | None = None,
    out_dir: Path | str | None = None,
    part_size: int = DEFAULT_PART,
    cluster: Cluster | None = None,
    specs: tuple[EngineSpec, EngineSpec] | None = None,
) -> SimulationResult:
    """The same population under two rule books: counts, costs and every household that changes.

    With ``cluster`` and ``specs`` (how a worker loads each engine), the partitions are compared on
    Dask workers and their comparisons merged in partition order."""
    t0 = time.perf_counter()
    population = Path(population_dir)
    interner = Interner()
    # one evaluating thread each, the read-ahead thread on the other core (two contended with it:
    # 1 M households 9.5-11.1 s with two, 8.9-9.3 s with one)
    be_b = BatchEvaluator(base, threads=1, interner=interner)
    be_r = BatchEvaluator(ref, threads=1, interner=interner)
    src = Source(population)
    programs = _programs_of(be_b, be_r)
    out = Path(out_dir) if out_dir is not None else None
    whole = Comparison(_result(info, str(population), src.synthetic, as_of, base, ref, programs), _Histogram(), [])
    if cluster is None:
        _compare_parts(base, ref, be_b, be_r, src, as_of, part_size, out is not None, whole)
    else:
        if specs is None:
            raise FanoutError("在集群上比较需要规则的位置 / comparing on a cluster needs where the rules are (specs)")
        if not src.partitions:
            raise FanoutError(
                f"{population} 不是分区的人口数据；--workers/--cluster 需要按地区分区的目录（jiuzhu synth --partition-by county） / "
                f"{population} is not partitioned: --workers/--cluster need a partitioned population"
            )
        with Fanout(cluster) as fan:
            calls = [(specs, population, b, as_of, part_size, out is not None) for b in src.bundles(part_size)]
            for part in fan.map(compare_partition, calls):
                if (part.result.baseline_version, part.result.reform_version) != (base.version, ref.version):
                    raise FanoutError(
                        "工作进程加载的规则版本与本机不同：各机器上的规则目录须相同 / a worker loaded other rules than this machine"
                    )
                whole.merge(part)
    result = whole.result
    result.histogram = whole.hist.result()
    result.seconds = {"evaluate": whole.evaluate_s, "total": time.perf_counter() - t0}
    if out is not None:
        _write(out, result, whole.changes)
    return result


def compare_partition(
    specs: tuple[EngineSpec, EngineSpec],
    root: Path,
    bundle: list[Partition],
    as_of: dt.date | None,
    part_size: int,
    keep_changes: bool,
) -> Comparison:
    """A Dask task: a bundle of partitions (``Source.bundles``) under both rule books, compared part by
    part as a run over the whole population compares it (one thread: a worker process is one of the
    cluster's cores)."""
    base, ref = specs[0].engine(), specs[1].engine()
    interner = Interner()
    be_b = BatchEvaluator(base, threads=1, interner=interner)
    be_r = BatchEvaluator(ref, threads=1, interner=interner)
    src = Source.of_partitions(root, bundle)
    part = Comparison(_result({}, str(root), False, as_of, base, ref, _programs_of(be_b, be_r)), _Histogram(), [])
    _compare_parts(base, ref, be_b, be_r, src, as_of, part_size, keep_changes, part)
    return part


def _compare_parts(
    base: Engine,
    ref: Engine,
    be_b: BatchEvaluator,
    be_r: BatchEvaluator,
    src: Source,
    as_of: dt.date | None,
    part_size: int,
    keep_changes: bool,
    into: Comparison,
) -> None:
    interner = be_b.I
    need_h, need_m = be_b.need_h | be_r.need_h, be_b.need_m | be_r.need_m
    result, hist, changes = into.result, into.hist, into.changes
    programs = {p["code"]: p for p in result.programs}
    parts = (
        (jsonl_part(parsed, interner, need_h, need_m, first) for parsed, first in src.jsonl_parts(part_size))
        if src.format == "jsonl"
        else (build_part(raw, interner, need_h, need_m, as_of) for raw in src.parts(part_size))
    )
    for part in ahead(parts):  # the next part is read and checked while this one is evaluated
        t = time.perf_counter()
        rb = be_b.run(be_b.prepare(part, as_of))
        rr = be_r.run(be_r.prepare(part, as_of))
        into.evaluate_s += time.perf_counter() - t
        result.households += part.H
        result.members += part.M
        loc_codes, loc_of_h = np.unique(np.broadcast_to(np.asarray(part.hcols["locality"].v), (part.H,)), return_inverse=True)
        loc_of_m = np.repeat(loc_of_h, part.sizes())
        loc_names = [interner.text(int(c)) or "?" for c in loc_codes.tolist()]
        for code, prog in programs.items():
            member = prog["scope"] == "member"
            tb = _take(rb, be_b, code, member)
            tr = _take(rr, be_r, code, member)
            size = part.M if member else part.H
            sb, cb, nb, pb_ = tb if tb is not None else _absent(size)
            sr, cr, nr, pr_ = tr if tr is not None else _absent(size)
            for s_arr, key in ((sb, "baseline"), (sr, "reform")):
                cnt = np.bincount(s_arr[s_arr >= 0], minlength=4)
                for i, name in STATUS_NAMES.items():
                    result.counts[code][name][key] += int(cnt[i])
            gb = is_granted(sb)
            gr = is_granted(sr)
            paid_b = np.where(pb_ & ~nb, cb, 0)  # what is paid: exclusions applied
            paid_r = np.where(pr_ & ~nr, cr, 0)
            result.cost_cents[code]["baseline"] += int(paid_b.sum())
            result.cost_cents[code]["reform"] += int(paid_r.sum())
            result.unpriced[code]["baseline"] += int((gb & pb_ & nb).sum())
            result.unpriced[code]["reform"] += int((gr & pr_ & nr).sum())
            _add_by_locality(result.by_locality, code, loc_names, loc_of_m if member else loc_of_h, gb, gr, paid_b, paid_r)
            gain, loss = gr & ~gb, gb & ~gr
            amount = gb & gr & (paid_b != paid_r)
            result.gains[code] = result.gains.get(code, 0) + int(gain.sum())
            result.losses[code] = result.losses.get(code, 0) + int(loss.sum())
            result.amount_changes[code] = result.amount_changes.get(code, 0) + int(amount.sum())
            result.status_changes[code] = result.status_changes.get(code, 0) + int((sb != sr).sum())
            changed = np.flatnonzero(gain | loss | amount | (sb != sr))
            if keep_changes and changed.size:
                changes.append(_change_rows(part, code, member, changed, (sb, paid_b, nb), (sr, paid_r, nr), gain, loss))
        hist.add(part, rb, interner)
        hist.thresholds(base, ref, part, interner, as_of, "baseline", "reform")


def _add_by_locality(acc: dict, code: str, names: list[str], where: np.ndarray, gb, gr, paid_b, paid_r) -> None:
    n = len(names)
    sums = (_sum_by(where, gb, n), _sum_by(where, gr, n), _sum_by(where, paid_b, n), _sum_by(where, paid_r, n))
    for i, name in enumerate(names):
        slot = acc.setdefault(name, {}).setdefault(code, [0, 0, 0, 0])
        for k in range(4):
            slot[k] += int(sums[k][i])


def _sum_by(where: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Exact integer sums per group (np.bincount's float weights would round large fen totals)."""
    out = np.zeros(n, np.int64)
    np.add.at(out, where, values.astype(np.int64))
    return out


def _take(res, be: BatchEvaluator, code: str, member: bool):
    if not any(p.code == code for p in be.plan.programs):
        return None
    target = res.member if member else res.household
    return target[code + ".status"], target[code + ".cents"], target[code + ".null"], target[code + ".paid"]


def _absent(size: int):
    return np.full(size, -1, np.int8), np.zeros(size, np.int64), np.ones(size, bool), np.zeros(size, bool)


def _change_rows(part, code, member, rows, b, r, gain, loss) -> pa.Table:
    sb, pb, _nb = b
    sr, pr, _nr = r
    if member:
        hh_of = np.repeat(np.arange(part.H), part.sizes())[rows]
        mids = [str(part.member_ids[int(i)]) for i in rows]
    else:
        hh_of = rows
        mids = [None] * len(rows)
    hids = [str(part.household_ids[int(i)]) for i in hh_of]
    names = np.array([*STATUS_NAMES.values(), None], dtype=object)
    change = np.where(gain[rows], "gain", np.where(loss[rows], "loss", np.where(pb[rows] != pr[rows], "amount", "status")))
    return pa.table(
        {
            "household_id": pa.array(hids, pa.string()),
            "member_id": pa.array(mids, pa.string()),
            "program": pa.array([code] * len(rows), pa.string()),
            "change": pa.array(change.tolist(), pa.string()),
            "baseline_status": pa.array(names[np.where(sb[rows] < 0, 4, sb[rows])].tolist(), pa.string()),
            "reform_status": pa.array(names[np.where(sr[rows] < 0, 4, sr[rows])].tolist(), pa.string()),
            "baseline_amount": decimal_from_cents(pb[rows]),
            "reform_amount": decimal_from_cents(pr[rows]),
            "amount_change": decimal_from_cents(pr[rows] - pb[rows]),
        }
    )


class _Histogram:
    """Per-capita income of households by area, in fixed bins of one whole yuan, and the thresholds in force
    before and after. Bins of parts (and of partitions evaluated apart) add up to those of the whole."""

    def __init__(self) -> None:
        self.bins: dict[str, Counter] = {}  # area -> whole yuan (floor) -> households
        self.lines: dict[str, dict[str, Counter]] = {}

    def add(self, part, res, interner: Interner) -> None:
        pci, null = res.facts.get("per_capita_income", (None, None))
        if pci is None:
            return
        area = np.broadcast_to(np.asarray(part.hcols["area"].v), (part.H,))
        for code in np.unique(area).tolist():
            name = interner.text(int(code)) or "?"
            sel = (area == code) & ~null
            yuan, n = np.unique(np.floor_divide(pci[sel], 100), return_counts=True)
            self.bins.setdefault(name, Counter()).update(dict(zip(yuan.tolist(), n.tolist(), strict=True)))

    def merge(self, other: _Histogram) -> None:
        for area, bins in other.bins.items():
            self.bins.setdefault(area, Counter()).update(bins)
        for area, labels in other.lines.items():
            for label, c in labels.items():
                self.lines.setdefault(area, {}).setdefault(label, Counter()).update(c)

    def thresholds(self, base: Engine, ref: Engine, part, interner: Interner, as_of, *_labels) -> None:
        loc = np.broadcast_to(np.asarray(part.hcols["locality"].v), (part.H,))
        area = np.broadcast_to(np.asarray(part.hcols["area"].v), (part.H,))
        dates = np.broadcast_to(np.asarray(part.hcols["as_of"].v), (part.H,))
        # the most common (locality, date) per area stands for the area's thresholds
        for code in np.unique(area).tolist():
            name = interner.text(int(code)) or "?"
            sel = area == code
            pairs = Counter(zip(loc[sel].tolist(), dates[sel].tolist(), strict=True)).most_common(1)
            if not pairs:
                continue
            (lc, d), n = pairs[0]
            on = as_of or dt.date(d // 10000, d // 100 % 100, d % 100)
            for label, eng in (("baseline", base), ("reform", ref)):
                vals = eng.policies.resolve(interner.text(lc), on).values
                std = vals.get(f"dibao.standard.{name}")
                mult = vals.get("dibao_edge.multiplier")
                c = self.lines.setdefault(name, {}).setdefault(label, Counter())
                if std is not None and std.__class__ is not Missing:
                    c[("dibao", float(std))] += n
                    if mult is not None and mult.__class__ is not Missing:
                        c[("dibao_edge", float(std * mult))] += n

    def result(self) -> dict:
        """Per area: ``BINS`` bins ``[k*step, (k+1)*step)`` yuan, the step a whole number of yuan chosen so the
        bins reach 1.6 times the highest threshold; households at or above the last edge are counted apart."""
        out = {}
        for area in sorted(self.bins, key=lambda a: (AREA_ORDER.get(a, len(AREA_ORDER)), a)):
            lines = {}
            for label, c in self.lines.get(area, {}).items():
                best: dict[str, float] = {}
                for (kind, value), _n in c.most_common():
                    best.setdefault(kind, value)
                lines[label] = best
            top = max([x for d in lines.values() for x in d.values()] or [1.0]) * 1.6
            step = max(1, math.ceil(top / BINS))
            counts = [0] * BINS
            above = 0
            for yuan, n in self.bins[area].items():
                if yuan < 0:
                    continue  # below the range: counted among the households only
                if yuan >= BINS * step:
                    above += n
                else:
                    counts[yuan // step] += n
            out[area] = {
                "edges": [k * step for k in range(BINS + 1)],
                "counts": counts,
                "households": sum(self.bins[area].values()),
                "above_range": above,
                "thresholds": lines,
            }
        return out


def _write(out: Path, result: SimulationResult, changes: list[pa.Table]) -> None:
    import pyarrow.csv as pcsv  # pyarrow writers are heavy: loaded only when results are written
    import pyarrow.parquet as pq

    out.mkdir(parents=True, exist_ok=True)
    d = result.to_dict()
    rows = []
    for code, statuses in result.counts.items():
        for status, v in statuses.items():
            rows.append(
                {
                    "program": code,
                    "status": status,
                    "baseline": v["baseline"],
                    "reform": v["reform"],
                    "change": v["reform"] - v["baseline"],
                }
            )
    pcsv.write_csv(pa.Table.from_pylist(rows), out / "counts.csv")
    cost_rows = [{"program": code, **c} for code, c in d["cost"].items()]
    pcsv.write_csv(pa.Table.from_pylist(cost_rows), out / "costs.csv")
    table = pa.concat_tables(changes) if changes else None
    if table is not None:
        pq.write_table(table, out / "changes.parquet")
        moved = table.filter(pa.compute.is_in(table.column("change"), value_set=pa.array(["gain", "loss"])))
        pcsv.write_csv(moved, out / "gains_losses.csv")
        result.files["changes"] = str(out / "changes.parquet")
        result.files["gains_losses"] = str(out / "gains_losses.csv")
    result.files["counts"] = str(out / "counts.csv")
    result.files["costs"] = str(out / "costs.csv")
    result.files["report"] = str(out / "report.html")
    result.files["summary"] = str(out / "summary.json")
    (out / "report.html").write_text(charts.report_html(result.to_dict()), encoding="utf-8")
    (out / "summary.json").write_bytes(orjson.dumps(result.to_dict(), option=orjson.OPT_INDENT_2))

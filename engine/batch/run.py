"""Batch evaluation: group households, evaluate chunks in parallel, collect results.

Households are grouped by (resolved parameter set, area, member count): inside a
group every parameter is one exact scalar, the area is a constant, and members form a
dense ``(n, H)`` block, so per-capita division has a static denominator and member
totals are sums over one axis. Each group is cut into chunks small enough to stay in
cache, and chunks run on a thread pool (numpy releases the GIL in its loops).

A chunk the columnar backend cannot evaluate exactly (an int64 bound that could
overflow, a construct it does not vectorise) is evaluated household by household with
the single evaluator, ``engine.Engine.evaluate``: results are the same either way, and
the count of such households is reported.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.columnar import values as X
from engine.columnar.columns import Part
from engine.columnar.values import Bool, Date, List, Num, Set, Str, V, is_arr
from engine.columnar.vectorize import NOT_CHECKED, STATUS_CODE, ChunkResult, Ctx, Plan
from engine.executors.evaluate import Engine
from engine.expr import ast as A
from engine.expr.runtime import Missing
from engine.schema.facts import HOUSEHOLD_FACTS, MEMBER_FIELDS
from engine.schema.model import InputError
from engine.schema.money import parse_money, to_cents

TARGET_ELEMENTS = 1 << 19  # member slots per chunk: large enough that Python overhead is small, two threads overlap


class PartResult:
    """Results of one part. Chunks keep their own outputs; ``household``, ``member`` and ``facts``
    assemble them in the part's household and member order on first use."""

    def __init__(self, H: int, M: int, plan: Plan, groups: int = 0):
        self.H, self.M, self.plan, self.groups = H, M, plan, groups
        self.outputs: list[tuple[_Task, ChunkResult]] = []
        self.fallback = 0  # households evaluated by the single evaluator
        self._assembled: tuple[dict, dict, dict] | None = None

    @property
    def chunks(self) -> int:
        return len(self.outputs)

    @property
    def household(self) -> dict[str, np.ndarray]:
        """``<code>.status|cents|null|first`` of household programs, per household."""
        return self.assemble()[0]

    @property
    def member(self) -> dict[str, np.ndarray]:
        """The same for member programs, per member row."""
        return self.assemble()[1]

    @property
    def facts(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        return self.assemble()[2]

    def assemble(self) -> tuple[dict, dict, dict]:
        if self._assembled is not None:
            return self._assembled
        household: dict[str, np.ndarray] = {}
        member: dict[str, np.ndarray] = {}
        facts: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        fields = (
            ("status", np.int8, NOT_CHECKED),
            ("cents", np.int64, 0),
            ("null", bool, True),
            ("first", np.int16, -1),
            ("paid", bool, False),
        )
        for p in self.plan.programs:
            target, size = (member, self.M) if p.member else (household, self.H)
            arrays = [np.full(size, fill, dtype=dtype) for _f, dtype, fill in fields]
            for task, out in self.outputs:
                idx = task.midx if p.member else task.rows
                for arr, val in zip(arrays, out.programs[p.code], strict=True):
                    arr[idx] = val
            for (f, _d, _fill), arr in zip(fields, arrays, strict=True):
                target[f"{p.code}.{f}"] = arr
        for name in self.plan.reported:
            vals, null = np.zeros(self.H, dtype=np.int64), np.ones(self.H, dtype=bool)
            for task, out in self.outputs:
                v, nl = out.facts[name]
                vals[task.rows] = v
                null[task.rows] = nl
            facts[name] = (vals, null)
        self._assembled = (household, member, facts)
        return self._assembled


def referenced_names(plan: Plan) -> tuple[set[str], set[str]]:
    """Household facts and member fields the compiled rules read (columns to load)."""
    book = plan.book
    nodes: list[A.Node] = [s.node for s in book.facts.steps if s.node is not None]  # type: ignore[union-attr]
    for p in book.programs:
        if plan.codes is not None and p.code not in plan.codes:
            continue
        nodes += [s.node for s in p.steps if s.node is not None]
        nodes += [s.guard_node for s in p.steps if s.guard_node is not None]
        nodes += [c.when_node for c in p.decision if c.when_node is not None]
        nodes += [c.amount_node for c in p.decision if c.amount_node is not None]
        nodes += [part.node for c in p.decision for part in c.parts]
        if p.applies_node is not None:
            nodes.append(p.applies_node)
    names: set[str] = set()
    for root in nodes:
        for n in A.walk(root):
            if isinstance(n, A.Name) and n.path:
                names.add(n.path)
    need_h = {k for k in HOUSEHOLD_FACTS if k in names} | {"locality", "as_of", "area"}
    need_m = {k for k in MEMBER_FIELDS if k in names}
    return need_h, need_m


class BatchEvaluator:
    """The columnar evaluator for one engine (rule book + policies)."""

    def __init__(
        self,
        engine: Engine,
        programs: list[str] | None = None,
        threads: int | None = None,
        interner: X.Interner | None = None,
    ):
        self.engine = engine
        self.book = engine.book
        self.I = interner or X.Interner()
        self.plan = Plan(self.book, self.I, programs)
        self.need_h, self.need_m = referenced_names(self.plan)
        self.threads = threads or min(2, os.cpu_count() or 1)
        self._params: dict[int, dict[str, V]] = {}
        self.schema = self.book.policies.schema

    # -- parameters --------------------------------------------------------------
    def _param_values(self, ps) -> dict[str, V]:
        key = id(ps.values)
        got = self._params.get(key)
        if got is not None:
            return got
        out: dict[str, V] = {}
        for name, spec in self.schema.items():
            v = ps.values[name]
            if v.__class__ is Missing:
                out[name] = X.missing_of(spec.type.kind)
            elif isinstance(v, bool):
                out[name] = Bool(v)
            elif isinstance(v, frozenset):
                out[name] = Set(frozenset(self.I.id(e) for e in v))
            else:
                out[name] = X.num_scalar(v)
        self._params[key] = out
        return out

    # -- evaluation ---------------------------------------------------------------
    def evaluate_part(
        self, part: Part, as_of: dt.date | None = None, progress: Callable[[int], None] | None = None
    ) -> PartResult:
        return self.run(self.prepare(part, as_of), progress)

    def prepare(self, part: Part, as_of: dt.date | None = None) -> Prepared:
        """Group the households and lay their columns out per group (the last step of loading)."""
        tasks: list[_Task] = []
        groups = self._groups(part, as_of) if part.H else []
        for g in groups:
            tasks.extend(self._chunks(part, g, as_of))
        return Prepared(part, as_of, tasks, len(groups))

    def run(self, prep: Prepared, progress: Callable[[int], None] | None = None) -> PartResult:
        """Evaluate every chunk of a prepared part."""
        part = prep.part
        res = PartResult(part.H, part.M, self.plan, prep.groups)
        tasks = prep.tasks
        as_of = prep.as_of

        def work(task):
            return task, self._run_chunk(task, part, as_of)

        if self.threads > 1 and len(tasks) > 1:
            with ThreadPoolExecutor(self.threads) as pool:
                done = list(pool.map(work, tasks)) if progress is None else [_report(r, progress) for r in pool.map(work, tasks)]
        else:
            done = [work(t) if progress is None else _report(work(t), progress) for t in tasks]
        for task, (out, fb) in done:
            res.outputs.append((task, out))
            res.fallback += fb
        return res

    def _groups(self, part: Part, as_of: dt.date | None) -> list[_Group]:
        interner = self.I
        loc = np.asarray(part.hcols["locality"].v, dtype=np.int64)
        if as_of is not None:
            dates = np.full(part.H, X.ymd(as_of), dtype=np.int64)
        else:
            dates = np.broadcast_to(np.asarray(part.hcols["as_of"].v, dtype=np.int64), (part.H,))
        area = np.asarray(part.hcols["area"].v, dtype=np.int64)
        sizes = part.sizes()
        pair = loc * 100_000_000 + dates
        uniq, inv = np.unique(pair, return_inverse=True)
        pids: dict[int, int] = {}
        psets: list[Any] = []
        pid_of = np.empty(len(uniq), dtype=np.int64)
        for i, u in enumerate(uniq.tolist()):
            code = interner.text(u // 100_000_000)
            d = u % 100_000_000
            ps = self.engine.policies.resolve(code, dt.date(d // 10000, d // 100 % 100, d % 100))
            key = id(ps.values)
            if key not in pids:
                pids[key] = len(psets)
                psets.append(ps)
            pid_of[i] = pids[key]
        pidx = pid_of[inv]
        gkey = (pidx << 40) | (area << 8) | np.minimum(sizes, 255)
        order = np.argsort(gkey, kind="stable")
        sk = gkey[order]
        cuts = np.flatnonzero(sk[1:] != sk[:-1]) + 1
        bounds = [0, *cuts.tolist(), len(order)]
        out = []
        for a, b in itertools.pairwise(bounds):
            rows = order[a:b]
            first = int(rows[0])
            out.append(_Group(rows, int(sizes[first]), psets[int(pidx[first])]))
        return out

    def _chunks(self, part: Part, g: _Group, as_of: dt.date | None) -> list[_Task]:
        n = g.n
        rows = g.rows
        midx = part.offsets[rows][None, :] + np.arange(n, dtype=np.int64)[:, None]
        hs = {name: _simplify(_gather_h(col, rows)) for name, col in part.hcols.items()}
        ms = {name: _simplify(_gather_m(col, midx)) for name, col in part.mcols.items()}
        for name in ("locality", "as_of", "area"):
            if name in hs:
                hs[name] = _constant(hs[name])
        if as_of is not None:
            hs["as_of"] = Date(X.ymd(as_of))
        ps = self._param_values(g.ps)
        step = max(1, TARGET_ELEMENTS // max(n, 1))
        H = len(rows)
        tasks = []
        for s in range(0, H, step):
            e = min(H, s + step)
            tasks.append(_Task(rows[s:e], midx[:, s:e], n, s, e, H, hs, ms, ps))
        return tasks

    def _run_chunk(self, t: _Task, part: Part, as_of: dt.date | None) -> tuple[ChunkResult, int]:
        Hc = t.e - t.s
        try:
            hs = {k: _slice(v, t.s, t.e, t.H) for k, v in t.hs.items()}
            ms = {k: _slice(v, t.s, t.e, t.H) for k, v in t.ms.items()}
            hs["members"] = List("member", t.n, 0, True, None, True, None)
            ms["index"] = Num(np.arange(t.n, dtype=np.int64).reshape(t.n, 1), 1, t.n)
            return self.plan.run(Ctx(Hc, t.n, hs, ms, t.ps)), 0
        except (X.VectorOverflow, X.Unsupported):
            return self._fallback(t, part, as_of), Hc

    def _fallback(self, t: _Task, part: Part, as_of: dt.date | None) -> ChunkResult:
        """Evaluate a chunk household by household with the single evaluator."""

        Hc, n = len(t.rows), t.n
        out = ChunkResult()
        for p in self.plan.programs:
            shape = (n, Hc) if p.member else (Hc,)
            out.programs[p.code] = (
                np.full(shape, NOT_CHECKED, np.int8),
                np.zeros(shape, np.int64),
                np.ones(shape, bool),
                np.full(shape, -1, np.int16),
                np.zeros(shape, bool),
            )
        for name in self.plan.reported:
            out.facts[name] = (np.zeros(Hc, np.int64), np.ones(Hc, bool))
        index = {p.code: (p, {r: i for i, r in enumerate(p.rules)}) for p in self.plan.programs}
        for j, row in enumerate(t.rows.tolist()):
            h = dict(part.contract(row))
            if as_of is not None:
                h["as_of"] = as_of.isoformat()
            try:
                det = self.engine.evaluate(h)
            except InputError:  # pragma: no cover - input was validated when loaded
                continue
            ids = {m["id"]: i for i, m in enumerate(h["members"])}
            for prog in det["programs"]:
                code = prog["program"]
                if code not in index:
                    continue
                plan_prog, rules = index[code]
                at: Any = (ids[prog["members"][0]], j) if plan_prog.member else j
                status, cents, null, first, paid = out.programs[code]
                status[at] = STATUS_CODE[prog["status"]]
                paid[at] = prog["status"] in ("eligible", "gradual_exit") and prog.get("paid", True) is not False
                amt = amount_of(prog)
                null[at] = amt is None
                cents[at] = to_cents(parse_money(amt)) if amt is not None else 0
                failed = first_failed(prog)
                first[at] = rules[failed] if failed is not None else -1
            hh = det["household"]
            for name in self.plan.reported:
                vals, null = out.facts[name]
                if name == "counted_count":
                    vals[j], null[j] = len(hh["counted_members"]), False
                else:
                    v = hh.get(name)
                    null[j] = v is None
                    vals[j] = to_cents(parse_money(v)) if v is not None else 0
        return out


AMOUNT_FIELDS = ("monthly_amount", "annual_amount", "one_off_amount", "monthly_service_value")


def amount_of(prog: dict) -> str | None:
    """A program result's decision amount, whatever it pays (monthly, per year, once, in kind)."""
    return next((prog[f] for f in AMOUNT_FIELDS if prog.get(f) is not None), None)


def first_failed(prog: dict) -> str | None:
    """The id of the first rule of a program result that failed (exclusions are not rules of the program)."""
    return next(
        (r["rule"] for r in prog["reasons"] if r["passed"] is False and r["kind"] not in ("decision", "interaction")), None
    )


def _report(item, progress):
    progress(len(item[0].rows))
    return item


@dataclass
class Prepared:
    part: Part
    as_of: dt.date | None
    tasks: list[_Task]
    groups: int


@dataclass
class _Group:
    rows: np.ndarray
    n: int
    ps: Any


@dataclass
class _Task:
    rows: np.ndarray
    midx: np.ndarray
    n: int
    s: int
    e: int
    H: int
    hs: dict
    ms: dict
    ps: dict


def _narrow(v: V) -> V:
    """int32 numerators and dates where the bound allows: half the memory traffic in every operation."""
    if isinstance(v, Num) and is_arr(v.n):
        return Num(X.narrow(v.n, v.b), v.d, v.b, v.k, v.none)
    if isinstance(v, Date) and is_arr(v.v) and v.v.dtype != np.int32:
        return Date(v.v.astype(np.int32), v.k, v.none)
    if isinstance(v, List) and v.fields:
        out = List(v.kind, v.K, v.depth, v.present, v.mult, v.k, {k: _narrow(f) for k, f in v.fields.items()}, v.multb, v.zeroed)
        if is_arr(v.mult):
            out.mult = X.narrow(v.mult, v.multb)
        return out
    return v


def _gather_h(col: V, rows: np.ndarray) -> V:
    def g(a):
        return a if a.shape[-1] == 1 else a[..., rows]

    return _narrow(col.map(g))


def _gather_m(col: V, midx: np.ndarray) -> V:
    def g(a):
        if a.shape[-1] == 1:
            return a.reshape((*a.shape[:-1], 1, 1))
        return a[..., midx]

    out = col.map(g)
    if isinstance(out, List):
        out.depth = 1
    return _narrow(out)


def _slice(v: V, s: int, e: int, H: int) -> V:
    if s == 0 and e == H:
        return v

    def f(a):
        return a[..., s:e] if a.shape[-1] == H else a

    out = v.map(f)
    if isinstance(v, List):
        out.depth = v.depth
    return out


def _all_or_none(a):
    if isinstance(a, np.ndarray) and a.dtype == bool:
        if a.all():
            return True
        if not a.any():
            return False
    return a


def _simplify(v: V) -> V:
    """Masks that hold everywhere (or nowhere) in a group become scalars, so their logic folds."""
    if isinstance(v, Num):
        return Num(v.n, v.d, v.b, _all_or_none(v.k), _all_or_none(v.none))
    if isinstance(v, Bool | Str):
        v.k = _all_or_none(v.k)
        return v
    if isinstance(v, Date):
        return Date(v.v, _all_or_none(v.k), _all_or_none(v.none))
    if isinstance(v, Set):
        if v.m is not None:
            m = {e: x for e, x in v.m.items() if not (isinstance(x, np.ndarray) and not x.any())}
            return Set(None, m, _all_or_none(v.k))
        return v
    if isinstance(v, List):
        out = List(v.kind, v.K, v.depth, _all_or_none(v.present), v.mult, _all_or_none(v.k), v.fields, v.multb, v.zeroed)
        if out.fields:
            out.fields = {k: _simplify(f) for k, f in out.fields.items()}
        return out
    return v


def _constant(v: V) -> V:
    """A household column that holds one value in the whole group, as a scalar."""
    if isinstance(v, Str | Date) and isinstance(v.v, np.ndarray) and v.v.size and v.k is True:
        first = v.v.flat[0]
        if (v.v == first).all():
            if isinstance(v, Str):
                return Str(int(first))
            if v.none is False:
                return Date(int(first))
    return v

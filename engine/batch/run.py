"""Batch evaluation: group households, evaluate chunks in parallel, collect results.

Households are grouped by (resolved parameter set, area, member count): inside a
group every parameter is one exact scalar, the area is a constant, and members form a
dense ``(n, H)`` block, so per-capita division has a static denominator and member
totals are sums over one axis. A group is one chunk unless it is very large
(``TARGET_ELEMENTS``), and chunks run on a thread pool (numpy releases the GIL in its loops).
Each column is gathered once per part into the chunks' order, and each result array is
put back in input order with one gather (``PartResult``).

A chunk the columnar backend cannot evaluate exactly (an int64 bound that could
overflow, a construct it does not vectorise) is evaluated household by household with
the single evaluator, ``engine.Engine.evaluate``: results are the same either way, and
the count of such households is reported.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.columnar import values as X
from engine.columnar.columns import Part
from engine.columnar.values import Bool, Date, List, Num, Set, Str, V, is_arr
from engine.columnar.vectorize import NOT_CHECKED, STATUS_CODE, ChunkResult, Ctx, Plan, is_granted
from engine.executors.evaluate import Engine
from engine.expr import ast as A
from engine.expr.runtime import Missing
from engine.schema.facts import HOUSEHOLD_FACTS, MEMBER_FIELDS
from engine.schema.model import InputError
from engine.schema.money import parse_money, to_cents

# member slots per chunk. A chunk costs about 3 ms of Python (a pass over every rule) besides 0.14 µs
# per slot (measured on the 2-core machine), so chunks are whole groups unless a group is larger than
# this (in a synthetic population, parts over about 1.3 million households): a 4-byte column of a chunk
# stays within 2 MB.
TARGET_ELEMENTS = 1 << 19


# a program's outputs: name, dtype in input order, value where no chunk wrote one
FIELDS = (
    ("status", np.int8, NOT_CHECKED),
    ("cents", np.int64, 0),
    ("null", bool, True),
    ("first", np.int16, -1),
    ("paid", bool, False),
)


class PartResult:
    """Results of one part. Chunks keep their own outputs in the prepared order: households chunk
    after chunk (``hperm[i]`` is the part's row of position ``i``), members in each chunk's ``(n, Hc)``
    block, slot-major (``mperm``). ``household``, ``member``, ``facts`` and ``member_totals`` give them
    in the part's household and member order, each array put back on first use with one gather
    through the inverse permutation; ``prepared`` gives an array in the prepared order, for
    consumers that do not need input order (counts, sums, a sparse selection)."""

    def __init__(
        self, H: int, M: int, plan: Plan, groups: int = 0, hperm: np.ndarray | None = None, mperm: np.ndarray | None = None
    ):
        self.H, self.M, self.plan, self.groups = H, M, plan, groups
        self.hperm = hperm if hperm is not None else np.arange(H, dtype=np.intp)
        self.mperm = mperm if mperm is not None else np.arange(M, dtype=np.intp)
        self.outputs: list[_Done] = []
        self.fallback = 0  # households evaluated by the single evaluator
        self._fields = {
            f"{p.code}.{f}": (p.code, i, p.member, dtype, fill)
            for p in plan.programs
            for i, (f, dtype, fill) in enumerate(FIELDS)
        }
        self._keys = {m: [k for k, v in self._fields.items() if v[2] == m] for m in (False, True)}
        self._made: dict[str, np.ndarray] = {}
        self._facts: dict[str, tuple[np.ndarray, np.ndarray]] | None = None
        self._totals: dict[str, np.ndarray] | None = None
        self._inv: dict[bool, np.ndarray] = {}

    @property
    def chunks(self) -> int:
        return len(self.outputs)

    @property
    def household(self) -> Mapping[str, np.ndarray]:
        """``<code>.status|cents|null|first|paid`` of household programs, per household."""
        return _Arrays(self, False)

    @property
    def member(self) -> Mapping[str, np.ndarray]:
        """The same for member programs, per member row."""
        return _Arrays(self, True)

    @property
    def facts(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """The reported household facts: (values, null mask) per household."""
        if self._facts is None:
            self._facts = {
                name: (
                    self._place([d.result.facts[name][0] for d in self.outputs], False, np.int64, 0),
                    self._place([d.result.facts[name][1] for d in self.outputs], False, bool, True),
                )
                for name in self.plan.reported
            }
        return self._facts

    @property
    def member_totals(self) -> dict[str, np.ndarray]:
        """Per household, for each member program: ``<code>.granted_members`` (members with a granted
        status) and ``<code>.paid_cents`` (fen paid to its members: paid, with an amount), int64.
        Sums over the member axis of each chunk's ``(n, Hc)`` outputs, made on first use (no
        per-member array in input order is needed for them)."""
        if self._totals is None:
            codes = [p.code for p in self.plan.programs if p.member]
            sums = [_member_sums(d.result, codes) for d in self.outputs]
            keys = [f"{c}.{k}" for c in codes for k in ("granted_members", "paid_cents")]
            self._totals = {k: self._place([s[k] for s in sums], False, np.int64, 0) for k in keys}
        return self._totals

    def prepared(self, key: str) -> np.ndarray:
        """``<code>.<field>`` in the prepared order (see ``hperm`` and ``mperm``), without putting it back."""
        code, i, member, dtype, fill = self._fields[key]
        return self._place([d.result.programs[code][i] for d in self.outputs], member, dtype, fill, inverse=False)

    def assemble(self) -> tuple[Mapping, Mapping, dict]:
        """Every array in input order now (rather than on first use)."""
        for key in self._fields:
            self._array(key)
        return self.household, self.member, self.facts

    def _array(self, key: str) -> np.ndarray:
        got = self._made.get(key)
        if got is None:
            code, i, member, dtype, fill = self._fields[key]
            got = self._made[key] = self._place([d.result.programs[code][i] for d in self.outputs], member, dtype, fill)
        return got

    def _place(self, values: list[np.ndarray], member: bool, dtype, fill, inverse: bool = True) -> np.ndarray:
        spans = [((d.m0, d.m1) if member else (d.h0, d.h1), v) for d, v in zip(self.outputs, values, strict=True)]
        inv = None
        if inverse:
            inv = self._inv.get(member)
            if inv is None:
                inv = self._inv[member] = _inverse(self.mperm if member else self.hperm)
        return _place(spans, self.M if member else self.H, dtype, fill, inv)


class _Arrays(Mapping[str, np.ndarray]):
    """A part's household or member arrays, each made by its ``PartResult`` on first use and kept
    there. Made on each access and not kept by the result: no reference cycle, so a part's results
    are freed as soon as the last reference goes, not at the next garbage collection."""

    def __init__(self, res: PartResult, member: bool):
        self._res, self._member = res, member

    def __getitem__(self, key: str) -> np.ndarray:
        field = self._res._fields.get(key)
        if field is None or field[2] != self._member:
            raise KeyError(key)
        return self._res._array(key)

    def __contains__(self, key: object) -> bool:  # without making the array, as Mapping's would
        field = self._res._fields.get(key) if isinstance(key, str) else None
        return field is not None and field[2] == self._member

    def __iter__(self) -> Iterator[str]:
        return iter(self._res._keys[self._member])

    def __len__(self) -> int:
        return len(self._res._keys[self._member])


def _inverse(perm: np.ndarray) -> np.ndarray:
    inv = np.empty(len(perm), dtype=np.intp)
    inv[perm] = np.arange(len(perm), dtype=np.intp)
    return inv


def _place(spans: list[tuple[tuple[int, int], np.ndarray]], size: int, dtype, fill, inv: np.ndarray | None) -> np.ndarray:
    """One array from chunk outputs covering ``[a, b)`` of the prepared order: in input order through
    ``inv``, the inverse permutation, or in the prepared order when ``inv`` is None.

    Chunk outputs are often broadcasts of one scalar (a program that applies to no one in a
    group): when every chunk holds the same one, the result is that value everywhere."""
    if not spans:
        return np.full(size, fill, dtype=dtype)
    first = spans[0][1]
    if all(_uniform(v) for _ab, v in spans):
        value = first.flat[0] if first.size else fill
        if all(v.size == 0 or v.flat[0] == value for _ab, v in spans):
            # zeros come from calloc: pages the OS maps on first touch, not written here
            return np.zeros(size, dtype=dtype) if value == 0 else np.full(size, value, dtype=dtype)
    flat = np.empty(size, dtype=dtype)
    for (a, b), v in spans:
        np.copyto(flat[a:b].reshape(v.shape), v, casting="unsafe")
    if inv is None:
        return flat
    return np.take(flat, inv, mode="wrap")  # a permutation: every index in range


def _uniform(v: np.ndarray) -> bool:
    """A broadcast of one value (every stride 0), or empty."""
    return v.size == 0 or not any(v.strides)


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
        self._resolved: dict[tuple[int, int], Any] = {}
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

    def _resolve(self, loc: int, ymd: int):
        """The parameter set of an (interned locality, yyyymmdd date) pair; the same pairs recur in every part."""
        got = self._resolved.get((loc, ymd))
        if got is None:
            if len(self._resolved) > 100_000:  # as the policies' own cache: bounded whatever the dates
                self._resolved.clear()
            date = dt.date(ymd // 10000, ymd // 100 % 100, ymd % 100)
            got = self._resolved[(loc, ymd)] = self.engine.policies.resolve(self.I.text(loc), date)
        return got

    # -- evaluation ---------------------------------------------------------------
    def evaluate_part(
        self, part: Part, as_of: dt.date | None = None, progress: Callable[[int], None] | None = None
    ) -> PartResult:
        return self.run(self.prepare(part, as_of), progress)

    def prepare(self, part: Part, as_of: dt.date | None = None) -> Prepared:
        """Group the households and lay their columns out per chunk (the last step of loading).

        Every column is narrowed, then gathered once for the whole part through one permutation:
        households chunk after chunk, and each chunk's members as its ``(n, Hc)`` block, slot-major.
        A chunk's columns are then contiguous slices of those arrays, reshaped."""
        groups = self._groups(part, as_of) if part.H else []
        cuts = [_cuts(len(g.rows), g.n) for g in groups]  # each group's chunks, as household ranges in it
        hperm = np.concatenate([g.rows for g in groups]) if groups else np.zeros(0, np.intp)
        starts = part.offsets[:-1].astype(np.intp, copy=False)
        blocks = [
            (starts[g.rows[s:e]][None, :] + np.arange(g.n, dtype=np.intp)[:, None]).ravel()
            for g, chunks in zip(groups, cuts, strict=True)
            for s, e in chunks
        ]
        mperm = np.concatenate(blocks) if blocks else np.zeros(0, np.intp)
        hflat = {name: _gather(_narrow(col), hperm) for name, col in part.hcols.items()}
        mflat = {name: _gather(_narrow(col), mperm) for name, col in part.mcols.items()}
        tasks: list[_Task] = []
        h0 = m0 = 0  # where the group starts in the prepared order
        for g, chunks in zip(groups, cuts, strict=True):
            n, Hg = g.n, len(g.rows)
            # masks that hold in the whole group become scalars (as they always have: per group)
            hs = {k: _simplify(_span(v, h0, h0 + Hg)) for k, v in hflat.items()}
            ms = {k: _simplify(_span(v, m0, m0 + n * Hg)) for k, v in mflat.items()}
            for name in ("locality", "as_of", "area"):
                if name in hs:
                    hs[name] = _constant(hs[name])
            if as_of is not None:
                hs["as_of"] = Date(X.ymd(as_of))
            ps = self._param_values(g.ps)
            for s, e in chunks:
                chunk_hs = hs if e - s == Hg else {k: _span(v, s, e) for k, v in hs.items()}
                chunk_ms = {k: _member_view(v, n * s, n, e - s) for k, v in ms.items()}
                tasks.append(_Task(g.rows[s:e], n, h0 + s, h0 + e, m0 + n * s, m0 + n * e, chunk_hs, chunk_ms, ps))
            h0 += Hg
            m0 += n * Hg
        return Prepared(part, as_of, tasks, len(groups), hperm, mperm)

    def run(self, prep: Prepared, progress: Callable[[int], None] | None = None) -> PartResult:
        """Evaluate every chunk of a prepared part."""
        part = prep.part
        res = PartResult(part.H, part.M, self.plan, prep.groups, prep.hperm, prep.mperm)
        tasks = prep.tasks
        as_of = prep.as_of

        def work(task):
            return task, *self._run_chunk(task, part, as_of)

        if self.threads > 1 and len(tasks) > 1:
            with ThreadPoolExecutor(self.threads) as pool:
                done = list(pool.map(work, tasks)) if progress is None else [_report(r, progress) for r in pool.map(work, tasks)]
        else:
            done = [work(t) if progress is None else _report(work(t), progress) for t in tasks]
        for task, out, fb in done:
            res.outputs.append(_Done(task.h0, task.h1, task.m0, task.m1, out))
            res.fallback += fb
        return res

    def _groups(self, part: Part, as_of: dt.date | None) -> list[_Group]:
        """Households by (parameter set, area, member count), each group in input order."""
        H = part.H
        loc = np.broadcast_to(np.asarray(part.hcols["locality"].v), (H,))
        if as_of is not None:
            dates = np.broadcast_to(np.int64(X.ymd(as_of)), (H,))
        else:
            dates = np.broadcast_to(np.asarray(part.hcols["as_of"].v), (H,))
        area = np.broadcast_to(np.asarray(part.hcols["area"].v), (H,))
        sizes = part.sizes()
        locs, loc_id = _dense(loc)
        days, day_id = _dense(dates)
        pairs, pair_id = _dense(loc_id * len(days) + day_id)
        pids: dict[int, int] = {}
        psets: list[Any] = []
        pid_of = np.empty(len(pairs), dtype=np.intp)
        for i, u in enumerate(pairs.tolist()):
            ps = self._resolve(int(locs[u // len(days)]), int(days[u % len(days)]))
            key = id(ps.values)
            if key not in pids:
                pids[key] = len(psets)
                psets.append(ps)
            pid_of[i] = pids[key]
        areas, area_id = _dense(area)
        width = int(sizes.max()) + 1
        keys, gid = _dense((pid_of[pair_id] * len(areas) + area_id) * width + sizes)
        # few groups: a stable sort of small integers is a radix sort, linear in H
        order = np.argsort(gid.astype(np.int16 if len(keys) <= 1 << 15 else np.int64), kind="stable")
        bounds = [0, *np.cumsum(np.bincount(gid, minlength=len(keys))).tolist()]
        return [
            _Group(order[a:b], int(k % width), psets[int(k // width // len(areas))])
            for k, a, b in zip(keys.tolist(), bounds, bounds[1:], strict=False)
        ]

    def _run_chunk(self, t: _Task, part: Part, as_of: dt.date | None) -> tuple[ChunkResult, int]:
        Hc = t.h1 - t.h0
        try:
            hs = dict(t.hs)  # the plan stores its steps' values in these: a fresh dict per run
            ms = dict(t.ms)
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


def _cuts(H: int, n: int) -> list[tuple[int, int]]:
    """A group of ``H`` households of ``n`` members cut into chunks of about ``TARGET_ELEMENTS`` member slots."""
    step = max(1, TARGET_ELEMENTS // max(n, 1))
    return [(s, min(H, s + step)) for s in range(0, H, step)]


def _dense(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(a, return_inverse=True)`` for integer codes; a lookup table when their range is small
    (interned text, dates of one year, member counts), with no sort."""
    if not a.size:
        return a[:0], np.zeros(0, dtype=np.intp)
    lo, hi = int(a.min()), int(a.max())
    if lo == hi:
        return a[:1].copy(), np.zeros(len(a), dtype=np.intp)
    if hi - lo > 1 << 20:
        return np.unique(a, return_inverse=True)
    at = a - lo if lo else a
    values = np.flatnonzero(np.bincount(at, minlength=hi - lo + 1))
    lut = np.zeros(hi - lo + 1, dtype=np.intp)
    lut[values] = np.arange(len(values), dtype=np.intp)
    return values + lo, np.take(lut, at, mode="wrap")  # every code is in the table


def _member_sums(out: ChunkResult, codes: list[str]) -> dict[str, np.ndarray]:
    """Per household of a chunk, each member program's granted members and fen paid to members: sums
    over the member axis of its ``(n, Hc)`` outputs. A program that grants or pays no one in the
    chunk gives broadcast zeros (``_place`` fills those without copying)."""
    sums: dict[str, np.ndarray] = {}
    for code in codes:
        status, cents, null, _first, paid = out.programs[code]
        n, Hc = status.shape
        if _uniform(status):
            granted = status.size > 0 and bool(is_granted(status.flat[0]))
            count: np.ndarray = np.broadcast_to(np.int64(n if granted else 0), (Hc,))
        else:
            granted = True
            # members per household fit in int8 (MAX_MEMBERS): a narrow sum, widened when placed
            count = np.add.reduce(is_granted(status).view(np.int8), axis=0, dtype=np.int8 if n < 128 else np.int64)
        if (
            not granted
            or (_uniform(cents) and not (cents.size and cents.flat[0]))
            or (_uniform(paid) and not (paid.size and paid.flat[0]))
        ):
            paid_cents: np.ndarray = np.broadcast_to(np.int64(0), (Hc,))
        else:
            paid_cents = np.add.reduce(cents, axis=0, dtype=np.int64, where=paid & ~null, initial=0)
        sums[code + ".granted_members"] = count
        sums[code + ".paid_cents"] = paid_cents
    return sums


@dataclass
class Prepared:
    part: Part
    as_of: dt.date | None
    tasks: list[_Task]
    groups: int
    hperm: np.ndarray  # the part's households in chunk order
    mperm: np.ndarray  # its members in chunk order, each chunk's (n, Hc) block slot-major


@dataclass
class _Done:
    """One evaluated chunk: where it sits in the prepared order, and its outputs."""

    h0: int
    h1: int
    m0: int
    m1: int
    result: ChunkResult


@dataclass
class _Group:
    rows: np.ndarray
    n: int
    ps: Any


@dataclass
class _Task:
    rows: np.ndarray  # the chunk's households (rows of the part)
    n: int  # members per household
    h0: int  # households h0:h1 and members m0:m1 of the prepared order
    h1: int
    m0: int
    m1: int
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


def _gather(col: V, perm: np.ndarray) -> V:
    """A column's rows in ``perm`` order (arrays of one row are constants, kept as they are)."""

    def g(a):
        # every index is in range: mode="wrap" skips the bounds check that "raise" makes on each
        return a if a.shape[-1] == 1 else np.take(a, perm, axis=-1, mode="wrap")

    return col.map(g)


def _span(v: V, a: int, b: int) -> V:
    """Rows ``a:b`` of a column, as views."""

    def f(x):
        return x if x.shape[-1] == 1 else x[..., a:b]

    return v.map(f)


def _member_view(v: V, a: int, n: int, Hc: int) -> V:
    """Member rows ``a:a + n * Hc`` of a group's columns as a chunk's ``(n, Hc)`` block (a view)."""
    b = a + n * Hc

    def f(x):
        if x.shape[-1] == 1:
            return x.reshape((*x.shape[:-1], 1, 1))
        return x[..., a:b].reshape((*x.shape[:-1], n, Hc))

    out = v.map(f)
    if isinstance(out, List):
        out.depth = 1
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

"""Compile a checked rule book into a columnar evaluator.

The single-household backend (``engine.expr.compile``) turns each checked
expression tree into closures over one household's facts. This module walks the
*same* trees (``engine.book.rules.RuleBook``: fact steps, program steps with their guards
and gates, decision clauses, ``applies_to``) and turns each node into a closure over
columns of a chunk of households (``engine.columnar.values``). Nothing here knows any
program: a new rule file is vectorised by the same code, and a construct this
backend cannot vectorise raises ``Unsupported`` so the chunk is evaluated by the
single-household evaluator instead (never a silent difference).

The choices a decision makes are fields of the plan (``engine.book.rules``: ``Clause.granted``,
``Program.stop_clause``, ``Program.outside``, ``Program.rule_ids``, ``Part.required``) or of
``engine.book.statuses``, read here as in ``engine.executors.evaluate``; what remains below is
the same three-valued logic written over columns:

* three-valued logic (``False and missing`` is false, ``True and missing`` unknown);
* ``none`` operands: ordering with ``none`` is false, ``x in S`` with ``none`` is false;
* program steps in order: ``let`` values always; a check whose ``applies_if`` guard is
  false is stored false and not counted as failed; a guard that is unknown makes a
  non-false outcome unknown (``engine.executors.outcome.guarded``, here as masks); after a
  failed ``gate`` later checks are stored false and ``Program.stop_clause`` decides;
* decision clauses in order: the first whose condition holds decides; an unknown
  condition makes the status ``needs_info``; amounts (or ``parts``) of the chosen
  clause, exact; a missing amount is ``null`` (``outcome.parts_amount``: an unknown required
  part makes it unknown, another counts as 0);
* member programs for every member, skipped (stored as ``Program.outside``, not reported)
  where ``applies_to`` is false; programs in the rule book's dependency order.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.book.interactions import Exclusion, ExclusionPlan
from engine.book.rules import Program, RuleBook, program_trees
from engine.book.statuses import STATUSES, granted_of
from engine.columnar import values as X
from engine.columnar.values import (
    NONE,
    RECORD,
    TRUE,
    Bool,
    Date,
    List,
    Num,
    Set,
    Str,
    Unsupported,
    band,
    bnot,
    bor,
    is_arr,
    pyb,
    select,
)
from engine.expr import ast as A

STATUS_CODE = {s: i for i, s in enumerate(STATUSES)}  # eligible 0, ineligible 1, gradual_exit 2, needs_info 3
ELIGIBLE, INELIGIBLE, GRADUAL_EXIT, NEEDS_INFO = (
    STATUS_CODE[s] for s in ("eligible", "ineligible", "gradual_exit", "needs_info")
)
NOT_CHECKED = -1
# the status codes whose ``<program>.granted`` is true, and those where it is unknown (needs_info)
GRANTING = tuple(STATUS_CODE[s] for s in STATUSES if granted_of(s) is True)
UNDECIDED = tuple(STATUS_CODE[s] for s in STATUSES if granted_of(s) is None)


class Ctx:
    """The columns of one chunk: household store, member store, parameters, loop variables."""

    __slots__ = ("H", "hs", "loop", "ms", "n", "ps")

    def __init__(self, H: int, n: int, hs: dict, ms: dict, ps: dict):
        self.H, self.n, self.hs, self.ms, self.ps = H, n, hs, ms, ps
        self.loop: dict[str, tuple[List, int]] = {}


Fn = Any


# ---------------------------------------------------------------------------------
# expressions
# ---------------------------------------------------------------------------------


class Compiler:
    def __init__(self, member_keys: set[str], interner: X.Interner):
        self.member_keys = member_keys
        self.I = interner

    def c(self, node: A.Node, depth: int) -> Fn:
        return getattr(self, "_" + type(node).__name__)(node, depth)

    # -- leaves --------------------------------------------------------------------
    def _Literal(self, node: A.Literal, depth: int) -> Fn:
        kind = node.kind
        if kind == "bool":
            v: X.V = Bool(bool(node.value))
        elif kind == "int":
            v = Num(int(node.value))
        elif kind == "number":
            v = X.num_scalar(node.value)
        elif kind == "str":
            v = Str(self.I.id(node.value))
        elif kind == "none":
            v = NONE
        else:  # pragma: no cover - the parser makes no other literal
            raise Unsupported(f"literal {kind}")
        return lambda ctx: v

    def _SetLit(self, node: A.SetLit, depth: int) -> Fn:
        v = Set(frozenset(self.I.id(item.value) for item in node.items))  # type: ignore[attr-defined]
        return lambda ctx: v

    def _Name(self, node: A.Name, depth: int) -> Fn:
        path = node.path
        binding = node.binding
        if binding == "var":
            return lambda ctx: RECORD
        if binding == "field":
            var = node.var

            def field_(ctx: Ctx):
                lst, at = ctx.loop[var]
                if lst.kind == "member":
                    return X.view_member(ctx.ms[path], at)
                return lst.fields[path]

            return field_
        if binding == "param":
            return lambda ctx: ctx.ps[path]
        if path in self.member_keys:
            return lambda ctx: ctx.ms[path]
        return lambda ctx: ctx.hs[path]

    # -- operators -----------------------------------------------------------------
    def _Unary(self, node: A.Unary, depth: int) -> Fn:
        f = self.c(node.operand, depth)
        if node.op == "not":

            def not_(ctx):
                a = f(ctx)
                return Bool(bnot(a.v), a.k)

            return not_

        return lambda ctx: X.neg(f(ctx))

    def _Binary(self, node: A.Binary, depth: int) -> Fn:
        op = node.op
        lf, rf = self.c(node.left, depth), self.c(node.right, depth)
        if op == "and":

            def and_(ctx):
                a = lf(ctx)
                if a.k is True:
                    if a.v is False:
                        return a
                    if a.v is True:
                        return rf(ctx)
                b = rf(ctx)
                if b.k is True and b.v is False:
                    return b
                if a.k is True and b.k is True:
                    return Bool(band(a.v, b.v))
                af = band(a.k, bnot(a.v))
                bf = band(b.k, bnot(b.v))
                k = bor(bor(af, bf), band(a.k, b.k))
                return Bool(band(a.v, b.v), k)

            return and_
        if op == "or":

            def or_(ctx):
                a = lf(ctx)
                if a.k is True:
                    if a.v is True:
                        return a
                    if a.v is False:
                        return rf(ctx)
                b = rf(ctx)
                if b.k is True and b.v is True:
                    return b
                if a.k is True and b.k is True:
                    return Bool(bor(a.v, b.v))
                at = band(a.k, a.v)
                bt = band(b.k, b.v)
                k = bor(bor(at, bt), band(a.k, b.k))
                return Bool(bor(a.v, b.v), k)

            return or_
        if op in ("in", "not in"):
            negate = op == "not in"
            interner = self.I

            def in_(ctx):
                a, s = lf(ctx), rf(ctx)
                k = band(a.k, s.k)
                if s.m is None:
                    if is_arr(a.v):
                        if len(s.c) <= 6:
                            v = False
                            for code in s.c:
                                v = bor(v, a.v == code)
                        else:
                            v = interner.member_table(s.c).take(a.v)
                    else:
                        v = a.v in s.c
                else:
                    if is_arr(a.v):
                        v = False
                        for e, mask in s.m.items():
                            v = bor(v, band(a.v == e, mask))
                    else:
                        v = s.m.get(a.v, False)
                if negate:
                    v = bnot(v)
                return Bool(pyb(v), k)

            return in_
        if op in ("==", "!=", "<", "<=", ">", ">="):

            def cmp_(ctx):
                return _compare(op, lf(ctx), rf(ctx))

            return cmp_
        arith = {"+": lambda a, b: X.add(a, b, 1), "-": lambda a, b: X.add(a, b, -1), "*": X.mul, "/": X.div}[op]
        return lambda ctx: arith(lf(ctx), rf(ctx))

    def _IfElse(self, node: A.IfElse, depth: int) -> Fn:
        cf, tf, of = self.c(node.cond, depth), self.c(node.then, depth), self.c(node.other, depth)
        kind = node.type.kind if node.type is not None else "none"

        def if_else(ctx):
            c = cf(ctx)
            if not is_arr(c.k) and not is_arr(c.v):
                if c.k is False:
                    return X.missing_of(kind)
                return tf(ctx) if c.v else of(ctx)
            return _ifelse(c, tf(ctx), of(ctx))

        return if_else

    # -- calls ----------------------------------------------------------------------
    def _Call(self, node: A.Call, depth: int) -> Fn:
        f = node.func
        if f == "date":
            v = Date(X.ymd(dt.date.fromisoformat(node.args[0].value)))  # type: ignore[attr-defined]
            return lambda ctx: v
        fs = [self.c(a, depth) for a in node.args]
        if f in ("min", "max"):
            pick_max = f == "max"
            return lambda ctx: X.minmax([g(ctx) for g in fs], pick_max)
        if f == "len":
            (g,) = fs
            return lambda ctx: _len(g(ctx), depth)
        if f == "has_any":
            g1, g2 = fs
            return lambda ctx: _has_any(g1(ctx), g2(ctx))
        if f in ("years_between", "months_between", "days_between"):
            g1, g2 = fs
            op = getattr(X, f)
            bound = {"years_between": 10_000, "months_between": 120_000, "days_between": 3_700_000}[f]

            def between(ctx):
                a, b = g1(ctx), g2(ctx)
                return Num(op(a.v, b.v), 1, bound, band(a.k, b.k))

            return between
        if f == "add_months":
            g1, g2 = fs

            def add_months(ctx):
                a, m = g1(ctx), g2(ctx)
                if m.d != 1:
                    raise Unsupported("add_months with a fractional month count")
                return Date(X.add_months(a.v, m.n), band(a.k, m.k))

            return add_months
        if f == "within":
            g1, g2 = fs
            interner = self.I
            return lambda ctx: _within(g1(ctx), g2(ctx), interner)
        raise Unsupported(f"function {f}")

    def _Comprehension(self, node: A.Comprehension, depth: int) -> Fn:
        src = self.c(node.source, depth)
        inner = depth + 1
        cf = self.c(node.cond, inner) if node.cond is not None else None
        func = node.func
        ef = self.c(node.expr, inner) if func != "list" else None
        var = node.var
        direct = isinstance(node.expr, A.Name) and node.expr.binding == "field" and node.expr.var == var
        ndim = depth + 2  # slot axis + context axes + households

        def comp(ctx: Ctx):
            lst = src(ctx)
            if not isinstance(lst, List):
                raise Unsupported("iteration over a non-list")
            lst = X.lift(lst, depth)
            saved = ctx.loop.get(var)
            ctx.loop[var] = (lst, depth)
            try:
                c = cf(ctx) if cf is not None else TRUE
                if lst.kind == "record" and c is not TRUE and c.k is True and is_arr(c.v) and c.v.size == lst.K and lst.K:
                    # the condition depends on the slot only (income type of a wide column):
                    # keep the matching slots and evaluate the body on them alone
                    sel = np.flatnonzero(c.v.reshape(lst.K))
                    lst = _take_slots(lst, sel)
                    ctx.loop[var] = (lst, depth)
                    c = TRUE
                e = ef(ctx) if ef is not None else None
            finally:
                if saved is None:
                    ctx.loop.pop(var, None)
                else:
                    ctx.loop[var] = saved
            return _reduce(func, lst, c, e, ndim, direct and c is TRUE and lst.zeroed)

        return comp


def _take_slots(lst: List, sel: np.ndarray) -> List:
    K = lst.K
    if len(sel) and sel[-1] - sel[0] == len(sel) - 1:
        pick: Any = slice(int(sel[0]), int(sel[-1]) + 1)  # contiguous: a view, no copy
    else:
        pick = sel

    def take(a):
        return a[pick] if a.shape[0] == K else a

    out = lst.map(take, lambda a: a)
    out.K = len(sel)
    out.depth = lst.depth
    return out


def _reduce(func: str, lst: List, c: Bool, e, ndim: int, zeroed: bool = False):
    K = lst.K
    P = X.full_rank(lst.present, ndim)
    mult = lst.mult
    keep = band(P, band(c.k, c.v))
    unk = band(P, bnot(c.k))
    if func == "list":
        present = X.full_rank(keep, ndim) if is_arr(keep) else keep
        k = band(lst.k, bnot(X.any0(unk, K, ndim)))
        return List(lst.kind, K, lst.depth, present, mult, k, lst.fields, lst.multb)
    if func == "count":
        w = keep if mult is None else select(keep, mult, 0)
        n = X.sum0(w, K, ndim)
        k = band(lst.k, bnot(X.any0(unk, K, ndim)))
        return Num(n, 1, K * lst.multb, pyb(k))
    if func == "sum":
        if not isinstance(e, Num):
            raise Unsupported("sum over a non-number")
        miss = bor(unk, band(keep, bnot(e.k)))
        # a field of a list whose absent slots hold zero needs no mask to be summed
        val = e.n if zeroed and mult is None else select(keep, e.n, 0)
        if mult is not None:
            val = val * mult
        bound = e.b * K * lst.multb
        X._check(bound)
        total = X.sum0(val, K, ndim, bound)
        k = band(lst.k, bnot(X.any0(miss, K, ndim)))
        return Num(total, e.d, bound if is_arr(total) else None, pyb(k))
    if func in ("any", "all"):
        if not isinstance(e, Bool):
            raise Unsupported(f"{func} over a non-boolean")
        miss = bor(unk, band(keep, bnot(e.k)))
        U = X.any0(miss, K, ndim)
        if func == "any":
            T = X.any0(band(keep, band(e.k, e.v)), K, ndim)
            return Bool(pyb(T), pyb(band(lst.k, bor(T, bnot(U)))))
        F = X.any0(band(keep, band(e.k, bnot(e.v))), K, ndim)
        return Bool(pyb(bnot(F)), pyb(band(lst.k, bor(F, bnot(U)))))
    raise Unsupported(f"aggregate {func}")


def _len(v, depth: int) -> Num:
    if isinstance(v, List):
        ndim = depth + 2
        lst = X.lift(v, depth)
        P = X.full_rank(lst.present, ndim)
        w = P if lst.mult is None else select(P, lst.mult, 0)
        return Num(X.sum0(w, lst.K, ndim), 1, lst.K * lst.multb, lst.k)
    if isinstance(v, Set):
        if v.m is None:
            return Num(len(v.c), 1, None, v.k)
        total: Any = 0
        for mask in v.m.values():
            total = total + (mask.astype(np.int64) if is_arr(mask) else int(mask))
        return Num(total, 1, len(v.m), v.k)
    raise Unsupported("len of a non-list")


def _has_any(a: Set, b: Set) -> Bool:
    k = band(a.k, b.k)
    if a.m is None and b.m is None:
        return Bool(bool(a.c & b.c), k)
    if a.m is None:
        a, b = b, a
    v: Any = False
    if b.m is None:
        for e in b.c:
            v = bor(v, a.m.get(e, False))
    else:
        for e, mask in a.m.items():
            if e in b.m:
                v = bor(v, band(mask, b.m[e]))
    return Bool(pyb(v), k)


def _within(a: Str, b: Str, interner: X.Interner) -> Bool:
    """``within(code, locality)``: same province / prefecture / county as the locality's level requires."""
    k = band(a.k, b.k)
    p2, p4, lvl = interner.division_tables()
    a2 = p2[a.v]
    if bool(np.any((a2 < 0) & (a.v != 0))):
        raise Unsupported("within() on text that is not a division code")
    if not is_arr(b.v):
        level = int(lvl[b.v])
        if int(p2[b.v]) < 0:
            raise Unsupported("within() against text that is not a division code")
        if level == 0:
            v: Any = a.v != 0
        elif level == 1:
            v = a2 == p2[b.v]
        elif level == 2:
            v = p4[a.v] == p4[b.v]
        else:
            v = a.v == b.v
        return Bool(pyb(v), k)
    if bool((p2[b.v] < 0).any()):
        raise Unsupported("within() against text that is not a division code")
    lv = lvl[b.v]
    if lv.size and lv.min() == lv.max() == 3:
        return Bool(a.v == b.v, k)  # every locality is a county: the same code
    same2 = a2 == p2[b.v]
    same4 = p4[a.v] == p4[b.v]
    v = ((lv == 0) & (a.v != 0)) | (same2 & ((lv == 1) | (same4 & ((lv == 2) | (a.v == b.v)))))
    return Bool(v, k)


def _compare(op: str, a, b) -> Bool:
    if isinstance(a, Num) and isinstance(b, Num):
        return X.num_compare(op, a, b)
    if a is NONE or b is NONE:
        other = b if a is NONE else a
        if other is NONE:
            v: Any = True
        elif isinstance(other, Str):
            v = other.v == 0
        elif isinstance(other, Num | Date):
            v = other.none
        else:
            raise Unsupported("comparison with none")
        if op == "!=":
            v = bnot(v)
        elif op != "==":
            v = False
        return Bool(pyb(v), True if other is NONE else other.k)
    if isinstance(a, Str) and isinstance(b, Str):
        if op not in ("==", "!="):
            raise Unsupported("ordering of text")
        return Bool(pyb(X.compare_raw(op, a.v, b.v)), band(a.k, b.k))
    if isinstance(a, Date) and isinstance(b, Date):
        v = X.compare_raw(op, a.v, b.v)
        return Bool(pyb(X._with_none(op, v, a.none, b.none)), band(a.k, b.k))
    if isinstance(a, Bool) and isinstance(b, Bool) and op in ("==", "!="):
        return Bool(pyb(X.compare_raw(op, a.v, b.v)), band(a.k, b.k))
    if isinstance(a, Set) and isinstance(b, Set) and a.m is None and b.m is None and op in ("==", "!="):
        return Bool((a.c == b.c) == (op == "=="), band(a.k, b.k))
    raise Unsupported(f"comparison {op} of {a.kind} and {b.kind}")


def _ifelse(c: Bool, a, b):
    cv = c.v
    k = band(c.k, select(cv, a.k, b.k)) if a is not NONE and b is not NONE else None
    if a is NONE and b is NONE:
        return NONE
    if a is NONE or b is NONE:
        val = b if a is NONE else a
        is_none = cv if a is NONE else bnot(cv)
        k = band(c.k, select(is_none, True, val.k))
        if isinstance(val, Str):
            return Str(select(is_none, 0, val.v), k)
        if isinstance(val, Num):
            return Num(val.n, val.d, val.b, k, bor(is_none, val.none))
        if isinstance(val, Date):
            return Date(val.v, k, bor(is_none, val.none))
        raise Unsupported("optional value of this type")
    if isinstance(a, Num) and isinstance(b, Num):
        an, bn, d, ab, bb = X.align(a, b)
        n = select(cv, an, bn)
        if is_arr(n) and n.dtype != np.int64:
            n = n.astype(np.int64)
        return Num(n, d, max(ab, bb) if is_arr(n) else None, k, select(cv, a.none, b.none))
    if isinstance(a, Bool) and isinstance(b, Bool):
        return Bool(select(cv, a.v, b.v), k)
    if isinstance(a, Str) and isinstance(b, Str):
        return Str(select(cv, a.v, b.v), k)
    if isinstance(a, Date) and isinstance(b, Date):
        return Date(select(cv, a.v, b.v), k, select(cv, a.none, b.none))
    raise Unsupported(f"if/else choosing between {a.kind} values per household")


# ---------------------------------------------------------------------------------
# rule book
# ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StepPlan:
    kind: str  # fact | let | check | use
    name: str
    member: bool  # stored in the member store
    fn: Fn = None
    guard: Fn = None
    gate: bool = False
    rule: int = -1  # index into ProgramPlan.rules for checks and uses


@dataclass(frozen=True, slots=True)
class ClausePlan:
    status: int
    when: Fn
    amount: Fn
    parts: tuple[tuple[Fn, bool], ...]  # (value, required)


@dataclass(frozen=True, slots=True)
class ProgramPlan:
    code: str
    name: str
    member: bool
    applies: Fn
    steps: tuple[StepPlan, ...]
    decision: tuple[ClausePlan, ...]
    rules: tuple[str, ...]  # ids of checks and uses, in order: the "first failed rule" vocabulary
    pays: str  # what the decision amount is: monthly | annual | one_off | in_kind | none
    stop_clause: int  # the clause that decides once a gate has failed
    outside: int  # the status code stored for a member outside ``applies_to``


@dataclass
class ChunkResult:
    """Per-program outputs of one chunk: int8 status, cents (+ null mask), int8 first failed rule, paid mask.

    ``paid`` is false for a granted program that an exclusion of ``rules/interactions.yaml``
    does not pay (the person stays eligible), as in ``engine.book.interactions``."""

    programs: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=dict)
    facts: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)


# household facts reported beside the programs (the determination's "household" block)
REPORTED_FACTS = ("counted_count", "monthly_income", "deductions", "per_capita_income", "dibao_standard")


class Plan:
    """A rule book compiled for columns. Build once, run on every chunk."""

    def __init__(self, book: RuleBook, interner: X.Interner, programs: list[str] | None = None):
        book.raise_if_errors()
        self.book = book
        self.I = interner
        comp = Compiler(book.member_keys, interner)
        wanted = _with_dependencies(book, programs) if programs is not None else None
        self.codes = wanted
        kept = [p for p in book.programs if wanted is None or p.code in wanted]
        self.reported = [f for f in REPORTED_FACTS if f in book.household_names]
        self.live = _live_names(book, kept, self.reported)
        self.fact_steps: list[StepPlan] = []
        for s in book.facts.steps:  # type: ignore[union-attr]
            if s.name not in self.live:
                continue  # only explained, never decides: not needed for columns
            member = s.scope == "member"
            self.fact_steps.append(StepPlan("fact", s.name, member, comp.c(s.node, 1 if member else 0)))
        self.programs: list[ProgramPlan] = [self._program(prog, comp) for prog in kept]
        self.exclusions: ExclusionPlan = book.interactions  # the book's lowered plan, executed as is
        self.fact_kinds = {f: book.household_names[f].kind for f in self.reported}
        for p in self.programs:
            if len(p.rules) > 120:
                raise ValueError(f"{p.code}: more than 120 rules in one program")

    def _program(self, prog: Program, comp: Compiler) -> ProgramPlan:
        member = prog.scope == "member"
        depth = 1 if member else 0
        steps: list[StepPlan] = []
        rule = 0  # the index of a check or use in ``prog.rule_ids``
        for s in prog.steps:
            if s.kind == "let":
                steps.append(StepPlan("let", s.name, member, comp.c(s.node, depth)))
                continue
            if s.kind == "use":
                steps.append(StepPlan("use", s.name, s.scope == "member", gate=s.gate, rule=rule))
            else:
                guard = comp.c(s.guard_node, depth) if s.guard_node is not None else None
                steps.append(StepPlan("check", s.name, member, comp.c(s.node, depth), guard, s.gate, rule))
            rule += 1
        clauses = tuple(
            ClausePlan(
                STATUS_CODE[c.status],
                comp.c(c.when_node, depth) if c.when_node is not None else None,
                comp.c(c.amount_node, depth) if c.amount_node is not None else None,
                tuple((comp.c(part.node, depth), part.required) for part in c.parts),
            )
            for c in prog.decision
        )
        applies = comp.c(prog.applies_node, 1) if prog.applies_node is not None else None
        return ProgramPlan(
            prog.code,
            prog.name,
            member,
            applies,
            tuple(steps),
            clauses,
            prog.rule_ids,
            prog.pays,
            prog.stop_clause,
            STATUS_CODE[prog.outside],
        )

    # -- running ----------------------------------------------------------------
    def run(self, ctx: Ctx) -> ChunkResult:
        res = ChunkResult()
        hs, ms = ctx.hs, ctx.ms
        for st in self.fact_steps:
            v = st.fn(ctx)
            if st.member:
                ms[st.name] = _canon_member(v)
            else:
                hs[st.name] = v
        for name in self.reported:
            res.facts[name] = _present(hs[name], (ctx.H,), self.fact_kinds[name])
        for p in self.programs:
            res.programs[p.code] = self._run_program(p, ctx)
        self._exclusions(ctx, res)
        return res

    # -- exclusions: the book's ExclusionPlan (engine.book.interactions), vectorised ---------
    def _exclusions(self, ctx: Ctx, res: ChunkResult) -> None:
        """Mark which granted programs are paid, executing the plan's steps in order."""
        paid: dict[str, np.ndarray] = {}
        for p in self.programs:
            paid[p.code] = is_granted(res.programs[p.code][0])
        plans = {p.code: p for p in self.programs}
        for ex in self.exclusions:
            codes = [c for c in ex.programs if c in plans]  # programs this Plan runs, in the plan's rank order
            if len(codes) < 2:
                continue
            if ex.kind == "mixed":
                self._resolve_mixed(ex, paid, plans, ctx)
            else:
                self._resolve(ex, codes, paid, res, plans)
        for code, (status, cents, null, first) in list(res.programs.items()):
            res.programs[code] = (status, cents, null, first, paid[code])

    @staticmethod
    def _resolve(ex: Exclusion, codes: list[str], paid: dict, res: ChunkResult, plans: dict) -> None:
        granted = [paid[c] for c in codes]  # in the plan's rank order
        if ex.keep == "first":
            paid.update(_first_paid(codes, paid))
            return
        # higher_amount: the higher monthly amount (as presented, to the fen); ties and unknown amounts
        # fall back to the plan's choice (ex.tie, ex.unknown: "first", the earliest granted in rank order)
        count = sum(g.astype(np.int8) for g in granted)
        unknown = np.zeros_like(granted[0])
        best_val = np.full(granted[0].shape, -1, np.int64)
        best = np.full(granted[0].shape, -1, np.int8)
        first = np.full(granted[0].shape, -1, np.int8)
        for i in range(len(codes) - 1, -1, -1):
            first = np.where(granted[i], np.int8(i), first)
        for i, c in enumerate(codes):
            _st, cents, null, _f = res.programs[c]
            known = ~null if plans[c].pays == "monthly" else np.zeros_like(granted[i])
            unknown = unknown | (granted[i] & ~known)
            better = granted[i] & known & (cents > best_val)  # strict: an equal later amount does not win (tie "first")
            best_val = np.where(better, cents, best_val)
            best = np.where(better, np.int8(i), best)
        winner = np.where(unknown, first, best)  # unknown "first"
        for i, c in enumerate(codes):
            paid[c] = granted[i] & ((count < 2) | (winner == i))

    def _resolve_mixed(self, ex: Exclusion, paid: dict, plans: dict, ctx: Ctx) -> None:
        """The plan's household program with its member programs, for the members it covers."""
        hc = ex.household
        if hc not in plans:
            return
        hh_paid = paid[hc]
        if not hh_paid.any():
            return
        shape = (ctx.n, ctx.H)
        counted = ctx.hs["counted_members"].present if "counted_members" in ctx.hs else True
        counted = np.broadcast_to(np.asarray(counted, dtype=bool), shape)
        members = [c for c in ex.programs if c in plans and plans[c].member]  # rank order
        if not members:
            return
        first = _first_paid(members, paid)  # the member program each member is paid first
        found = _union(first.values())
        member_first = _union(first[c] for c in members if c in ex.members_before)
        covered = found & counted
        active = hh_paid & covered.any(axis=0)
        if not active.any():
            return
        not_first = covered if member_first is False else covered & ~member_first
        all_first = ~not_first.any(axis=0)
        full = ~(counted & ~covered).any(axis=0)  # every member the household program covers
        paid[hc] = hh_paid & ~(active & all_first & full)
        lose = (active & ~all_first)[None, :] & not_first
        if not lose.any():
            return
        for c in members:  # a losing member loses the first of the group's programs paid to them
            paid[c] = paid[c] & ~(lose & first[c])

    def _run_program(self, p: ProgramPlan, ctx: Ctx):
        member = p.member
        store = ctx.ms if member else ctx.hs
        shape = (ctx.n, ctx.H) if member else (ctx.H,)
        applies: Any = True
        if p.applies is not None:
            a = p.applies(ctx)
            applies = bnot(band(a.k, bnot(a.v)))  # not known to be false
        running: Any = True  # rows where no gate has failed yet
        unfailed: Any = True  # rows where no rule has failed yet
        first: Any = 0  # 1 + index of the first failed rule (0: none)
        for st in p.steps:
            kind = st.kind
            if kind == "let":
                v = st.fn(ctx)
                store[st.name] = _canon_member(v) if member else v
                continue
            if kind == "use":
                val = (ctx.ms if st.member else ctx.hs)[st.name]
                failed = band(band(val.k, bnot(val.v)), running)
            else:
                on = running
                gmiss: Any = False
                if st.guard is not None:
                    g = st.guard(ctx)
                    on = band(on, bnot(band(g.k, bnot(g.v))))  # a false guard: stored false, not failed
                    gmiss = bnot(g.k)
                val = st.fn(ctx)
                vfalse = band(val.k, bnot(val.v))
                k = val.k if gmiss is False else band(val.k, bnot(band(gmiss, bnot(vfalse))))
                out = Bool(band(val.v, on), bor(k, bnot(on)) if k is not True else True)
                store[st.name] = _canon_member(out) if member else out
                failed = band(vfalse, on)
            if failed is False:
                continue
            fresh = band(failed, unfailed)
            if fresh is not False:
                rule = st.rule + 1
                if is_arr(fresh):
                    inc = fresh.view(np.int8) * np.int8(rule)
                    first = inc if not is_arr(first) and first == 0 else first + inc
                elif not is_arr(first):
                    first = rule
                else:
                    first = first + np.int8(rule) * (unfailed.view(np.int8) if is_arr(unfailed) else np.int8(1))
                unfailed = band(unfailed, bnot(failed))
            if st.gate:
                running = band(running, bnot(failed))

        # decision: rows take the first clause whose condition holds; unknown -> needs_info
        stopped = bnot(running)
        undecided = running
        takes: list[Any] = []
        for cl in p.decision:
            if undecided is False:
                takes.append(False)
                continue
            if cl.when is None:
                takes.append(undecided)
                undecided = False
                continue
            w = cl.when(ctx)
            take = band(undecided, band(w.k, w.v))
            takes.append(take)
            undecided = band(undecided, band(w.k, bnot(w.v)))
        takes[p.stop_clause] = bor(takes[p.stop_clause], stopped)
        status: Any = NEEDS_INFO
        for cl, take in zip(p.decision, takes, strict=True):
            status = _pick8(take, cl.status, status)
        # amounts of the chosen clause, exact
        amount = Num(0)
        none: Any = True
        for cl, take in zip(p.decision, takes, strict=True):
            if take is False or (cl.amount is None and not cl.parts):
                continue
            if is_arr(take) and not take.any():
                continue
            if cl.amount is not None:
                a = cl.amount(ctx)
                a_none = bnot(a.k)
            else:
                a, a_none = _parts(cl.parts, ctx)
            if not is_arr(amount.n) and amount.n == 0:
                n = select(take, a.n, 0)
                amount = Num(n, a.d, a.b if is_arr(n) else None)
            else:
                an, bn, d, ab, bb = X.align(a, amount)
                bound = ab + bb
                n = select(take, X.fit(an, bound), X.fit(bn, bound))
                amount = Num(n, d, max(ab, bb) if is_arr(n) else None)
            none = select(take, a_none, none)
        # publish the results for later programs
        if applies is not True:
            status_store = _pick8(bnot(applies), p.outside, status)
            none = bor(none, bnot(applies))
            first = first * applies.view(np.int8) if is_arr(applies) else (first if applies else 0)
        else:
            status_store = status
        code = p.code
        if code + ".status" in self.live:
            st_codes = status_store + np.int8(1) if is_arr(status_store) else status_store + 1
            store[code + ".status"] = _canon_member(Str(st_codes)) if member else Str(st_codes)
        if code + ".granted" in self.live:
            granted: Any = is_granted(status_store)
            gk: Any = bnot(_among(status_store, UNDECIDED))
            g = Bool(granted, gk)
            store[code + ".granted"] = _canon_member(g) if member else g
        if code + ".amount" in self.live:
            am = Num(amount.n, amount.d, amount.b, True, none)
            store[code + ".amount"] = _canon_member(am) if member else am
        # outputs
        status_out = _pick8(bnot(applies), NOT_CHECKED, status) if applies is not True else status
        cents = X.to_cents(amount)
        return (
            np.broadcast_to(np.asarray(status_out, dtype=np.int8), shape),
            np.broadcast_to(np.asarray(cents), shape),
            np.broadcast_to(np.asarray(none, dtype=bool), shape),
            np.broadcast_to(np.asarray(first, dtype=np.int8) - np.int8(1), shape),
        )


def is_granted(status):
    """Where a status code (array or scalar) is a granted one (engine/book/statuses.py decides which)."""
    return _among(status, GRANTING)


def _among(status, codes: tuple[int, ...]):
    """Where a status code (array or scalar) is one of ``codes``: comparisons, far cheaper than a
    table lookup by fancy indexing."""
    if not is_arr(status):
        return status in codes
    out = status == codes[0]
    for c in codes[1:]:
        out |= status == c
    return out


def _first_paid(codes: list[str], paid: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per program of ``codes`` (in rank order): the rows where it is the first of them that is paid."""
    out: dict[str, np.ndarray] = {}
    seen = None
    for c in codes:
        out[c] = paid[c] if seen is None else paid[c] & ~seen
        seen = paid[c] if seen is None else seen | paid[c]
    return out


def _union(masks) -> Any:
    """The rows of any of ``masks``; False when there are none."""
    out: Any = False
    for m in masks:
        out = m if out is False else out | m
    return out


def _pick8(c, a: int, b):
    """Small integer ``a`` where ``c`` else ``b`` (int8 arrays)."""
    if c is True:
        return a
    if c is False:
        return b
    ci = c.view(np.int8)
    if not is_arr(b):
        return ci * np.int8(a - b) + np.int8(b)
    return b + ci * (np.int8(a) - b)


def _parts(parts: list[tuple[Fn, bool]], ctx: Ctx) -> tuple[Num, Any]:
    """Total of the configured parts; null where a required part is unknown."""
    total = Num(0)
    none: Any = False
    for fn, required in parts:
        v = fn(ctx)
        if required:
            none = bor(none, bnot(v.k))
        an, bn, d, ab, bb = X.align(total, v)
        add = select(v.k, bn, 0)
        n = an + add
        total = Num(n, d, ab + bb if is_arr(n) else None)
        X._check(total.b)
    return total, none


def _present(v, shape, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """A household fact as (cents for money, the integer otherwise; null mask), full shape."""
    if not isinstance(v, Num):
        raise Unsupported("reported fact of a non-number")
    null = bor(bnot(v.k), v.none)
    vals = X.to_cents(v) if kind == "money" else v.n
    return np.broadcast_to(np.asarray(vals, dtype=np.int64), shape), np.broadcast_to(np.asarray(null, dtype=bool), shape)


def _canon_member(v):
    """Member-store values keep the member axis explicitly: ``(n|1, H|1)`` arrays or scalars."""
    return v.map(lambda a: X.full_rank(a, 2)) if not isinstance(v, List) else v


def _live_names(book: RuleBook, programs: list[Program], reported: list[str]) -> set[str]:
    """Names whose values can change a decision or a reported fact (fact steps only explained are dead)."""
    live: set[str] = set(reported)
    for p in programs:
        for node in program_trees(p):
            live |= {n.path for n in A.walk(node) if isinstance(n, A.Name) and n.path}
        live |= {s.name for s in p.steps if s.kind == "use"}
    facts = {s.name: s for s in book.facts.steps}  # type: ignore[union-attr]
    todo = [n for n in live if n in facts]
    while todo:
        s = facts[todo.pop()]
        for n in A.walk(s.node):
            if isinstance(n, A.Name) and n.path and n.path not in live:
                live.add(n.path)
                if n.path in facts:
                    todo.append(n.path)
    return live


def _with_dependencies(book: RuleBook, codes: list[str]) -> set[str]:
    by_code = {p.code: p for p in book.programs}
    deps: dict[str, set[str]] = {}
    for p in book.programs:
        found: set[str] = set()
        for node in program_trees(p):
            for n in A.walk(node):
                if isinstance(n, A.Name) and n.binding == "name" and n.path:
                    head = n.path.split(".")[0]
                    if head in by_code and head != p.code:
                        found.add(head)
        deps[p.code] = found
    out: set[str] = set()
    todo = [c for c in codes if c in by_code]
    unknown = [c for c in codes if c not in by_code]
    if unknown:
        raise ValueError(f"未知的项目 / unknown program(s): {', '.join(unknown)}")
    while todo:
        c = todo.pop()
        if c in out:
            continue
        out.add(c)
        todo.extend(deps[c])
    return out

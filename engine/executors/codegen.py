"""The compiled fast path of ``Engine.evaluate``.

The closure interpreter in ``engine.executors.evaluate`` is the reference semantics. This module
compiles the same checked rule trees into one straight-line Python function per
*variant* - which parameters are unconfigured in the resolved ParameterSet, and whether
the household declared its assets - so that values that cannot be missing use plain
Python operators and everything else goes through small three-valued helpers. A property
test checks that both backends produce byte-identical determinations.

The decisions are the plan's (``engine.book.rules``): the clause after a failed gate, each
clause's ``granted``, the result keys, the status outside ``applies_to`` are printed from its
fields with ``repr``; a guarded check's outcome and a clause's amount (``amount`` or ``parts``)
are printed as calls of the functions the interpreter calls (``engine.executors.outcome``).

Safety: no rule or policy text is ever handed to Python. The generator walks our own
closed AST (engine/expr/ast.py) and emits fixed code shapes for each node type; every
name becomes a generated identifier or a dictionary key written with ``repr``; literals
are validated values re-emitted with ``repr`` or passed in as constants. No rule-file text
appears outside a ``repr`` literal, comments included (a step's comment gives its number in
``FastPath.labels``). Before compiling, ``audit`` checks the parsed source uses only names
the generator made or lists, the attributes listed here and plain constants, so text that
got past the loaders' id grammar (``engine.book.ids``) still could not become code.
"""

from __future__ import annotations

import ast as pyast
import datetime as dt
import hashlib
import itertools
import linecache
import operator
from typing import Any

from gmpy2 import mpq

from engine.book.rules import Program, RuleBook, Step, Template
from engine.book.statuses import granted_of
from engine.book.templates import labeler, money_text
from engine.executors.outcome import (
    Determination,
    _labels,
    _money,
    amount_note,
    build_reason,
    cite,
    clause_amount,
    decision_amount,
    failed_note,
    finish_program,
    guarded,
    part_note,
    parts_amount,
)
from engine.explain.summary import PAID_AS
from engine.explain.summary import finish as finish_summary
from engine.expr import ast as A
from engine.expr import logic
from engine.expr.runtime import Missing
from engine.schema.facts import HOUSEHOLD_FACTS
from engine.schema.model import PROGRAM_CODES
from engine.schema.money import fmt_number

ZERO = mpq(0)
_ORDER = {code: i for i, code in enumerate(PROGRAM_CODES)}
_NULLABLE_MEMBER = frozenset({"sex", "hukou_locality", "self_care", "supporters"})
_NULLABLE_BITS = ((1, "sex"), (2, "hukou_locality"), (4, "self_care"), (8, "supporters"))
_TRACE = "\x00"

# Prefixes of the identifiers ``_Gen.fresh`` makes (h12, p3, ...): the only names the generator
# invents; every other name in the source is one of the helpers or of ``_LOCALS``.
_PREFIXES = frozenset(
    {"a", "c", "cv", "h", "ht", "m", "o", "p", "t", "x", "CL", "CV", "D", "F", "K", "L", "LB", "LK", "PR", "Q", "RK", "S", "ST"}
)
# The fixed local names of the code shapes below.
_LOCALS = frozenset(
    {
        "CITES",
        "HR",
        "P",
        "SH",
        "T",
        "amount",
        "amt",
        "bd",
        "c",
        "cc",
        "chosen",
        "counted_ids",
        "failed",
        "g",
        "gr",
        "h",
        "hh",
        "household",
        "idx",
        "k",
        "lk",
        "m",
        "members",
        "mr",
        "mraw",
        "note",
        "out",
        "own",
        "parts",
        "programs",
        "ps",
        "r",
        "raw",
        "reasons",
        "rec",
        "results",
        "status",
        "stopped",
        "summary",
        "text",
        "unknown",
        "v",
        "w",
    }
)
_KEYWORDS = frozenset(
    {"key", "household_id", "locality", "locality_chain", "as_of", "ruleset_version", "household", "programs", "summary"}
)
_CONSTANTS = (str, int, bool, type(None))


class CodegenError(RuntimeError):
    """The generator was about to write something outside its fixed shapes (a bug, or a bypassed check)."""


_HELPERS: dict[str, Any] = {
    "_and2": logic.and2,
    "_or2": logic.or2,
    "_not": logic.not_,
    "_neg": logic.neg,
    "_in": logic.in_,
    "_eq": logic.eq,
    "_lt": logic.order(operator.lt),
    "_le": logic.order(operator.le),
    "_gt": logic.order(operator.gt),
    "_ge": logic.order(operator.ge),
    "_add": logic.arith(operator.add),
    "_sub": logic.arith(operator.sub),
    "_mul": logic.arith(operator.mul),
    "_divm": logic.arith(logic.div),
    "_div": logic.div,
    "_minmax": logic.minmax,
    "_call1": logic.call1,
    "_call2": logic.call2,
    "_c_list": logic.c_list,
    "_c_count": logic.c_count,
    "_c_sum": logic.c_sum,
    "_c_anyall": logic.c_anyall,
    **{f"_f_{name}": fn for name, fn in logic.FUNCTIONS.items()},
    "Missing": Missing,
    "ZERO": ZERO,
    "min": min,
    "max": max,
    "len": len,
    "sum": sum,
    "any": any,
    "all": all,
    "tuple": tuple,
    "list": list,
    "enumerate": enumerate,
    "str": str,
    "type": type,
    "dict": dict,
    "AssertionError": AssertionError,
    "MONEY_TEXT": money_text,
    "NUMBER_TEXT": lambda v: fmt_number(mpq(v)),
}
_FUNC_HELPER = {name: f"_f_{name}" for name in logic.FUNCTIONS}
_ARITH_PLAIN = {"+": "+", "-": "-", "*": "*"}
_ARITH_HELPER = {"+": "_add", "-": "_sub", "*": "_mul", "/": "_divm"}
_ORDER_HELPER = {"<": "_lt", "<=": "_le", ">": "_gt", ">=": "_ge"}

# Attribute names the generated code may use (checked by a test on the generated source).
ALLOWED_ATTRIBUTES = frozenset(
    {
        "append",
        "extend",
        "get",
        "pop",
        "sort",
        "join",
        "h",
        "members",
        "values",
        "household_id",
        "locality",
        "as_of",
        "isoformat",
        "chain",
        "fromkeys",
    }
)


class _Scope:
    """Where names live while generating one step: household locals or the member record ``mr``.

    ``trace`` is off where the interpreter discards what was read (guards, decision conditions),
    so the generated code does not record parameter reads nobody will cite.
    """

    def __init__(self, member: bool, loops: dict[str, tuple[str, str]] | None = None, trace: bool = True):
        self.member = member
        self.loops = loops or {}  # rule loop variable -> (python identifier, record name)
        self.trace = trace

    def with_loop(self, var: str, ident: str, record: str) -> _Scope:
        return _Scope(self.member, {**self.loops, var: (ident, record)}, self.trace)

    def untraced(self) -> _Scope:
        return _Scope(self.member, self.loops, False)


class _Gen:
    def __init__(self, engine, missing_params: frozenset[str], assets_present: bool, absent: int, detail: str = "full"):
        self.engine = engine
        # "decisions": no reason per rule checked (programs keep their decision reasons and the
        # summary). "outline": only each program's status and amount and the household's
        # figures (see ``Engine.outline``), so nothing records which parameters were read.
        # Same values and decisions in every form.
        self.explain = detail == "full"
        self.outline = detail == "outline"
        self.book: RuleBook = engine.book
        self.missing_params = missing_params
        self.assets_present = assets_present
        self.ns: dict[str, Any] = dict(_HELPERS)
        self.lines: list[str] = []
        self.labels: list[str] = []  # rule-file id of each step, by the number its comment gives
        self.made: set[str] = set()  # every identifier ``fresh`` handed out
        self.depth = 1
        self.counter = itertools.count()
        self.member_keys = self.book.member_keys
        self.hvar: dict[str, str] = {}  # household name -> identifier
        self.htrace: dict[str, str] = {}  # household name -> identifier of its stored trace
        self.maybe: dict[str, bool] = {}  # name (household or member) -> may hold Missing
        self.traced: set[str] = set()  # names whose stored trace may be non-empty
        self.trace_keys: dict[str, frozenset[str]] = {}  # name -> parameter keys its stored trace may hold
        self.member_written: set[str] = set()  # keys the generated code adds to member records
        self.citable = engine.citable
        self.inputs: dict[str, str] = {}  # household input facts read -> identifier
        self.params: dict[str, str] = {}  # parameter key -> identifier
        self._consts: dict[int, str] = {}
        for name in HOUSEHOLD_FACTS:
            self.maybe[name] = name.startswith("current_amounts.") or (name.startswith("assets.") and not assets_present)
        for name in self.book.member_record:
            self.maybe.setdefault(name, any(field == name and absent & bit for bit, field in _NULLABLE_BITS))

    # -- emitting --------------------------------------------------------------------
    def emit(self, line: str) -> None:
        # One physical line each, whatever a repr'd literal holds: a line break or NUL here
        # would let text end a statement early (see also ``audit``).
        if "\n" in line or "\r" in line or "\x00" in line:
            raise CodegenError("a generated line holds a line break")
        self.lines.append("    " * self.depth + line)

    def note(self, kind: str, label: str) -> None:
        """A comment naming the step by its number in ``labels``: no rule-file text in the source."""
        self.labels.append(label)
        self.lines.append(f"{'    ' * self.depth}# {kind} {len(self.labels) - 1}")

    def const(self, obj: Any, prefix: str = "K") -> str:
        key = id(obj)
        name = self._consts.get(key)
        if name is None:
            name = self.fresh(prefix)
            self._consts[key] = name
            self.ns[name] = obj
        return name

    def fresh(self, prefix: str = "t") -> str:
        if prefix not in _PREFIXES:
            raise CodegenError(f"unknown identifier prefix {prefix!r}")
        name = f"{prefix}{next(self.counter)}"
        self.made.add(name)
        return name

    def household_var(self, name: str) -> str:
        v = self.hvar.get(name)
        if v is None:
            v = self.fresh("h")
            self.hvar[name] = v
            if name in HOUSEHOLD_FACTS:
                self.inputs[name] = v
        return v

    # -- expressions -------------------------------------------------------------------
    def ex(self, n: A.Node, sc: _Scope) -> tuple[str, bool]:
        return getattr(self, "_" + type(n).__name__)(n, sc)

    def _Literal(self, n: A.Literal, sc) -> tuple[str, bool]:
        if n.kind == "number":
            return self.const(n.value, "Q"), False
        return repr(n.value), False

    def _SetLit(self, n: A.SetLit, sc) -> tuple[str, bool]:
        return self.const(frozenset(i.value for i in n.items), "S"), False  # type: ignore[attr-defined]

    def _Name(self, n: A.Name, sc: _Scope) -> tuple[str, bool]:
        if n.binding == "var":
            return sc.loops[n.var][0], False
        if n.binding == "field":
            ident, record = sc.loops[n.var]
            maybe = (record == "member" and self.maybe.get(n.path, False)) or (record == "event" and n.path == "loss")
            return f"{ident}[{n.path!r}]", bool(maybe)
        if n.binding == "param":
            v = self.params.get(n.path)
            if v is None:
                v = self.fresh("p")
                self.params[n.path] = v
            if not sc.trace or self.outline:
                return v, n.path in self.missing_params
            return f"(T.append({n.path!r}) or {v})", n.path in self.missing_params
        path = n.path
        maybe = self.maybe.get(path, False)
        if path in self.member_keys:
            if path in self.traced and sc.trace:
                return f"(T.extend(mr.get({_TRACE + path!r}, ())) or mr[{path!r}])", maybe
            return f"mr[{path!r}]", maybe
        v = self.household_var(path)
        if path in self.traced and sc.trace:
            return f"(T.extend({self.htrace[path]}) or {v})", maybe
        return v, maybe

    def _Unary(self, n: A.Unary, sc) -> tuple[str, bool]:
        code, maybe = self.ex(n.operand, sc)
        if n.op == "not":
            return (f"_not({code})" if maybe else f"(not {code})"), maybe
        return (f"_neg({code})" if maybe else f"(-{code})"), maybe

    def _Binary(self, n: A.Binary, sc) -> tuple[str, bool]:
        op = n.op
        lc, lm = self.ex(n.left, sc)
        rc, rm = self.ex(n.right, sc)
        maybe = lm or rm
        if op == "and":
            if not maybe:
                return f"({lc} and {rc})", False
            t = self.fresh("a")
            return f"(False if ({t} := {lc}) is False else _and2({t}, {rc}))", True
        if op == "or":
            if not maybe:
                return f"({lc} or {rc})", False
            t = self.fresh("o")
            return f"(True if ({t} := {lc}) is True else _or2({t}, {rc}))", True
        if op in ("in", "not in"):
            negate = op == "not in"
            if maybe or n.left.type.optional:
                return f"_in({lc}, {rc}, {negate})", maybe
            return f"({lc} {op} {rc})", False
        if op in ("==", "!="):
            if maybe:
                return f"_eq({lc}, {rc}, {op == '=='})", True
            return f"({lc} {op} {rc})", False
        if op in _ORDER_HELPER:
            if maybe or n.left.type.optional or n.right.type.optional:
                return f"{_ORDER_HELPER[op]}({lc}, {rc})", maybe
            return f"({lc} {op} {rc})", False
        if maybe:
            return f"{_ARITH_HELPER[op]}({lc}, {rc})", True
        if op == "/":
            return f"_div({lc}, {rc})", False
        return f"({lc} {_ARITH_PLAIN[op]} {rc})", False

    def _IfElse(self, n: A.IfElse, sc) -> tuple[str, bool]:
        cc, cm = self.ex(n.cond, sc)
        tc, tm = self.ex(n.then, sc)
        oc, om = self.ex(n.other, sc)
        if not cm:
            return f"({tc} if {cc} else {oc})", tm or om
        t = self.fresh("c")
        return f"({tc} if ({t} := {cc}) is True else {oc} if {t} is False else {t})", True

    def _Call(self, n: A.Call, sc) -> tuple[str, bool]:
        if n.func == "date":
            return self.const(dt.date.fromisoformat(n.args[0].value), "D"), False  # type: ignore[attr-defined]
        args = [self.ex(a, sc) for a in n.args]
        maybe = any(m for _c, m in args)
        codes = [c for c, _m in args]
        if n.func in ("min", "max"):
            if maybe:
                return f"_minmax({n.func}, [{', '.join(codes)}])", True
            return f"{n.func}({', '.join(codes)})", False
        helper = _FUNC_HELPER[n.func]
        if maybe:
            if len(codes) == 1:
                return f"_call1({helper}, {codes[0]})", True
            return f"_call2({helper}, {codes[0]}, {codes[1]})", True
        return f"{helper}({', '.join(codes)})", False

    def _Comprehension(self, n: A.Comprehension, sc: _Scope) -> tuple[str, bool]:
        src, sm = self.ex(n.source, sc)
        record = n.source.type.record
        ident = self.fresh("L")
        inner = sc.with_loop(n.var, ident, record)
        cond, cm = self.ex(n.cond, inner) if n.cond is not None else (None, False)
        expr, em = self.ex(n.expr, inner) if n.func != "list" else (ident, False)
        f = n.func
        if not (sm or cm or em):
            tail = f" for {ident} in {src}" + (f" if {cond}" if cond else "")
            if f == "list":
                return f"tuple([{ident}{tail}])", False
            if f == "count":
                return f"len([1{tail}])", False
            if f == "sum":
                start = "ZERO + " if n.type.kind in ("money", "number") else ""
                return f"({start}sum([{expr}{tail}]))", False
            return f"{f}({expr}{tail})", False
        cfn = f"(lambda {ident}: {cond})" if cond else "None"
        if f == "list":
            return f"_c_list({src}, {cfn})", True
        if f == "count":
            return f"_c_count({src}, {cfn})", True
        efn = f"(lambda {ident}: {expr})"
        if f == "sum":
            start = "ZERO" if n.type.kind in ("money", "number") else "0"
            return f"_c_sum({src}, {cfn}, {efn}, {start})", True
        return f"_c_anyall({src}, {cfn}, {efn}, {f == 'any'})", True

    # -- static facts about names ------------------------------------------------------
    def possible_keys(self, *nodes: A.Node | None) -> frozenset[str]:
        """Parameter keys that evaluating these trees may append to the trace."""
        keys: set[str] = set()
        if self.outline:
            return frozenset()
        for node in nodes:
            if node is None:
                continue
            for x in A.walk(node):
                if isinstance(x, A.Name):
                    if x.binding == "param":
                        keys.add(x.path)
                    elif x.binding == "name" and x.path in self.traced:
                        keys |= self.trace_keys[x.path]
        return frozenset(keys)

    def reads_trace(self, *nodes: A.Node | None) -> bool:
        return bool(self.possible_keys(*nodes))

    def template_nodes(self, tpl: Template | None) -> list[A.Node]:
        return [node for _name, node, _t in tpl.nodes if node is not None] if tpl is not None else []

    def slots(self, tpl: Template | None, sc: _Scope, amount: str = "None") -> str:
        if tpl is None:
            return "[]"
        codes = [amount if node is None else self.ex(node, sc)[0] for _name, node, _t in tpl.nodes]
        return "[" + ", ".join(codes) + "]"

    # -- steps ---------------------------------------------------------------------------
    def store(self, s_name: str, sc: _Scope, value: str, maybe: bool, keys: frozenset[str] | None, citable: bool) -> None:
        """Store a step's value, and its trace (from ``T``) for the citations of later steps that read it.

        ``keys`` are the parameter keys the trace may hold; facts keep only citable ones
        (amounts and numbers), lets keep everything - as the interpreter does.
        """
        self.maybe[s_name] = maybe
        kept = None
        if keys:
            kept = keys & self.citable if citable else keys
        if kept:
            filt = "T" if kept == keys else "[k for k in T if k in CITABLE]"
            self.traced.add(s_name)
            self.trace_keys[s_name] = kept
        if sc.member:
            self.emit(f"mr[{s_name!r}] = {value}")
            self.member_written.add(s_name)
            if kept:
                self.emit(f"if T: mr[{_TRACE + s_name!r}] = tuple({filt})")
                self.member_written.add(_TRACE + s_name)
        else:
            var = self.household_var(s_name)
            self.emit(f"{var} = {value}")
            if not self.outline:
                # the summary stage (outputs, link conditions) reads stored values by name
                self.emit(f"h[{s_name!r}] = {var}")
            if kept:
                tv = self.htrace.setdefault(s_name, self.fresh("ht"))
                self.emit(f"{tv} = tuple({filt})")

    def value(self, node: A.Node, sc: _Scope) -> bool:
        """Emit ``v = <node>``; a comprehension at the top becomes a plain loop. Returns maybe-missing."""
        if isinstance(node, A.Comprehension):
            done = self.loop(node, sc)
            if done is not None:
                return done
        code, maybe = self.ex(node, sc)
        self.emit(f"v = {code}")
        return maybe

    def loop(self, n: A.Comprehension, sc: _Scope) -> bool | None:
        src, sm = self.ex(n.source, sc)
        ident = self.fresh("L")
        inner = sc.with_loop(n.var, ident, n.source.type.record)
        cond, cm = self.ex(n.cond, inner) if n.cond is not None else (None, False)
        expr, em = self.ex(n.expr, inner) if n.func != "list" else (ident, False)
        if sm or cm or em:
            return None
        f = n.func
        start = {"list": "[]", "count": "0", "any": "False", "all": "True"}.get(f)
        if f == "sum":
            start = "ZERO" if n.type.kind in ("money", "number") else "0"
        self.emit(f"v = {start}")
        self.emit(f"for {ident} in {src}:")
        self.depth += 1
        if cond:
            self.emit(f"if not {cond}: continue")
        if f == "list":
            self.emit(f"v.append({ident})")
        elif f == "count":
            self.emit("v += 1")
        elif f == "sum":
            self.emit(f"v += {expr}")
        elif f == "any":
            self.emit(f"if {expr}:")
            self.emit("    v = True")
            self.emit("    break")
        else:
            self.emit(f"if not {expr}:")
            self.emit("    v = False")
            self.emit("    break")
        self.depth -= 1
        if f == "list":
            self.emit("v = tuple(v)")
        return False

    def fact_step(self, s: Step, sc: _Scope, index: str) -> None:
        keys = self.possible_keys(s.node)
        self.note("fact", s.id)
        if keys:
            self.emit("T = []")
        maybe = self.value(s.node, sc)
        self.store(s.name, sc, "v", maybe, keys, True)
        if not s.listed or not self.explain:
            return
        step = self.const(s, "ST")
        self.emit("own = T" if keys else "own = ()")
        if s.guard_node is not None:
            gcode, _gm = self.ex(s.guard_node, sc.untraced())
            self.emit(f"if {gcode} is not False:")
            self.depth += 1
        self.emit_reason(s, sc, step, "own", keys)
        if s.text_pass is not None:
            self.emit(f"SH[({s.name!r}, {index})] = r")
        self.emit("HR.append(r)")
        if s.guard_node is not None:
            self.depth -= 1

    def emit_reason(self, s: Step, sc: _Scope, step: str, trace: str, own_keys: frozenset[str]) -> None:
        """Build ``r``, the reason for step ``s`` with value ``v``, inline for known values.

        ``trace`` names what the step itself read (its citation starts from it); ``own_keys``
        are the parameter keys it may hold, so a reason that can read no parameter gets a
        constant citation key.
        """
        maybe = self.maybe.get(s.name, True)
        mid = "mr['id']" if sc.member else "None"
        if s.text_pass is not None:
            branches = [("v is True", s.text_pass, "True"), ("v is False", s.text_fail, "False")]
            for i, (cond, tpl, passed) in enumerate(branches):
                self.emit(f"{'if' if i == 0 else 'elif'} {cond}:")
                self.depth += 1
                self.inline_reason(s, sc, tpl, "check", passed, trace, own_keys)
                self.depth -= 1
            self.emit("else:")
        else:
            self.emit("if type(v) is not Missing:")
            self.depth += 1
            self.inline_reason(s, sc, s.text, "fact", "True", trace, own_keys)
            self.depth -= 1
            self.emit("else:")
        self.depth += 1
        if maybe:
            tpl = s.text_pass if s.text_pass is not None else s.text
            self.emit(f"T = list({trace})")
            self.emit(f"r = BUILD_REASON(CITES, ps, {step}, v, {self.slots(tpl, sc)}, T, {mid})")
        else:
            self.emit(f"raise AssertionError({'unexpected value for ' + s.id!r})")
        self.depth -= 1

    def inline_reason(
        self, s: Step, sc: _Scope, tpl: Template, kind: str, passed: str, trace: str, own_keys: frozenset[str]
    ) -> None:
        dynamic = bool(own_keys | self.possible_keys(*(node for _n, node, _t in tpl.nodes)))
        if dynamic:
            self.emit(f"T = list({trace})")
        texts: list[str] = []
        values: list[str] = []
        for (name, node, t), (_n, _fn, conv) in zip(tpl.nodes, tpl.slots, strict=True):
            code, maybe = self.ex(node, sc)
            x = self.fresh("x")
            self.emit(f"{x} = {code}")
            text, value = self.convert(x, t, conv, maybe)
            texts.append(text)
            values.append(f"{name!r}: {value}")
        if tpl.order is not None:
            texts = [texts[i] for i in tpl.order]
        fmt = self.const(tpl.fmt, "F")
        text = f"{fmt} % ({', '.join(texts)},)" if texts else fmt

        # a function, not ``%`` formatting: a citation is rule text and may hold a ``%``
        def cite(trace: str) -> str:
            return f"CITE(CITES, ps, {s.id!r}, {s.citation!r}, {trace}, {s.project_default})"

        if dynamic:
            # keyed by the trace as read, repeats included: deduplicating it costs more than the
            # few extra cache entries it would save (CITE itself keys the deduplicated trace)
            self.emit(f"k = ({s.id!r}, tuple(T))")
            self.emit("c = CITES.get(k)")
            self.emit("if c is None:")
            self.emit("    c = CITES[k] = " + cite("tuple(dict.fromkeys(T))"))
        else:
            key = self.const((s.id, ()), "RK")
            self.emit(f"c = CITES.get({key})")
            self.emit("if c is None:")
            self.emit("    c = " + cite("()"))
        fields = [
            f"'rule': {s.id!r}",
            f"'kind': {kind!r}",
            f"'passed': {passed}",
            f"'text': {text} + c[1]",
            f"'values': {{{', '.join(values)}}}",
            "'citation': c[0]",
        ]
        if s.scope == "member":
            fields.append("'member': mr['id']")
        self.emit("r = {" + ", ".join(fields) + "}")

    def convert(self, x: str, t, conv, maybe: bool) -> tuple[str, str]:
        """Code for a slot's sentence text and JSON value, as engine.book.templates.converter does it."""
        kind = t.kind
        if maybe or t.optional or kind not in ("money", "number", "int", "bool", "date", "str"):
            c = self.fresh("cv")
            self.emit(f"{c} = {self.const(conv, 'CV')}({x})")
            return f"{c}[0]", f"{c}[1]"
        if kind == "money":
            m = self.fresh("m")
            self.emit(f"{m} = MONEY_TEXT({x})")
            return m, m
        if kind == "number":
            m = self.fresh("m")
            self.emit(f"{m} = NUMBER_TEXT({x})")
            return m, m
        if kind == "int":
            return f"str({x})", x
        if kind == "bool":
            return f"('是' if {x} else '否')", x
        if kind == "date":
            m = self.fresh("m")
            self.emit(f"{m} = {x}.isoformat()")
            return m, m
        if t.domain:
            return f"{self.const(labeler(t), 'LB')}({x})", x
        return x, x

    def program(self, prog: Program) -> None:
        member = prog.scope == "member"
        sc = _Scope(member)
        pk = self.const(prog, "PR")
        self.note("program", prog.code)
        if member:
            self.emit("for idx, mr in enumerate(members):")
            self.depth += 1
            if prog.applies_node is not None:
                code, _m = self.ex(prog.applies_node, sc.untraced())
                self.emit(f"if {code} is False:")
                self.depth += 1
                outside = ((prog.status_key, prog.outside), (prog.granted_key, granted_of(prog.outside)), (prog.amount_key, None))
                for key, value in outside:
                    self.emit(f"mr[{key!r}] = {value!r}")
                self.emit("continue")
                self.depth -= 1
            index = "idx"
        else:
            index = "-1"
        if not self.outline:
            self.emit("reasons = []")
            self.emit("failed = []")
        self.emit("stopped = False")
        gate_seen = False
        for s in prog.steps:
            if s.kind == "let":
                keys = self.possible_keys(s.node)
                self.note("let", s.id)
                if keys:
                    self.emit("T = []")
                maybe = self.value(s.node, sc)
                self.store(s.name, sc, "v", maybe, keys, False)
                continue
            if gate_seen:
                self.emit("if stopped:")
                self.depth += 1
                if s.kind == "check":
                    self.store(s.name, sc, "False", self.maybe.get(s.name, False), None, False)
                else:
                    self.emit("pass")
                self.depth -= 1
                self.emit("else:")
                self.depth += 1
            if s.kind == "use":
                self.use_step(s, sc, index)
            else:
                self.check_step(s, sc)
            if gate_seen:
                self.depth -= 1
            gate_seen = gate_seen or s.gate
        self.decision(prog, sc, pk, index)
        if member:
            self.depth -= 1

    def use_step(self, s: Step, sc: _Scope, index: str) -> None:
        member_scope = s.scope == "member"
        self.note("use", s.id)
        if member_scope:
            self.emit(f"v = mr[{s.name!r}]")
            key = f"({s.name!r}, idx)"
            trace = f"mr.get({_TRACE + s.name!r}, ())"
        else:
            self.emit(f"v = {self.household_var(s.name)}")
            key = f"({s.name!r}, -1)"
            trace = self.htrace.get(s.name, "()")
        if self.explain:
            self.emit(f"r = SH.get({key})")
            self.emit("if r is None:")
            self.depth += 1
            self.emit_reason(s, _Scope(member_scope), self.const(s, "ST"), trace, self.trace_keys.get(s.name, frozenset()))
            self.emit(f"SH[{key}] = r")
            self.depth -= 1
        self.list_outcome(s)

    def list_outcome(self, s: Step) -> None:
        """Append the reason; a failed rule is named in the decision, and a failed gate stops the rest."""
        if self.explain:
            self.emit("reasons.append(r)")
        if self.outline:
            if s.gate:
                self.emit("if v is False: stopped = True")
            return
        self.emit("if v is False:")
        self.depth += 1
        self.emit(f"failed.append({s.title!r})")
        if s.gate:
            self.emit("stopped = True")
        self.depth -= 1

    def check_step(self, s: Step, sc: _Scope) -> None:
        self.note("rule", s.id)
        step = self.const(s, "ST")
        maybe = False
        if s.guard_node is not None:
            gcode, gmaybe = self.ex(s.guard_node, sc.untraced())
            self.emit(f"g = {gcode}")
            self.emit("if g is False:")
            self.depth += 1
            self.store(s.name, sc, "False", True, None, False)
            self.depth -= 1
            self.emit("else:")
            self.depth += 1
        keys = self.possible_keys(s.node)
        if keys:
            self.emit("T = []")
        code, maybe = self.ex(s.node, sc)
        self.emit(f"v = {code}")
        if s.guard_node is not None and gmaybe:
            self.emit("v = GUARDED(g, v)")
            maybe = True
        self.store(s.name, sc, "v", maybe or (s.guard_node is not None and gmaybe), None, False)
        if self.explain:
            self.emit_reason(s, sc, step, "T" if keys else "()", keys)
        self.list_outcome(s)
        if s.guard_node is not None:
            self.depth -= 1

    def decision(self, prog: Program, sc: _Scope, pk: str, index: str) -> None:
        self.emit("unknown = None")
        self.emit("chosen = None")
        self.emit("if stopped:")
        self.depth += 1
        self.emit(f"chosen = {prog.stop_clause}")
        self.depth -= 1
        self.emit("else:")
        self.depth += 1
        opened = 0
        any_maybe = False
        for ci, c in enumerate(prog.decision):
            if c.when_node is None:
                self.emit(f"chosen = {ci}")
                break
            code, maybe = self.ex(c.when_node, sc.untraced())
            any_maybe = any_maybe or maybe
            self.emit(f"w = {code}")
            self.emit("if w is True:")
            self.depth += 1
            self.emit(f"chosen = {ci}")
            self.depth -= 1
            self.emit("elif w is not False:")
            self.depth += 1
            self.emit("unknown = w")
            self.depth -= 1
            self.emit("else:")
            self.depth += 1
            opened += 1
        self.depth -= opened
        self.depth -= 1
        code = prog.code
        members = "[mr['id']]" if sc.member else "counted_ids"
        if self.outline:
            self.outline_finish(prog, sc, pk)
        else:
            self.full_finish(prog, sc, pk, members)
        results = ((prog.status_key, "status"), (prog.granted_key, "gr"), (prog.amount_key, "amt"))
        for key, value in results:
            if sc.member:
                self.member_written.add(key)
                self.emit(f"mr[{key!r}] = {value}")
            else:
                var = self.household_var(key)
                self.emit(f"{var} = {value}")
                if not self.outline:
                    self.emit(f"h[{key!r}] = {var}")
        # unknown when a condition may be, or when a clause that decides leaves it unknown (needs_info)
        self.maybe[prog.granted_key] = any_maybe or any(c.granted is None for c in prog.decision)
        self.maybe[prog.status_key] = False
        self.maybe[prog.amount_key] = False
        if self.outline:
            # the program's entry as the summary stage would complete it (summary._complete)
            money = "(MONEY_TEXT(amt) if amt is not None else None)"
            field = PAID_AS.get(prog.pays)
            amounts = f"'monthly_amount': {money}" if field is None else f"'monthly_amount': None, {field!r}: {money}"
            self.emit(f"out = {{'program': {code!r}, 'members': {members}, 'status': status, {amounts}}}")
        self.emit(f"results.append(({_ORDER[prog.code]}, {index}, out))")

    def full_finish(self, prog: Program, sc: _Scope, pk: str, members: str) -> None:
        """The program's entry with its decision reason (``out``), ``status``, ``amt`` and ``gr``."""
        self.emit("T = []")
        rule = prog.code + ".decision"
        for ci, c in enumerate(prog.decision):
            self.emit(f"{'if' if ci == 0 else 'elif'} chosen == {ci}:")
            self.depth += 1
            if c.status == "needs_info" or c.missing:
                self.generic_finish(prog, c, ci, sc, pk)
            else:
                self.inline_finish(prog, c, sc, members, rule)
                self.emit(f"gr = {c.granted!r}")
                if c.granted is True and prog.link_specs:
                    self.emit_links(prog, sc)
            self.depth -= 1
        # an undecidable condition: the generic path (rare, and never hot)
        self.emit("else:")
        self.depth += 1
        self.emit(
            f"out = FINISH(CITES, ps, {pk}, None, unknown, None, None, [], T, reasons, failed, "
            f"{'mr' if sc.member else 'None'}, counted_ids)"
        )
        self.emit("status = 'needs_info'")
        self.emit("amt = out.pop('_amount')")
        self.emit("gr = out.pop('_granted')")
        self.depth -= 1

    def outline_finish(self, prog: Program, sc: _Scope, pk: str) -> None:
        """``status``, ``amt`` and ``gr`` of the chosen clause, without its sentence or citation."""
        for ci, c in enumerate(prog.decision):
            self.emit(f"{'if' if ci == 0 else 'elif'} chosen == {ci}:")
            self.depth += 1
            if c.status == "needs_info" or c.missing:
                # names the missing facts (what the next programs' own Missing values carry): the generic path
                self.emit("T = []")
                self.emit("reasons = []")
                self.emit("failed = []")
                self.generic_finish(prog, c, ci, sc, pk)
            else:
                self.outline_amount(c, sc)
                self.emit(f"status = {c.status!r}")
                self.emit(f"gr = {c.granted!r}")
            self.depth -= 1
        self.emit("else:")  # an undecidable condition
        self.emit("    status = 'needs_info'")
        self.emit("    amt = None")
        self.emit("    gr = unknown")

    def outline_amount(self, c, sc: _Scope) -> None:
        """``amt``: what ``decision_amount`` gives for the clause, None where it cannot be computed."""
        if c.amount_node is not None:
            code, maybe = self.ex(c.amount_node, sc)
            self.emit(f"amt = CLAUSE_AMOUNT({code})[0]" if maybe else f"amt = {code}")
        elif c.parts:
            self.emit(f"amt = PARTS_AMOUNT({self.const(c.parts, 'CL')}, {self.part_values(c, sc)})[0]")
        else:
            self.emit("amt = None")

    def part_values(self, c, sc: _Scope) -> str:
        """The list of a clause's part values, in order (``parts_amount`` reads them)."""
        return f"[{', '.join(self.ex(part.node, sc)[0] for part in c.parts)}]"

    def emit_links(self, prog: Program, sc: _Scope) -> None:
        """The linked entitlements of a granted program, each when its condition holds."""
        self.emit("lk = []")
        for link in prog.link_specs:
            public = self.const(link.public, "LK")
            if link.when_node is None:
                self.emit(f"lk.append({public})")
            else:
                code, maybe = self.ex(link.when_node, sc.untraced())
                self.emit(f"if {code} is True: lk.append({public})" if maybe else f"if {code}: lk.append({public})")
        self.emit("if lk: out['links'] = lk")

    def generic_finish(self, prog: Program, c, ci: int, sc: _Scope, pk: str) -> None:
        """A clause the inline form does not cover (needs_info with named missing facts)."""
        if c.amount_node is not None:
            self.emit(f"amount = {self.ex(c.amount_node, sc)[0]}")
        else:
            self.emit("amount = None")
        if c.parts:
            self.emit(f"parts = {self.part_values(c, sc)}")
        else:
            self.emit("parts = None")
        pairs = [f"({self.slots(f, sc)}, {self.slots(lb, sc)})" for f, lb in c.missing]
        self.emit(f"mraw = [{', '.join(pairs)}]")
        ck = self.const(c, "CL")
        self.emit(f"raw = {self.slots(c.text, sc, f'DECISION_AMOUNT({ck}, amount, parts)[0]')}")
        self.emit(
            f"out = FINISH(CITES, ps, {pk}, {ci}, unknown, amount, parts, raw, T, reasons, failed, "
            f"{'mr' if sc.member else 'None'}, counted_ids, mraw)"
        )
        self.emit("status = out['status']")
        self.emit("amt = out.pop('_amount')")
        self.emit("gr = out.pop('_granted')")

    def inline_finish(self, prog: Program, c, sc: _Scope, members: str, rule: str) -> None:
        """engine.executors.evaluate.finish_program for one clause, specialised (see there for the semantics)."""
        breakdown = False
        if c.amount_node is not None:
            code, maybe = self.ex(c.amount_node, sc)
            if maybe:
                self.emit(f"amt, note = CLAUSE_AMOUNT({code})")
            else:
                self.emit(f"amt = {code}")
                self.emit("note = ''")
        elif c.parts:
            self.emit(f"amt, note, bd = PARTS_AMOUNT({self.const(c.parts, 'CL')}, {self.part_values(c, sc)})")
            breakdown = True
        else:
            self.emit("amt = None")
            self.emit("note = ''")
        texts: list[str] = []
        values: list[str] = []
        if c.text is not None:
            for (name, node, t), (_n, _fn, conv) in zip(c.text.nodes, c.text.slots, strict=True):
                x = self.fresh("x")
                if node is None:
                    self.emit(f"{x} = amt")
                    text, value = self.convert(x, t, conv, True)
                else:
                    code, maybe = self.ex(node, sc)
                    self.emit(f"{x} = {code}")
                    text, value = self.convert(x, t, conv, maybe)
                texts.append(text)
                values.append(f"{name!r}: {value}")
            if c.text.order is not None:
                texts = [texts[i] for i in c.text.order]
            fmt = self.const(c.text.fmt, "F")
            self.emit(f"text = {fmt} % ({', '.join(texts)},)" if texts else f"text = {fmt}")
        else:
            self.emit("text = ''")
        if c.lists_failed:
            self.emit("if failed: text += FAILED_NOTE(failed)")
        self.emit("text += note")
        granted = repr(c.granted)
        key = self.const((rule,), "RK")
        self.emit(f"cc = CITES.get({key} + (tuple(T),))")
        self.emit("if cc is None:")
        self.depth += 1
        self.emit(f"cc = CITE(CITES, ps, {rule!r}, {prog.basis!r}, tuple(T), False)")
        self.depth -= 1
        self.emit("text += cc[1]")
        self.emit(
            f"reasons.append({{'rule': {rule!r}, 'kind': 'decision', 'passed': {granted}, 'text': text, "
            f"'values': {{{', '.join(values)}}}, 'citation': cc[0]}})"
        )
        fields = [
            f"'program': {prog.code!r}",
            f"'name': {prog.name!r}",
            f"'scope': {prog.scope!r}",
            f"'members': {members}",
            f"'status': {c.status!r}",
            "'monthly_amount': MONEY_TEXT(amt) if amt is not None else None",
            "'reasons': reasons",
            "'missing': []",
        ]
        self.emit("out = {" + ", ".join(fields) + "}")
        if breakdown:
            self.emit("out['amount_breakdown'] = bd")
        self.emit(f"status = {c.status!r}")

    # -- the whole function ----------------------------------------------------------------
    def generate(self) -> str:
        book = self.book
        for scope, steps in book.facts.blocks:
            if scope == "household":
                sc = _Scope(False)
                for s in steps:
                    self.fact_step(s, sc, "-1")
            else:
                self.emit("for idx, mr in enumerate(members):")
                self.depth += 1
                sc = _Scope(True)
                for s in steps:
                    self.fact_step(s, sc, "idx")
                self.depth -= 1
        cm = self.household_var("counted_members")
        self.emit(f"counted_ids = [m['id'] for m in {cm}] if type({cm}) is not Missing else []")
        for prog in book.programs:
            self.program(prog)
        body = self.lines
        head = [
            "def run(hh, ps, CITES):",
            "    h = hh.h",
            # Members become pre-sized records holding every value the rules will add: filling
            # existing keys is cheaper than growing each dict, and the input stays untouched.
            "    members = tuple([MEMBER_TEMPLATE | rec for rec in hh.members])",
            "    P = ps.values",
            "    HR = []",
            "    SH = {}",
            "    results = []",
        ]
        for name, var in self.inputs.items():
            head.append(f"    {var} = members" if name == "members" else f"    {var} = h[{name!r}]")
        self.ns["MEMBER_TEMPLATE"] = dict.fromkeys(sorted(self.member_written))
        for key in self.member_written:
            if key.startswith(_TRACE):
                self.ns["MEMBER_TEMPLATE"][key] = ()
        for key, var in self.params.items():
            head.append(f"    {var} = P[{key!r}]")
        if self.outline:
            return "\n".join(head + body + self.outline_tail()) + "\n"
        tail = [
            "    results.sort(key=SORT_KEY)",
            "    household = {",
            "        'counted_members': counted_ids,",
            f"        'monthly_income': MONEY({self.household_var('monthly_income')}),",
            f"        'per_capita_income': MONEY({self.household_var('per_capita_income')}),",
            f"        'dibao_standard': MONEY({self.household_var('dibao_standard')}),",
            "    }",
        ]
        if "deductions" in self.hvar:
            tail.append(f"    household['deductions'] = MONEY({self.hvar['deductions']})")
        tail += [
            "    household['reasons'] = HR",
            "    programs = [r[2] for r in results]",
            "    summary = FINISH_SUMMARY(BOOK, programs, h, members)",
            "    return DETERMINATION(household_id=hh.household_id, locality=hh.locality, locality_chain=list(ps.chain),"
            " as_of=hh.as_of.isoformat(), ruleset_version=VERSION, household=household, programs=programs, summary=summary)",
        ]
        return "\n".join(head + body + tail) + "\n"

    def outline_tail(self) -> list[str]:
        figures = ", ".join(
            f"{name!r}: MONEY({self.household_var(name)})" for name in ("monthly_income", "per_capita_income", "dibao_standard")
        )
        return [
            "    results.sort(key=SORT_KEY)",
            "    return {'household_id': hh.household_id, 'locality': hh.locality, 'as_of': hh.as_of.isoformat(),"
            f" 'household': {{'counted_members': counted_ids, {figures}}}, 'programs': [r[2] for r in results]}}",
        ]


class FastPath:
    """Compiled variants of a rule book, generated on first use of each variant."""

    def __init__(self, engine):
        self.engine = engine
        self._variants: dict[tuple, Any] = {}
        self.sources: dict[tuple, str] = {}
        self.labels: dict[tuple, list[str]] = {}  # rule-file id of each numbered step comment, per variant

    def variant_key(self, hh, ps) -> tuple:
        """Which parameters are unconfigured, whether assets were declared, and which nullable
        member facts some member left out: the facts that decide where Missing can flow."""
        missing = ps.__dict__.get("_missing_keys")
        if missing is None:
            missing = frozenset(k for k, v in ps.values.items() if v.__class__ is Missing)
            ps.__dict__["_missing_keys"] = missing
        absent = 0
        for m in hh.members:
            for bit, field in _NULLABLE_BITS:
                if m[field].__class__ is Missing:
                    absent |= bit
        return missing, hh.h["assets.financial"].__class__ is not Missing, absent

    def variant_of(self, ps, assets: bool = True, absent: frozenset[str] = frozenset()) -> tuple:
        """The variant key for the parameters ``ps`` and a household that declared its assets or not
        and left out the nullable member facts ``absent`` (``NULLABLE_FACTS``): what ``variant_key``
        finds for such a household, without one."""
        missing = frozenset(k for k, v in ps.values.items() if v.__class__ is Missing)
        bits = 0
        for bit, field in _NULLABLE_BITS:
            if field in absent:
                bits |= bit
        return missing, assets, bits

    def function(self, key: tuple, detail: str = "full"):
        """The compiled variant for ``key`` giving ``detail``: full, decisions or outline (see ``_Gen``)."""
        if detail != "full":
            key = (*key, detail)
        fn = self._variants.get(key)
        if fn is None:
            fn = self._compile(key)
        return fn

    def source(self, key: tuple, detail: str = "full") -> tuple[str, str]:
        """The file name and the source of the compiled variant, compiling it if need be: the text that
        runs, as tracebacks from it name and quote it."""
        fn = self.function(key, detail)
        full = key if detail == "full" else (*key, detail)
        return fn.__code__.co_filename, self.sources[full]

    def _compile(self, key: tuple):
        gen = _Gen(self.engine, *key)
        source = gen.generate()
        ns = gen.ns
        ns.update(
            {
                "BUILD_REASON": build_reason,
                "CITE": cite,
                "FINISH": finish_program,
                "DECISION_AMOUNT": decision_amount,
                "GUARDED": guarded,
                "CLAUSE_AMOUNT": clause_amount,
                "PARTS_AMOUNT": parts_amount,
                "LABELS": _labels,
                "AMOUNT_NOTE": amount_note,
                "PART_NOTE": part_note,
                "FAILED_NOTE": failed_note,
                "MONEY": _money,
                "DETERMINATION": Determination,
                "FINISH_SUMMARY": finish_summary,
                "BOOK": self.engine.book,
                "VERSION": self.engine.version,
                "CITABLE": self.engine.citable,
                "SORT_KEY": _sort_key,
            }
        )
        ns["__builtins__"] = {}  # the generated code needs no builtins beyond the helpers given here
        tree = pyast.parse(source)
        audit(tree, _LOCALS | gen.made | ns.keys())
        filename = source_name(source)
        code = compile(tree, filename, "exec")
        # Registered so that tracebacks quote the generated lines and debuggers can show them; the
        # name carries the content hash, which `jiuzhu rules show-compiled` prints beside the source.
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        exec(code, ns)  # generated from the checked AST only, and audited: see the module docstring
        fn = ns["run"]
        self._variants[key] = fn
        self.sources[key] = source
        self.labels[key] = gen.labels
        return fn


NULLABLE_FACTS = tuple(field for _, field in _NULLABLE_BITS)


def source_name(source: str) -> str:
    """The file name compiled code is registered under: the same text always gets the same name."""
    return f"<jiuzhu compiled {hashlib.sha256(source.encode()).hexdigest()[:16]}>"


def audit(tree: pyast.Module, names: frozenset[str] | set[str]) -> None:
    """Check the parsed source holds only our own shapes: one function ``run``, names we made or
    listed, allowed attributes, plain constants. Defence in depth behind the loaders' id grammar:
    text that slipped into the source as code would show up here as a name, call or attribute."""
    if len(tree.body) != 1 or not isinstance(tree.body[0], pyast.FunctionDef) or tree.body[0].name != "run":
        raise CodegenError("the generated module must define only run()")
    for node in pyast.walk(tree):
        if isinstance(node, pyast.Name):
            if node.id not in names:
                raise CodegenError(f"unexpected name {node.id!r} in generated code")
        elif isinstance(node, pyast.Attribute):
            if node.attr not in ALLOWED_ATTRIBUTES:
                raise CodegenError(f"unexpected attribute {node.attr!r} in generated code")
        elif isinstance(node, pyast.arg):
            if node.arg not in names:
                raise CodegenError(f"unexpected parameter {node.arg!r} in generated code")
        elif isinstance(node, pyast.keyword):
            if node.arg not in _KEYWORDS:
                raise CodegenError(f"unexpected keyword {node.arg!r} in generated code")
        elif isinstance(node, pyast.Constant):
            if type(node.value) not in _CONSTANTS:
                raise CodegenError(f"unexpected constant of type {type(node.value).__name__} in generated code")
        elif isinstance(node, _FORBIDDEN):
            raise CodegenError(f"unexpected {type(node).__name__} in generated code")
        elif isinstance(node, pyast.FunctionDef) and node is not tree.body[0]:
            raise CodegenError("unexpected nested function in generated code")


_FORBIDDEN = (
    pyast.Import,
    pyast.ImportFrom,
    pyast.Global,
    pyast.Nonlocal,
    pyast.ClassDef,
    pyast.AsyncFunctionDef,
    pyast.Await,
    pyast.Yield,
    pyast.YieldFrom,
    pyast.With,
    pyast.Try,
    pyast.Delete,
)


def _sort_key(r):
    return (r[0], r[1])

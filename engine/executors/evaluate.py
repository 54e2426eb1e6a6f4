"""The evaluation core: one household in, one determination out.

The library, the CLI, the HTTP service and the batch tools all call
``Engine.evaluate``. It validates the household, resolves the locality's
parameters for ``as_of``, derives the shared facts, runs each program's rules
in dependency order and explains every rule it checked.
"""

from __future__ import annotations

import threading
from typing import Any

from engine.book.rules import Program, RuleBook, Step, Template, load_rulebook
from engine.book.statuses import granted_of
from engine.executors.codegen import FastPath

# The explanation pieces live in engine/executors/outcome.py (shared with the compiled fast path); names used by
# callers of this module (tests, engine/__init__.py) stay importable from here.
from engine.executors.outcome import (  # noqa: F401
    Determination,
    _amount_of,
    _labels,
    _money,
    amount_note,
    build_reason,
    cite,
    decision_amount,
    failed_note,
    finish_program,
    guarded,
    missing_text,
    part_note,
    reason_template,
    render,
)
from engine.explain.summary import PAID_AS, finish
from engine.expr import Env, Missing
from engine.policies.parameters import ParameterSet
from engine.schema.model import PROGRAM_CODES
from engine.schema.validate import Parsed, parse

_ORDER = {code: i for i, code in enumerate(PROGRAM_CODES)}


def outline_of(det: dict) -> dict:
    """The outline of a determination: who it is, each program's members, status and amounts,
    and the household's counted members and income figures."""
    h = det["household"]
    return {
        "household_id": det["household_id"],
        "locality": det["locality"],
        "as_of": det["as_of"],
        "household": {k: h[k] for k in ("counted_members", "monthly_income", "per_capita_income", "dibao_standard")},
        "programs": [{k: p[k] for k in _OUTLINE_PROGRAM if k in p} for p in det["programs"]],
    }


_OUTLINE_PROGRAM = ("program", "members", "status", "monthly_amount", *PAID_AS.values())


class Engine:
    """A loaded rule book, ready to evaluate households."""

    def __init__(self, book: RuleBook, *, compiled: bool = True):
        book.raise_if_errors()
        self.book = book
        self.version = book.version
        self.policies = book.policies
        # The compiled fast path (engine/executors/codegen.py) and this module's closure interpreter give
        # identical determinations; the interpreter is the reference, kept for tests and debugging.
        self.fast = None
        if compiled:
            self.fast = FastPath(self)

        # Parameters worth citing when a value derived from them is used elsewhere:
        # amounts and numbers, not on/off switches that merely did not apply.
        self.citable = frozenset(k for k, spec in self.policies.schema.items() if spec.type.kind in ("money", "number", "int"))

    # -- public --------------------------------------------------------------
    def evaluate(self, household: Any) -> Determination:
        """Validate and evaluate; raises ``InputError`` for bad input."""
        return self.evaluate_parsed(parse(household))

    def evaluate_parsed(self, hh: Parsed, *, explain: bool = True) -> Determination:
        """Evaluate a validated household. ``explain=False`` leaves out the reason of each rule
        checked (programs keep their decision and interaction reasons): the same statuses and
        amounts in about two thirds of the time, for callers that store only those (the monitor). An engine
        built with ``compiled=False`` (the reference interpreter) explains everything regardless."""
        return self._evaluate(hh, "full" if explain else "decisions")

    def outline(self, hh: Parsed) -> dict:
        """Each program's status and amount and the household's figures, nothing else: what
        ``outline_of`` keeps of the determination, in under half the time of the decisions-only
        form, for callers that compare outcomes (the monitor's re-evaluations)."""
        return self._evaluate(hh, "outline")

    def _evaluate(self, hh: Parsed, detail: str) -> Any:
        ps = self.policies.resolve(hh.locality, hh.as_of)
        fast = self.fast
        if fast is not None:
            fn = fast.function(fast.variant_key(hh, ps), detail)
            return fn(hh, ps, ps.__dict__.setdefault("_reason_cache", {}))
        det = _Run(self, ps, hh.h, hh.members).run(hh)
        return outline_of(det) if detail == "outline" else det

    def evaluate_reference(self, household: Any) -> Determination:
        """Evaluate with the closure interpreter (the reference semantics), bypassing the compiled path."""
        hh = parse(household)
        ps = self.policies.resolve(hh.locality, hh.as_of)
        return _Run(self, ps, hh.h, hh.members).run(hh)

    def parameters(self, locality: str, on) -> ParameterSet:
        return self.policies.resolve(locality, on)


class _Run:
    __slots__ = ("cites", "engine", "env", "h", "members", "ps", "shared", "traces")

    def __init__(self, engine: Engine, ps: ParameterSet, h: dict, members: list[dict]):
        self.engine = engine
        self.ps = ps
        self.h = h
        self.members = members
        self.env = Env(h, ps.values)
        cache = ps.__dict__.setdefault("_reason_cache", {})
        self.cites: dict = cache
        self.traces: list[dict] = [{} for _ in members]
        self.shared: dict = {}  # reasons of shared checks, listed again by programs that 'use' them

    # -- steps -----------------------------------------------------------------
    def run(self, hh: Parsed) -> Determination:
        book = self.engine.book
        env = self.env
        h = self.h
        fact_reasons: list[dict] = []
        for scope, steps in book.facts.blocks:
            if scope == "household":
                env.m, env.mt = {}, {}
                for s in steps:
                    self._fact(s, h, env.ht, fact_reasons, -1)
            else:
                for i, rec in enumerate(self.members):
                    env.m, env.mt = rec, self.traces[i]
                    for s in steps:
                        self._fact(s, rec, env.mt, fact_reasons, i)

        results: list[tuple[int, int, dict]] = []
        for prog in book.programs:
            if prog.scope == "household":
                env.m, env.mt = {}, {}
                out = self._program(prog, h, env.ht, None)
                results.append((_ORDER[prog.code], -1, out))
            else:
                for i, rec in enumerate(self.members):
                    env.m, env.mt = rec, self.traces[i]
                    if prog.applies_to is not None and prog.applies_to(env) is False:
                        rec[prog.status_key] = prog.outside
                        rec[prog.granted_key] = granted_of(prog.outside)
                        rec[prog.amount_key] = None
                        continue
                    out = self._program(prog, rec, env.mt, rec)
                    results.append((_ORDER[prog.code], i, out))
        results.sort(key=lambda r: (r[0], r[1]))

        counted = h["counted_members"]
        household = {
            "counted_members": [m["id"] for m in counted] if counted.__class__ is not Missing else [],
            "monthly_income": _money(h["monthly_income"]),
            "per_capita_income": _money(h["per_capita_income"]),
            "dibao_standard": _money(h["dibao_standard"]),
        }
        if "deductions" in h:
            household["deductions"] = _money(h["deductions"])
        household["reasons"] = fact_reasons
        programs = [r[2] for r in results]
        summary = finish(book, programs, h, self.members)  # pays, outputs, exclusions, totals
        return Determination(
            household_id=hh.household_id,
            locality=hh.locality,
            locality_chain=list(self.ps.chain),
            as_of=hh.as_of.isoformat(),
            ruleset_version=self.engine.version,
            household=household,
            programs=programs,
            summary=summary,
        )

    def _fact(self, s: Step, store: dict, traces: dict, reasons: list, index: int) -> None:
        env = self.env
        env.trace = []
        value = s.fn(env)
        store[s.name] = value
        own = tuple(env.trace)
        if own:
            citable = self.engine.citable
            kept = tuple(k for k in own if k in citable)
            if kept:
                traces[s.name] = kept
        if not s.listed:
            return
        if s.guard is not None and s.guard(env) is False:
            return
        reason = self._reason(s, value, own)
        if s.text_pass is not None:
            self.shared[(s.name, index)] = reason
        reasons.append(reason)

    def _program(self, prog: Program, store: dict, traces: dict, rec: dict | None) -> dict:
        env = self.env
        reasons: list[dict] = []
        failed: list[str] = []
        stopped = False
        for s in prog.steps:
            kind = s.kind
            if kind == "let":
                env.trace = []
                store[s.name] = s.fn(env)
                if env.trace:
                    traces[s.name] = tuple(env.trace)
                continue
            if stopped:
                if kind == "check":
                    store[s.name] = False
                continue
            if kind == "use":
                member_scope = s.scope == "member"
                value = (rec if member_scope else self.h)[s.name]
                key = (s.name, rec["index"] if member_scope else -1)
                reason = self.shared.get(key)
                if reason is None:
                    env.trace = []
                    reason = self._reason(s, value, (env.mt if member_scope else env.ht).get(s.name, ()))
                    self.shared[key] = reason
                reasons.append(reason)
                if value is False:
                    failed.append(s.title)
                    if s.gate:
                        stopped = True
                continue
            else:
                guard = True
                if s.guard is not None:
                    env.trace = []
                    guard = s.guard(env)
                    if guard is False:
                        store[s.name] = False
                        continue
                env.trace = []
                value = guarded(guard, s.fn(env))
                store[s.name] = value
                tr = tuple(env.trace)
            reasons.append(self._reason(s, value, tr))
            if value is False:
                failed.append(s.title)
                if s.gate:
                    stopped = True

        # decision
        chosen = None
        unknown: Any = None
        if stopped:
            chosen = prog.stop_clause
        else:
            for ci, c in enumerate(prog.decision):
                if c.when is None:
                    chosen = ci
                    break
                w = c.when(env)
                if w is True:
                    chosen = ci
                    break
                if w is not False:
                    unknown = w
                    break
        env.trace = []
        amount_value: Any = None
        parts: list | None = None
        raw: list = []
        missing_raw: list = []
        if chosen is not None:
            c = prog.decision[chosen]
            if c.amount is not None:
                amount_value = c.amount(env)
            elif c.parts:
                parts = [part.fn(env) for part in c.parts]
            missing_raw = [(self._slots(f), self._slots(lb)) for f, lb in c.missing]
            raw = self._slots(c.text, decision_amount(c, amount_value, parts)[0])
        out = finish_program(
            self.cites,
            self.ps,
            prog,
            chosen,
            unknown,
            amount_value,
            parts,
            raw,
            env.trace,
            reasons,
            failed,
            rec,
            self._counted_ids(),
            missing_raw,
        )
        granted = out.pop("_granted")
        if granted is True and prog.link_specs:
            # the linked entitlements (专项救助) a granted program opens, each when its condition holds
            links = [link.public for link in prog.link_specs if link.when is None or link.when(env) is True]
            if links:
                out["links"] = links
        store[prog.status_key] = out["status"]
        store[prog.granted_key] = granted
        store[prog.amount_key] = _amount_of(out)
        return out

    def _counted_ids(self) -> list[str]:
        counted = self.h["counted_members"]
        return [m["id"] for m in counted] if counted.__class__ is not Missing else []

    # -- explanation -----------------------------------------------------------
    def _slots(self, tpl: Template | None, amount: Any = None) -> list:
        if tpl is None:
            return []
        env = self.env
        return [amount if fn is None else fn(env) for _name, fn, _conv in tpl.slots]

    def _reason(self, s: Step, value: Any, trace: tuple) -> dict:
        env = self.env
        env.trace = list(trace)
        tpl = reason_template(s, value)
        raw = [fn(env) for _name, fn, _conv in tpl.slots] if tpl is not None else []
        return build_reason(self.cites, self.ps, s, value, raw, env.trace, env.m.get("id"))

    def _citation(self, rule_id: str, base: str, trace: tuple, project_default: bool) -> tuple[str, str]:
        return cite(self.cites, self.ps, rule_id, base, trace, project_default)


# -- module-level convenience ---------------------------------------------------

_default: Engine | None = None
_lock = threading.Lock()


def default_engine() -> Engine:
    """The engine for the rules and policies of this checkout (or ``$JIUZHU_HOME``)."""
    global _default
    if _default is None:
        with _lock:
            if _default is None:
                _default = Engine(load_rulebook())
    return _default


def evaluate(household: Any, *, engine: Engine | None = None) -> Determination:
    """Evaluate one household (dict, JSON text or ``Household``) and explain every rule checked.

    Raises ``InputError`` (with ``.errors``, each naming a field) for bad input.
    """
    return (engine or default_engine()).evaluate(household)

"""The evaluation core: one household in, one determination out.

The library, the CLI, the HTTP service and the batch tools all call
``Engine.evaluate``. It validates the household, resolves the locality's
parameters for ``as_of``, derives the shared facts, runs each program's rules
in dependency order and explains every rule it checked.
"""

from __future__ import annotations

import threading
from typing import Any

from gmpy2 import mpq

from .expr import Env, Missing
from .expr.runtime import merge
from .model import PROGRAM_CODES
from .money import fmt_money
from .policy import ParameterSet
from .rules import Program, RuleBook, Step, Template, load_rulebook
from .summary import finish
from .validate import Parsed, parse

_ORDER = {code: i for i, code in enumerate(PROGRAM_CODES)}
_PD_NOTE = "项目默认值，待地方确认"


class Determination(dict):
    """The determination of CONTRACT.md: a plain JSON-ready dict with a few helpers."""

    def programs(self, code: str) -> list[dict]:
        return [p for p in self["programs"] if p["program"] == code]

    def program(self, code: str, member: str | None = None) -> dict | None:
        for p in self["programs"]:
            if p["program"] == code and (member is None or p["members"] == [member]):
                return p
        return None

    def status(self, code: str, member: str | None = None) -> str | None:
        p = self.program(code, member)
        return p["status"] if p else None


class Engine:
    """A loaded rule book, ready to evaluate households."""

    def __init__(self, book: RuleBook):
        book.raise_if_errors()
        self.book = book
        self.version = book.version
        self.policies = book.policies

        # Parameters worth citing when a value derived from them is used elsewhere:
        # amounts and numbers, not on/off switches that merely did not apply.
        self.citable = frozenset(k for k, spec in self.policies.schema.items() if spec.type.kind in ("money", "number", "int"))

    # -- public --------------------------------------------------------------
    def evaluate(self, household: Any) -> Determination:
        """Validate and evaluate; raises ``InputError`` for bad input."""
        return self.evaluate_parsed(parse(household))

    def evaluate_parsed(self, hh: Parsed) -> Determination:
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
                        rec[prog.code + ".status"] = "ineligible"
                        rec[prog.code + ".granted"] = False
                        rec[prog.code + ".amount"] = None
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
        summary = finish(book, programs, h, self.members, env)  # pays, outputs, links, exclusions, totals
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
                value = s.fn(env)
                if guard.__class__ is Missing and value is not False:
                    value = merge(guard, value)
                store[s.name] = value
                tr = tuple(env.trace)
            reasons.append(self._reason(s, value, tr))
            if value is False:
                failed.append(s.title)
                if s.gate:
                    stopped = True

        # decision
        status = None
        unknown: Any = None
        missing: list[str] = []
        chosen = None
        if stopped:
            chosen = prog.decision[-1]
        else:
            for c in prog.decision:
                if c.when is None:
                    chosen = c
                    break
                w = c.when(env)
                if w is True:
                    chosen = c
                    break
                if w is not False:
                    status = "needs_info"
                    unknown = w
                    missing = sorted({k for k, _ in w.keys})
                    missing_labels = _labels(w)
                    break
        amount = None
        breakdown = None
        decision_values: dict = {}
        env.trace = []
        if chosen is not None:
            status = chosen.status
            amount_value: Any = None
            note = ""
            if chosen.amount is not None:
                amount_value = chosen.amount(env)
                if amount_value.__class__ is Missing:
                    note = f"（金额无法计算：缺少{_labels(amount_value)}）"
                    amount_value = None
            elif chosen.parts:
                total = mpq(0)
                breakdown = []
                required_missing = None
                for lbl, fn, required in chosen.parts:
                    v = fn(env)
                    if v.__class__ is Missing:
                        breakdown.append({"name": lbl, "amount": None, "note": f"{_labels(v)}，未计入"})
                        if required:
                            required_missing = merge(required_missing, v)
                    else:
                        breakdown.append({"name": lbl, "amount": fmt_money(v)})
                        total += v
                if required_missing is not None:
                    note = f"（金额无法计算：缺少{_labels(required_missing)}）"
                    amount_value = None
                else:
                    amount_value = total
            if amount_value is not None:
                amount = amount_value
            if chosen.missing:  # a needs_info clause names the facts to supply
                unknown = Missing(frozenset((self._render(f)[0], self._render(lb)[0]) for f, lb in chosen.missing))
                missing = sorted({k for k, _ in unknown.keys})
            text, decision_values = self._render(chosen.text, {"amount": amount})
            if status == "ineligible" and failed:
                text += f"（未满足：{'、'.join(failed)}）"
            text += note
        else:
            text = f"无法作出认定：缺少{missing_labels}，请补充后重新评估"
        granted: Any
        if status in ("eligible", "gradual_exit"):
            granted = True
        elif status == "ineligible":
            granted = False
        else:
            granted = unknown
        store[prog.code + ".status"] = status
        store[prog.code + ".granted"] = granted
        store[prog.code + ".amount"] = amount
        citation, pd = self._citation(prog.code + ".decision", prog.basis, tuple(env.trace), False)
        text += pd  # an amount computed from project defaults says so
        reasons.append(
            {
                "rule": prog.code + ".decision",
                "kind": "decision",
                "passed": granted if isinstance(granted, bool) else None,
                "text": text,
                "values": decision_values,
                "citation": citation,
            }
        )
        out = {
            "program": prog.code,
            "name": prog.name,
            "scope": prog.scope,
            "members": [rec["id"]] if rec is not None else self._counted_ids(),
            "status": status,
            "monthly_amount": fmt_money(amount) if amount is not None else None,
            "reasons": reasons,
            "missing": missing,
        }
        if breakdown is not None:
            out["amount_breakdown"] = breakdown
        if prog.links and granted is True:
            out["links"] = prog.links
        return out

    def _counted_ids(self) -> list[str]:
        counted = self.h["counted_members"]
        return [m["id"] for m in counted] if counted.__class__ is not Missing else []

    # -- explanation -----------------------------------------------------------
    def _render(self, tpl: Template | None, given: dict | None = None) -> tuple[str, dict]:
        if tpl is None:
            return "", {}
        env = self.env
        texts = []
        values = {}
        for name, fn, conv in tpl.slots:
            text, value = conv(given[name] if fn is None else fn(env))
            texts.append(text)
            values[name] = value
        if tpl.order is not None:
            texts = [texts[i] for i in tpl.order]
        return tpl.fmt % tuple(texts), values

    def _reason(self, s: Step, value: Any, trace: tuple) -> dict:
        env = self.env
        env.trace = list(trace)
        missing = value.__class__ is Missing
        if s.text_pass is not None:
            tpl = s.text_pass if value is True else s.text_fail if value is False else s.text_pass
            passed = value if not missing else None
            kind = "check"
        else:
            tpl = s.text
            passed = None if missing else True
            kind = "fact"
        text, values = self._render(tpl)
        if missing:
            who = f"成员{env.m['id']}：" if s.scope == "member" else ""
            text = f"{who}{s.title}：缺少{_labels(value)}，无法判断"
        citation, pd = self._citation(s.id, s.citation, tuple(dict.fromkeys(env.trace)), s.project_default)
        if pd:
            text += pd
        reason = {"rule": s.id, "kind": kind, "passed": passed, "text": text, "values": values, "citation": citation}
        if s.scope == "member":
            reason["member"] = env.m.get("id")
        if missing:
            reason["missing"] = sorted({k for k, _ in value.keys})
        return reason

    def _citation(self, rule_id: str, base: str, trace: tuple, project_default: bool) -> tuple[str, str]:
        key = (rule_id, trace)
        hit = self.cites.get(key)
        if hit is not None:
            return hit
        ps = self.ps
        parts = [base]
        defaults: list[str] = []
        for k in trace:
            c = ps.citation(k)
            if c not in parts:
                parts.append(c)
            info = ps.info.get(k)
            if info is not None and info.project_default and info.label not in defaults:
                defaults.append(info.label)
        suffix = ""
        if defaults:
            suffix = f"（{_PD_NOTE}：{'、'.join(defaults)}）"
        elif project_default:
            suffix = f"（{_PD_NOTE}）"
        hit = ("；".join(parts), suffix)
        self.cites[key] = hit
        return hit


def _labels(m: Any) -> str:
    if m.__class__ is not Missing:
        return ""
    return "、".join(sorted({label for _k, label in m.keys}))


def _money(v: Any) -> str | None:
    if v is None or v.__class__ is Missing:
        return None
    return fmt_money(v)


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

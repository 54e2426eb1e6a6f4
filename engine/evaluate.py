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
from .policy import UNCONFIGURED, ParameterSet
from .rules import Program, RuleBook, Step, Template, load_rulebook
from .summary import PAID_AS, finish
from .validate import Parsed, parse

_ORDER = {code: i for i, code in enumerate(PROGRAM_CODES)}
_PD_NOTE = "项目默认值，待地方确认"
_READING_NOTE = "按对政策文件的解释取值，待地方确认"


class Determination(dict):
    """The determination of docs/contract.md: a plain JSON-ready dict with a few helpers."""

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
        # The compiled fast path (engine/codegen.py) and this module's closure interpreter give
        # identical determinations; the interpreter is the reference, kept for tests and debugging.
        self.fast = None
        if compiled:
            from .codegen import FastPath

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
        chosen = None
        unknown: Any = None
        if stopped:
            chosen = len(prog.decision) - 1
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
                parts = [fn(env) for _lbl, fn, _req in c.parts]
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
        store[prog.code + ".status"] = out["status"]
        store[prog.code + ".granted"] = granted
        store[prog.code + ".amount"] = _amount_of(out)
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


# -- explanation pieces shared by the interpreter and the compiled fast path -----------------


def reason_template(s: Step, value: Any) -> Template | None:
    """The sentence a step's reason uses for ``value``: pass, fail, or (unknown) pass."""
    if s.text_pass is not None:
        return s.text_fail if value is False else s.text_pass
    return s.text


def render(tpl: Template | None, raw: list) -> tuple[str, dict]:
    """Format a template from the raw values of its slots (in slot order)."""
    if tpl is None:
        return "", {}
    texts = []
    values = {}
    for (name, _fn, conv), v in zip(tpl.slots, raw, strict=True):
        text, value = conv(v)
        texts.append(text)
        values[name] = value
    if tpl.order is not None:
        texts = [texts[i] for i in tpl.order]
    return tpl.fmt % tuple(texts), values


def build_reason(cites: dict, ps: ParameterSet, s: Step, value: Any, raw: list, trace: list, member_id: str | None) -> dict:
    """One entry of ``reasons``: outcome, sentence, values and citation of a checked step."""
    missing = value.__class__ is Missing
    if s.text_pass is not None:
        passed = value if not missing else None
        kind = "check"
    else:
        passed = None if missing else True
        kind = "fact"
    text, values = render(reason_template(s, value), raw)
    if missing:
        who = f"成员{member_id}：" if s.scope == "member" else ""
        text = f"{who}{s.title}：暂无法判断（{missing_text(value)}）"
    citation, pd = cite(cites, ps, s.id, s.citation, tuple(dict.fromkeys(trace)), s.project_default)
    if pd:
        text += pd
    reason = {"rule": s.id, "kind": kind, "passed": passed, "text": text, "values": values, "citation": citation}
    if s.scope == "member":
        reason["member"] = member_id
    if missing:
        reason["missing"] = sorted({k for k, _ in value.keys})
    return reason


def cite(cites: dict, ps: ParameterSet, rule_id: str, base: str, trace: tuple, project_default: bool) -> tuple[str, str]:
    """The citation of a rule plus the sources of the parameters it read, and the project-default note."""
    key = (rule_id, trace)
    hit = cites.get(key)
    if hit is not None:
        return hit
    parts = [base]
    defaults: list[str] = []
    readings: list[str] = []
    for k in trace:
        c = ps.citation(k)
        if c not in parts:
            parts.append(c)
        info = ps.info.get(k)
        if info is not None and info.project_default and info.label not in defaults:
            defaults.append(info.label)
        if info is not None and info.interpretation and info.label not in readings:
            readings.append(info.label)
    notes = []
    # labels are quoted: many end in a bracket of their own ("…上限（折合月低保标准的月数）")
    if defaults:
        notes.append(f"{_PD_NOTE}：{'、'.join(f'“{d}”' for d in defaults)}")
    elif project_default:
        notes.append(_PD_NOTE)
    if readings:
        notes.append(f"{_READING_NOTE}：{'、'.join(f'“{r}”' for r in readings)}")
    suffix = f"（{'；'.join(notes)}）" if notes else ""
    hit = ("；".join(parts), suffix)
    cites[key] = hit
    return hit


def decision_amount(c, amount_value: Any, parts: list | None) -> tuple[Any, str, list | None]:
    """The amount a chosen clause pays (exact, or None), a note when it cannot be computed, and the breakdown."""
    if c.amount is not None:
        if amount_value.__class__ is Missing:
            return None, amount_note(amount_value), None
        return amount_value, "", None
    if parts is not None:
        total = mpq(0)
        breakdown = []
        required_missing = None
        for (lbl, _fn, required), v in zip(c.parts, parts, strict=True):
            if v.__class__ is Missing:
                breakdown.append({"name": lbl, "amount": None, "note": part_note(v)})
                if required:
                    required_missing = merge(required_missing, v)
            else:
                breakdown.append({"name": lbl, "amount": fmt_money(v)})
                total += v
        if required_missing is not None:
            return None, amount_note(required_missing), breakdown
        return total, "", breakdown
    return None, "", None


def finish_program(
    cites: dict,
    ps: ParameterSet,
    prog: Program,
    chosen: int | None,
    unknown: Any,
    amount_value: Any,
    parts: list | None,
    raw: list,
    trace: list,
    reasons: list,
    failed: list,
    rec: dict | None,
    counted_ids: list,
    missing_raw: list | None = None,
) -> dict:
    """A program's entry in ``programs``: status, amount, the decision's reason, missing facts.

    ``missing_raw`` holds the slot values of a ``needs_info`` clause's ``missing`` templates
    (field, label), which name the facts to supply.
    """
    missing: list[str] = []
    breakdown = None
    if chosen is not None:
        c = prog.decision[chosen]
        status = c.status
        amount, note, breakdown = decision_amount(c, amount_value, parts)
        if c.missing:
            unknown = Missing(
                frozenset(
                    (render(f, fr)[0], render(lb, lr)[0]) for (f, lb), (fr, lr) in zip(c.missing, missing_raw or [], strict=True)
                )
            )
            missing = sorted({k for k, _ in unknown.keys})
        text, decision_values = render(c.text, raw)
        if status == "ineligible" and failed:
            text += failed_note(failed)
        text += note
    else:
        status = "needs_info"
        amount = None
        decision_values = {}
        missing = sorted({k for k, _ in unknown.keys})
        text = f"暂无法作出认定：{missing_text(unknown)}"
    granted = _granted(status, unknown)
    citation, pd = cite(cites, ps, prog.code + ".decision", prog.basis, tuple(trace), False)
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
        "members": [rec["id"]] if rec is not None else counted_ids,
        "status": status,
        "monthly_amount": fmt_money(amount) if amount is not None else None,
        "reasons": reasons,
        "missing": missing,
    }
    if breakdown is not None:
        out["amount_breakdown"] = breakdown
    out["_amount"] = amount
    out["_granted"] = granted
    return out


def _granted(status: str, unknown: Any) -> Any:
    if status in ("eligible", "gradual_exit"):
        return True
    if status == "ineligible":
        return False
    return unknown


def _amount_of(out: dict) -> Any:
    return out.pop("_amount")


_LABELS: dict[frozenset, str] = {}


def _labels(m: Any) -> str:
    """What is missing, as a list ("城市低保标准未配置、成员p2的生活自理能力"); cached by content."""
    if m.__class__ is not Missing:
        return ""
    text = _LABELS.get(m.keys)
    if text is None:
        if len(_LABELS) > 50_000:
            _LABELS.clear()
        text = _LABELS[m.keys] = "、".join(sorted({label for _k, label in m.keys}))
    return text


_MISSING_TEXT: dict[frozenset, str] = {}


def missing_text(m: Any) -> str:
    """What is missing, said to the family: facts they can supply apart from settings the bureau
    has not configured ("请补充：成员c1的生活自理能力；本地尚未配置城市低保标准，请联系民政部门")."""
    if m.__class__ is not Missing:
        return ""
    text = _MISSING_TEXT.get(m.keys)
    if text is None:
        labels = sorted({label for _k, label in m.keys})
        settings = [lb[: -len(UNCONFIGURED)] for lb in labels if lb.endswith(UNCONFIGURED)]
        facts = [lb for lb in labels if not lb.endswith(UNCONFIGURED)]
        parts = []
        if facts:
            parts.append(f"请补充：{'、'.join(facts)}")
        if settings:
            parts.append(f"本地尚未配置{'、'.join(settings)}，请联系民政部门")
        if len(_MISSING_TEXT) > 50_000:
            _MISSING_TEXT.clear()
        text = _MISSING_TEXT[m.keys] = "；".join(parts)
    return text


def amount_note(m: Any) -> str:
    return f"（金额暂无法计算：{missing_text(m)}）"


def part_note(m: Any) -> str:
    return f"未计入（{missing_text(m)}）"


def failed_note(failed: list[str]) -> str:
    """The conditions an ineligible decision did not meet, by their titles."""
    return "（不符合的条件：" + "、".join(f"“{t}”" for t in failed) + "）"


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

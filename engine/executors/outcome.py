"""The determination and its explanation pieces, shared by the closure interpreter (engine/executors/evaluate.py)
and the compiled fast path (engine/executors/codegen.py): each imports them from here, so neither imports the other's
module for them."""

from __future__ import annotations

from typing import Any

from gmpy2 import mpq

from engine.book.rules import Clause, Part, Program, Step, Template
from engine.book.statuses import granted as granted_of_status
from engine.book.templates import money_text
from engine.expr import Missing
from engine.expr.runtime import merge
from engine.policies.parameters import UNCONFIGURED, ParameterSet
from engine.schema.money import fmt_money

ZERO = mpq(0)
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


def guarded(guard: Any, value: Any) -> Any:
    """A check's outcome under its ``applies_if`` guard (a false guard skips the check before this):
    an unknown guard makes the outcome unknown too, unless the check failed anyway."""
    if guard.__class__ is Missing and value is not False:
        return merge(guard, value)
    return value


def clause_amount(value: Any) -> tuple[Any, str]:
    """A clause's ``amount``: the exact value, or None and a note saying what is missing."""
    if value.__class__ is Missing:
        return None, amount_note(value)
    return value, ""


def parts_amount(parts: tuple[Part, ...], values: list) -> tuple[Any, str, list]:
    """A clause paid in ``parts``: the sum of the known parts, and a breakdown entry per part (an
    unknown part is left out and says why). An unknown *required* part makes the amount unknown."""
    total = ZERO
    breakdown = []
    required_missing = None
    for part, v in zip(parts, values, strict=True):
        if v.__class__ is Missing:
            breakdown.append({"name": part.label, "amount": None, "note": part_note(v)})
            if part.required:
                required_missing = merge(required_missing, v)
        else:
            breakdown.append({"name": part.label, "amount": money_text(v)})
            total += v
    if required_missing is not None:
        return None, amount_note(required_missing), breakdown
    return total, "", breakdown


def decision_amount(c: Clause, amount_value: Any, parts: list | None) -> tuple[Any, str, list | None]:
    """The amount a chosen clause pays (exact, or None), a note when it cannot be computed, and the breakdown."""
    if c.amount is not None:
        return (*clause_amount(amount_value), None)
    if parts is not None:
        return parts_amount(c.parts, parts)
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
        if c.lists_failed and failed:
            text += failed_note(failed)
        text += note
    else:
        status = "needs_info"
        amount = None
        decision_values = {}
        missing = sorted({k for k, _ in unknown.keys})
        text = f"暂无法作出认定：{missing_text(unknown)}"
    granted = granted_of_status(status, unknown)
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

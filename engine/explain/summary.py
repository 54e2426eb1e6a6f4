"""After every program has run: what each result pays, its linked entitlements, and the household total.

This stage works on the program result dicts of a determination (and reads,
never writes, the values the programs stored), so any evaluator that produces
those dicts can reuse it:

1. ``pays``: a program's decision amount is monthly cash (``monthly_amount``),
   a yearly amount (``annual_amount``, e.g. 孤儿助学 per academic year), a
   one-off amount (``one_off_amount``, e.g. 临时救助), the monthly value of
   services (``monthly_service_value``, e.g. “7+1” 居家养老服务) or nothing.
2. ``outputs``: named values of a granted program shown as ``details``
   (临时救助: its type and approval level).
3. ``links`` (the linked entitlements, 专项救助, a granted program opens) are
   worked out with the decision itself, where the program's values are in scope.
4. Exclusions from ``rules/interactions.yaml`` (``engine.book.interactions``).
5. The household ``summary``: every granted program counted exactly once,
   in ``paid`` (with its amount) or ``not_paid`` (with the reason), and the
   totals, which are the sums of the amounts listed in ``paid``.
"""

from __future__ import annotations

from typing import Any

from engine.book.interactions import apply_exclusions
from engine.book.statuses import GRANTED
from engine.book.templates import as_json
from engine.expr import Missing
from engine.schema.money import cents_of, yuan_text

PAID_AS = {  # where a program's decision amount goes, when not monthly_amount
    "annual": "annual_amount",
    "one_off": "one_off_amount",
    "in_kind": "monthly_service_value",
}


def finish(book: Any, entries: list[dict], h: dict, members: list[dict], env: Any = None) -> dict:
    """Complete the program dicts in place and return the household summary."""
    index = book.__dict__.get("_summary_index")
    if index is None:  # per rule book, not per household
        index = ({p.code: p for p in book.programs}, {p.code: p.pays for p in book.programs})
        book.__dict__["_summary_index"] = index
    programs, pays = index
    by_id = None
    for out in entries:
        prog = programs[out["program"]]
        if prog.pays == "monthly" and not prog.outputs:
            continue
        if prog.scope == "household":
            store = h
        else:
            by_id = by_id or {m["id"]: m for m in members}
            store = by_id[out["members"][0]]
        _complete(prog, out, store)
    apply_exclusions(book.interactions, entries)
    return household_summary(entries, pays)


def _complete(prog: Any, out: dict, store: dict) -> None:
    granted = out["status"] in GRANTED
    field = PAID_AS.get(prog.pays)
    if field is not None:
        out[field] = out["monthly_amount"]
        out["monthly_amount"] = None
    if prog.outputs and granted:
        out["details"] = {name: _json(store.get(key), t) for name, key, t in prog.outputs}


def _json(value: Any, t: Any) -> Any:
    if value is None or value.__class__ is Missing:
        return None
    return as_json(value, t)


def household_summary(entries: list[dict], pays: dict[str, str]) -> dict:
    """Every granted (or undecided) program once: paid with its amount, or not paid with the reason."""
    totals = {"monthly": 0, "annual": 0, "one_off": 0}  # fen
    paid: list[dict] = []
    not_paid: list[dict] = []
    non_cash: list[dict] = []
    review: list[dict] = []  # paid amounts that overlap another program in part: for the caseworker to reduce
    complete = True
    for e in entries:
        status = e["status"]
        if status not in GRANTED and status != "needs_info":
            continue
        item = {"program": e["program"], "name": e["name"], "scope": e["scope"], "members": e["members"]}
        if status == "needs_info":
            complete = False
            not_paid.append({**item, "reason": "needs_info", "text": _decision_text(e), "missing": e["missing"]})
            continue
        kind = pays.get(e["program"], "monthly")
        if e.get("paid") is False:
            not_paid.append({**item, "reason": "excluded", "excluded_by": e.get("excluded_by"), "text": _excluded_text(e)})
            continue
        if kind in ("in_kind", "none"):
            extra = {"monthly_service_value": e["monthly_service_value"]} if e.get("monthly_service_value") else {}
            non_cash.append({**item, **extra})
            continue
        field = "monthly_amount" if kind == "monthly" else PAID_AS[kind]
        amount = e.get(field)
        if amount is None:
            complete = False
            not_paid.append({**item, "reason": "amount_unknown", "text": "金额未确定（标准未配置或缺少信息）"})
            continue
        totals[kind] += cents_of(amount)
        paid.append({**item, field: amount})
        if e["scope"] == "household":
            # interaction reasons come last (the exclusions stage appends them after the decision)
            reasons = e["reasons"]
            i = len(reasons)
            while i and reasons[i - 1].get("kind") == "interaction":
                i -= 1
            for r in reasons[i:]:
                if r.get("passed") is None:
                    complete = False
                    review.append({**item, "rule": r["rule"], "text": r["text"]})
    monthly = yuan_text(totals["monthly"])
    text = f"每月现金救助合计{monthly}元"
    if totals["annual"]:
        text += f"；另按学年发放{yuan_text(totals['annual'])}元"
    if totals["one_off"]:
        text += f"；一次性临时救助建议{yuan_text(totals['one_off'])}元"
    notes = []
    if any(x["reason"] in ("needs_info", "amount_unknown") for x in not_paid):
        notes.append("部分项目金额未确定或待补充信息，合计未含这些项目")
    if review:
        notes.append("含与特困供养部分重复、应核减的金额，请复核")
    if notes:
        text += f"（{'；'.join(notes)}）"
    return {
        "monthly_total": monthly,
        "annual_total": yuan_text(totals["annual"]),
        "one_off_total": yuan_text(totals["one_off"]),
        "complete": complete,
        "paid": paid,
        "not_paid": not_paid,
        "non_cash": non_cash,
        "review": review,
        "text": text,
    }


def _decision_text(e: dict) -> str:
    for r in reversed(e["reasons"]):
        if r.get("kind") == "decision":
            return r["text"]
    return "待补充信息"


def _excluded_text(e: dict) -> str:
    for r in reversed(e["reasons"]):
        if r.get("kind") == "interaction" and r.get("passed") is False:
            return r["text"]
    return "与其他项目不重复享受"


"""Compare batch results with the single-household evaluator, household by household.

Used by the property tests and by ``jiuzhu batch --verify N`` (a spot check of a
sample of a real run): for each household, every program's status, monthly amount
(as presented, to the fen) and first failed rule must be the same.
"""

from __future__ import annotations

from typing import Any

from gmpy2 import mpq

from engine.batch.run import PartResult, amount_of, first_failed
from engine.columnar.columns import Part
from engine.columnar.vectorize import NOT_CHECKED, STATUS_CODE, Plan
from engine.schema.money import fmt_money

STATUS_NAME = {v: k for k, v in STATUS_CODE.items()}

Outcome = dict[tuple[str, str | None], tuple[str, str | None, str | None, bool | None]]


def batch_outcomes(res: PartResult, part: Part, plan: Plan, i: int) -> Outcome:
    """Program outcomes of household ``i`` of a part, as the batch evaluator found them."""
    out: Outcome = {}
    a, b = int(part.offsets[i]), int(part.offsets[i + 1])
    for p in plan.programs:
        rows = range(a, b) if p.member else [i]
        target = res.member if p.member else res.household
        for r in rows:
            st = int(target[p.code + ".status"][r])
            if st == NOT_CHECKED:
                continue
            cents = int(target[p.code + ".cents"][r])
            amount = None if target[p.code + ".null"][r] else fmt_money(_q(cents))
            first = int(target[p.code + ".first"][r])
            member = str(part.member_ids[r]) if p.member else None
            paid = bool(target[p.code + ".paid"][r]) if st in (0, 2) else None
            out[(p.code, member)] = (STATUS_NAME[st], amount, p.rules[first] if first >= 0 else None, paid)
    return out


def single_outcomes(det: dict, codes: set[str] | None = None) -> Outcome:
    """The same outcomes from a determination of the single evaluator."""
    out: Outcome = {}
    for prog in det["programs"]:
        if codes is not None and prog["program"] not in codes:
            continue
        member = prog["members"][0] if prog["scope"] == "member" else None
        granted = prog["status"] in ("eligible", "gradual_exit")
        paid = (prog.get("paid", True) is not False) if granted else None
        out[(prog["program"], member)] = (prog["status"], amount_of(prog), first_failed(prog), paid)
    return out


def household_facts(res: PartResult, i: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, (vals, null) in res.facts.items():
        if null[i]:
            out[name] = None
        elif name == "counted_count":
            out[name] = int(vals[i])
        else:
            out[name] = fmt_money(_q(int(vals[i])))
    return out


def single_facts(det: dict, names) -> dict[str, Any]:
    hh = det["household"]
    out: dict[str, Any] = {}
    for name in names:
        out[name] = len(hh["counted_members"]) if name == "counted_count" else hh.get(name)
    return out


def _q(cents: int):
    return mpq(cents, 100)

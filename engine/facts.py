"""The facts a rule may read, and how a validated household becomes those facts.

This table is the rule language's view of CONTRACT.md: every input field a
rule can name, with its type. A field the household did not supply that a
decision needs (``supporters``, ``assets``, ``hukou_locality``...) becomes a
``Missing`` value naming the field, so the decision says ``needs_info``
instead of guessing.
"""

from __future__ import annotations

from typing import Any

from gmpy2 import mpq

from .expr.runtime import Missing
from .expr.types import BOOL, DATE, INT, MONEY, STR, T, enum, list_of, set_of
from .model import (
    PROGRAM_CODES,
    Household,
)

AREA = enum("urban", "rural")
RELATION = enum("head", "spouse", "child", "parent", "grandparent", "grandchild", "sibling", "other")
DISABILITY_CATEGORY = T(
    "str", frozenset({"visual", "hearing", "speech", "limb", "intellectual", "mental", "multiple"}), optional=True
)
SELF_CARE = enum("full", "partial", "none")
SCHOOLING = enum("none", "preschool", "compulsory", "high_school", "vocational", "college", "graduate")
MEMBER_STATUS = set_of("incarcerated", "compulsory_rehab", "religious_apart_3y", "declared_missing", "deceased")
SUPPORTERS = enum("none", "unable", "able")
PARENT_STATUS = enum(
    "deceased",
    "declared_dead",
    "declared_missing",
    "severe_disability",
    "serious_illness",
    "incarcerated",
    "compulsory_rehab",
    "restricted",
    "unreachable",
    "normal",
)
INCOME_TYPE = enum(
    "wage",
    "business",
    "property",
    "transfer",
    "pension",
    "other",
    "special_care",
    "family_planning_award",
    "scholarship",
    "heroism_award",
    "social_assistance",
    "resident_pension_base",
)
EXPENSE_TYPE = enum("medical", "rehabilitation", "care", "education", "housing", "other")
PROGRAMS = set_of(*PROGRAM_CODES)

RECORDS: dict[str, dict[str, T]] = {
    "income": {"type": INCOME_TYPE, "monthly": MONEY},
    "vehicle": {"exempt": BOOL},
    "parent": {"status": PARENT_STATUS},
    "expense": {"type": EXPENSE_TYPE, "monthly": MONEY},
    "event": {"type": STR, "date": DATE, "loss": MONEY, "locality": T("str", optional=True)},
}

MEMBER_FIELDS: dict[str, T] = {
    "id": STR,
    "index": INT,
    "relation": RELATION,
    "birth_date": DATE,
    "sex": T("str", frozenset({"male", "female"})),
    "hukou_locality": STR,
    "residence_permit_locality": T("str", optional=True),
    "has_disability": BOOL,
    "disability_category": DISABILITY_CATEGORY,
    "disability_grade": T("int", optional=True),
    "serious_illness": BOOL,
    "self_care": SELF_CARE,
    "schooling": SCHOOLING,
    "employed": BOOL,
    "status": MEMBER_STATUS,
    "supporters": SUPPORTERS,
    "parents": list_of("parent"),
    "incomes": list_of("income"),
    "tags": T("set"),
    "benefits": PROGRAMS,
}

HOUSEHOLD_FACTS: dict[str, T] = {
    "household_id": STR,
    "locality": STR,
    "as_of": DATE,
    "area": AREA,
    "members": list_of("member"),
    "assets.financial": MONEY,
    "assets.vehicles": list_of("vehicle"),
    "assets.properties": INT,
    "rigid_expenses": list_of("expense"),
    "current_benefits": PROGRAMS,
    "events": list_of("event"),
    **{f"current_amounts.{code}": MONEY for code in PROGRAM_CODES},
}

# Labels used when a fact is missing: "缺少成员p2的法定义务人情况".
MEMBER_LABELS = {
    "hukou_locality": "户籍所在地",
    "self_care": "生活自理能力",
    "supporters": "法定赡养、抚养、扶养义务人情况",
    "sex": "性别",
}

_ASSETS_MISSING = Missing(frozenset({("assets", "家庭财产情况（assets）")}))


_MISSING_CACHE: dict[tuple[int, str, str], Missing] = {}


def member_missing(index: int, member_id: str, field: str) -> Missing:
    """Missing value for a member fact not supplied; cached, as the same ids recur across households."""
    key = (index, member_id, field)
    m = _MISSING_CACHE.get(key)
    if m is None:
        if len(_MISSING_CACHE) > 50_000:
            _MISSING_CACHE.clear()
        m = Missing(frozenset({(f"members[{index}].{field}", f"成员{member_id}的{MEMBER_LABELS[field]}")}))
        _MISSING_CACHE[key] = m
    return m


def build_facts(hh: Household) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Household-scope facts and one record per member, as the rules see them."""
    household_benefits = frozenset(hh.current_benefits)
    members: list[dict[str, Any]] = []
    for i, m in enumerate(hh.members):
        d = m.disability
        rec = {
            "id": m.id,
            "index": i,
            "relation": m.relation,
            "birth_date": m.birth_date,
            "sex": m.sex if m.sex is not None else member_missing(i, m.id, "sex"),
            "hukou_locality": m.hukou_locality if m.hukou_locality is not None else member_missing(i, m.id, "hukou_locality"),
            "residence_permit_locality": m.residence_permit_locality,
            "has_disability": d is not None,
            "disability_category": d.category if d is not None else None,
            "disability_grade": d.grade if d is not None else None,
            "serious_illness": m.serious_illness,
            "self_care": m.self_care if m.self_care is not None else member_missing(i, m.id, "self_care"),
            "schooling": m.schooling,
            "employed": m.employed,
            "status": frozenset(m.status),
            "supporters": m.supporters if m.supporters is not None else member_missing(i, m.id, "supporters"),
            "parents": tuple({"status": p.status} for p in m.parents),
            "incomes": tuple({"type": x.type, "monthly": x.monthly} for x in m.incomes),
            "tags": frozenset(m.tags),
            "benefits": frozenset(m.current_benefits) if m.current_benefits is not None else household_benefits,
        }
        members.append(rec)
    a = hh.assets
    h: dict[str, Any] = {
        "household_id": hh.household_id,
        "locality": hh.locality,
        "as_of": hh.as_of,
        "area": hh.area,
        "members": tuple(members),
        "assets.financial": a.financial if a is not None else _ASSETS_MISSING,
        "assets.vehicles": tuple({"exempt": v.exempt} for v in a.vehicles) if a is not None else _ASSETS_MISSING,
        "assets.properties": a.properties if a is not None else _ASSETS_MISSING,
        "rigid_expenses": tuple({"type": e.type, "monthly": e.monthly} for e in hh.rigid_expenses),
        "current_benefits": household_benefits,
        "events": tuple(
            {
                "type": e.type,
                "date": e.date,
                "loss": e.loss if e.loss is not None else Missing(frozenset({(f"events[{j}].loss", f"事件{e.type}的损失金额")})),
                "locality": e.locality,
            }
            for j, e in enumerate(hh.events)
        ),
    }
    amounts = hh.current_amounts
    for code in PROGRAM_CODES:
        v = amounts.get(code)
        h[f"current_amounts.{code}"] = (
            mpq(v) if v is not None else Missing(frozenset({(f"current_amounts.{code}", f"现领取的{code}月金额")}))
        )
    return h, members

"""The facts a rule may read, and how a validated household becomes those facts.

This table is the rule language's view of docs/contract.md: every input field a
rule can name, with its type. A field the household did not supply that a
decision needs (``supporters``, ``assets``, ``hukou_locality``...) becomes a
``Missing`` value naming the field, so the decision says ``needs_info``
instead of guessing.
"""

from __future__ import annotations

from engine.expr.runtime import Missing
from engine.expr.types import BOOL, DATE, INT, MONEY, STR, T, enum, list_of, set_of
from engine.schema.vocab import (
    AREAS,
    DISABILITY_CATEGORIES,
    EXPENSE_TYPES,
    INCOME_TYPES,
    MEMBER_STATUSES,
    PARENT_STATUSES,
    PROGRAM_CODES,
    RELATIONS,
    SCHOOLING,
    SELF_CARE,
    SEXES,
    SUPPORTERS,
)

AREA = enum(*AREAS)
RELATION = enum(*RELATIONS)
DISABILITY_CATEGORY = T("str", frozenset(DISABILITY_CATEGORIES), optional=True)
SELF_CARE_T = enum(*SELF_CARE)
SCHOOLING_T = enum(*SCHOOLING)
MEMBER_STATUS = set_of(*MEMBER_STATUSES)
SUPPORTERS_T = enum(*SUPPORTERS)
PARENT_STATUS = enum(*PARENT_STATUSES)
INCOME_TYPE = enum(*INCOME_TYPES)
EXPENSE_TYPE = enum(*EXPENSE_TYPES)
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
    "sex": T("str", frozenset(SEXES)),
    "hukou_locality": STR,
    "residence_permit_locality": T("str", optional=True),
    "has_disability": BOOL,
    "disability_category": DISABILITY_CATEGORY,
    "disability_grade": T("int", optional=True),
    "serious_illness": BOOL,
    "self_care": SELF_CARE_T,
    "schooling": SCHOOLING_T,
    "employed": BOOL,
    "status": MEMBER_STATUS,
    "supporters": SUPPORTERS_T,
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

"""The facts a rule may read, and how a validated household becomes those facts.

These tables are the rule language's view of docs/contract.md: every input field a
rule can name, with its type. They are derived from the one declaration of the record,
engine.schema.record (each field's ``facts``). A field the household did not supply that a
decision needs (``supporters``, ``assets``, ``hukou_locality``...) becomes a
``Missing`` value naming the field, so the decision says ``needs_info``
instead of guessing.
"""

from __future__ import annotations

from engine.expr.runtime import Missing
from engine.expr.types import T
from engine.schema.record import fact_tables, missing_labels

HOUSEHOLD_FACTS: dict[str, T]
MEMBER_FIELDS: dict[str, T]
RECORDS: dict[str, dict[str, T]]  # the list records' facts but the member's (income, vehicle, parent, expense, event)
HOUSEHOLD_FACTS, MEMBER_FIELDS, RECORDS = fact_tables()

# Labels used when a fact is missing: "缺少成员p2的法定义务人情况".
MEMBER_LABELS: dict[str, str] = missing_labels("member")

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

"""The facts a household's monitoring session holds, and their fields.

Monitoring rules match these facts (``rules/monitoring/``); the table below is
the closed list of what a rule condition or sentence may name, with types, so
a misspelt field is refused when the rules load. Dates are day numbers
(``date.toordinal()``) in ``day``/``due`` for arithmetic, and ISO text in
``date`` for sentences; money is whole fen (integers), shown as yuan.

* ``event``: every accepted event (kept ``retain_days``), with the household's
  income before it;
* ``income``: the household's income after each re-evaluation;
* ``change``: one per program whose status or amount changed on this event
  (present while the event is processed, then retracted);
* ``milestone``: a dated thing still to come (a birthday, a 渐退期 end, a review);
* ``clock``: today for the session (the latest event or tick date).
"""

from __future__ import annotations

from engine.schema.vocab import PROGRAM_CODES, SCHOOLING

from ..expr.types import BOOL, INT, MONEY, STR, T, enum
from .events import EVENT_TYPES

STATUS_OR_NONE = enum("eligible", "ineligible", "gradual_exit", "needs_info", "none")
BUILTIN_MILESTONES = ("gradual_exit_end", "review_due")


def fact_schemas(milestone_names: tuple[str, ...]) -> dict[str, dict[str, T]]:
    return {
        "event": {
            "type": enum(*EVENT_TYPES),
            "day": INT,
            "date": STR,
            "member": STR,
            "loss": MONEY,
            "cost": MONEY,
            "cause": STR,
            "monthly_income": MONEY,
            "per_capita_income": MONEY,
            "counted_count": INT,
        },
        "income": {"day": INT, "date": STR, "per_capita_income": MONEY, "monthly_income": MONEY, "counted_count": INT},
        "change": {
            "program": enum(*PROGRAM_CODES),
            "program_name": STR,
            "member": STR,
            "before": STATUS_OR_NONE,
            "after": STATUS_OR_NONE,
            "amount_before": MONEY,
            "amount_after": MONEY,
            "has_amount_before": BOOL,
            "has_amount_after": BOOL,
            "receiving": BOOL,
            "day": INT,
            "date": STR,
        },
        "milestone": {
            "name": enum(*milestone_names, *BUILTIN_MILESTONES),
            "member": STR,
            "due": INT,
            "date": STR,
            "age": INT,
            "schooling": enum(*SCHOOLING),
            "in_school": BOOL,
            "months": INT,
        },
        "clock": {"day": INT, "date": STR},
    }

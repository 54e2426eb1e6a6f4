"""The statuses a decision gives, and what each one means for the programs after it.

One place for these choices: the loader lowers them into the plan (``Clause.granted``),
the interpreter, the printer of Python source and the columnar evaluator read them from
there, and the exclusions stage and the summary count paid programs by ``GRANTED``.
"""

from __future__ import annotations

from typing import Any

STATUSES = ("eligible", "ineligible", "gradual_exit", "needs_info")
GRANTED = frozenset({"eligible", "gradual_exit"})
# what a member program stores for a member outside its ``applies_to`` (the member is not listed)
OUTSIDE = "ineligible"


def granted_of(status: str) -> bool | None:
    """What ``<program>.granted`` holds after a clause of this status: None (unknown) for needs_info."""
    if status in GRANTED:
        return True
    if status == "needs_info":
        return None
    return False


def granted(status: str, unknown: Any) -> Any:
    """``<program>.granted`` of a decided program: unknown (the Missing that stopped the
    decision, or None) where the status is needs_info."""
    g = granted_of(status)
    return unknown if g is None else g

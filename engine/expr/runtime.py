"""Run-time values shared by the expression backends."""

from __future__ import annotations

import calendar
import datetime as dt


class Missing:
    """A value that cannot be known: a fact not supplied or a parameter not configured.

    It carries the names of what is missing (``(path, label)`` pairs) so that a
    ``needs_info`` decision can say exactly which fact or parameter to supply.
    Logic is three-valued: ``False and Missing`` is ``False``; ``True and
    Missing`` is ``Missing``.
    """

    __slots__ = ("keys",)

    def __init__(self, keys: frozenset[tuple[str, str]]):
        self.keys = keys

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"Missing({sorted(k for k, _ in self.keys)})"

    def __bool__(self) -> bool:
        raise TypeError("a Missing value has no truth value; test with 'is_missing'")


def missing(path: str, label: str) -> Missing:
    return Missing(frozenset({(path, label)}))


def merge(a: object, b: object) -> Missing:
    keys: frozenset = frozenset()
    if a.__class__ is Missing:
        keys = a.keys  # type: ignore[union-attr]
    if b.__class__ is Missing:
        keys = keys | b.keys  # type: ignore[union-attr]
    return Missing(keys)


def is_missing(v: object) -> bool:
    return v.__class__ is Missing


def years_between(start: dt.date, end: dt.date) -> int:
    """Completed years (周岁). A 29 February birthday is reached on 1 March in common years."""
    years = end.year - start.year
    if (end.month, end.day) < (start.month, start.day):
        years -= 1
    return years


def months_between(start: dt.date, end: dt.date) -> int:
    """Completed calendar months from ``start`` to ``end``."""
    months = (end.year - start.year) * 12 + (end.month - start.month)
    if end.day < start.day and end.day < calendar.monthrange(end.year, end.month)[1]:
        months -= 1
    return months


def add_months(d: dt.date, n: int) -> dt.date:
    y, m = divmod(d.month - 1 + n, 12)
    year, month = d.year + y, m + 1
    day = min(d.day, calendar.monthrange(year, month)[1])
    return dt.date(year, month, day)


def within(code: str | None, locality: str) -> bool:
    """Is division ``code`` inside (or equal to) ``locality``? Codes are GB/T 2260."""
    if code is None:
        return False
    if locality == "100000":
        return True
    if locality.endswith("0000"):
        return code[:2] == locality[:2]
    if locality.endswith("00"):
        return code[:4] == locality[:4]
    return code == locality

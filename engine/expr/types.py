"""Static types of the rule language.

Every name and every expression has one of these types, fixed at load time,
so a rule comparing money with a date or an area with a misspelt value is
refused before any household is evaluated.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class T:
    kind: str  # bool | int | number | money | date | str | set | list | record | none
    domain: frozenset[str] | None = None  # allowed values for str / set-of-str
    record: str | None = None  # record name for list / record
    optional: bool = False  # may hold ``none`` (absent, e.g. no disability)

    def __str__(self) -> str:
        base = {
            "bool": "布尔 bool",
            "int": "整数 int",
            "number": "数值 number",
            "money": "金额 money",
            "date": "日期 date",
            "str": "文本 text",
            "set": "集合 set",
            "list": f"列表 list[{self.record}]",
            "record": f"记录 {self.record}",
            "none": "none",
        }[self.kind]
        return base + ("?" if self.optional else "")

    def plain(self) -> T:
        return T(self.kind, self.domain, self.record, False)


BOOL = T("bool")
INT = T("int")
NUMBER = T("number")
MONEY = T("money")
DATE = T("date")
STR = T("str")
NONE = T("none")


def enum(*values: str) -> T:
    return T("str", frozenset(values))


def set_of(*values: str) -> T:
    return T("set", frozenset(values) if values else None)


def list_of(record: str) -> T:
    return T("list", record=record)


def record(name: str) -> T:
    return T("record", record=name)


NUMERIC = {"int", "number", "money"}


def parse_type(spec: str) -> T:
    """Parse a type name used in rule files (``money``, ``bool``, ``set``...)."""
    spec = spec.strip()
    optional = spec.endswith("?")
    spec = spec.rstrip("?")
    simple = {"bool": BOOL, "int": INT, "number": NUMBER, "money": MONEY, "date": DATE, "str": STR, "set": T("set")}
    if spec in simple:
        t = simple[spec]
    elif spec.startswith("list[") and spec.endswith("]"):
        t = list_of(spec[5:-1])
    else:
        raise ValueError(f"unknown type {spec!r}")
    return T(t.kind, t.domain, t.record, optional)

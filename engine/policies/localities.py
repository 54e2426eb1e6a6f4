"""Administrative division codes (GB/T 2260) and the parameter lookup chain.

Parameters are looked up county -> prefecture -> province -> national by
code: ``620722 -> 620700 -> 620000 -> 100000``. ``100000`` stands for the
national level. The code table (``engine/data/divisions.csv``) lists the
provinces, prefectures and counties of the statistical division codes, so an
unknown code is refused instead of silently falling back to national values.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

NATIONAL = "100000"
_CODE_RE = re.compile(r"^\d{6}$")
_DATA = Path(__file__).parents[1] / "data" / "divisions.csv"


class LocalityError(ValueError):
    def __init__(self, code: object, zh: str, en: str):
        super().__init__(f"{zh} ({en})")
        self.code = code
        self.zh = zh
        self.en = en


@dataclass(frozen=True)
class Division:
    code: str
    name: str
    level: str  # national | province | prefecture | county


@cache
def _table() -> dict[str, Division]:
    table = {NATIONAL: Division(NATIONAL, "全国", "national")}
    with _DATA.open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            table[row["code"]] = Division(row["code"], row["name"], row["level"])
    return table


def divisions() -> list[Division]:
    """Every division of the code table (not 全国), in code order: what a locality picker offers."""
    return [d for code, d in sorted(_table().items()) if code != NATIONAL]


def division(code: object) -> Division:
    """The division for ``code``; raises LocalityError for malformed or unknown codes."""
    if not isinstance(code, str) or not _CODE_RE.match(code):
        raise LocalityError(code, "行政区划代码应为6位数字", "locality code must be 6 digits")
    d = _table().get(code)
    if d is None:
        raise LocalityError(code, f"未知的行政区划代码 {code}", f"unknown locality code {code}")
    return d


def is_valid(code: object) -> bool:
    try:
        division(code)
    except LocalityError:
        return False
    return True


def ancestors(code: str) -> list[str]:
    """``code`` and the codes above it, most specific first, ending with national."""
    division(code)
    chain = [code]
    if code == NATIONAL:
        return chain
    prefecture = code[:4] + "00"
    province = code[:2] + "0000"
    for c in (prefecture, province):
        if c != chain[-1]:
            chain.append(c)
    chain.append(NATIONAL)
    return chain


def full_name(code: str) -> str:
    """A readable name: ``辽宁省沈阳市和平区``; skips filler levels such as 市辖区."""
    parts = []
    for c in reversed(ancestors(code)):
        if c == NATIONAL:
            continue
        d = _table().get(c)
        if d is None or d.name in ("市辖区", "县", "省直辖县级行政区划", "自治区直辖县级行政区划"):
            continue
        parts.append(d.name)
    return "".join(parts) or "全国"


def scope_prefix(scope: str) -> str:
    """The code prefix that every locality under ``scope`` starts with: 210000 -> ``21``,
    210100 -> ``2101``, 210102 -> ``210102``, 100000 (全国) -> ``""``."""
    if scope == NATIONAL:
        return ""
    if scope.endswith("0000"):
        return scope[:2]
    if scope.endswith("00"):
        return scope[:4]
    return scope


def covers(scope: str, code: object) -> bool:
    """Whether ``code`` lies in the subtree of ``scope``: ``covers("210000", "210102")``; 全国 covers all.

    Access control rests on this one function (keys and accounts carry a scope code). A code
    that is not a 6-digit string is covered by no scope but the national one, so that a
    malformed value never slips into a province's view."""
    if scope == NATIONAL:
        return True
    return isinstance(code, str) and _CODE_RE.match(code) is not None and code.startswith(scope_prefix(scope))

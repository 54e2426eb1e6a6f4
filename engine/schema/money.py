"""Exact money and ratio arithmetic.

Every amount inside the engine is an exact rational (``gmpy2.mpq``): annual
standards divided by 12 and per-capita incomes divided by household size stay
exact, so a household whose income sits exactly on a threshold is judged the
same way by the single-household evaluator and by the batch evaluator.
Rounding happens only when a value is presented: half-up (away from zero) to
0.01 yuan.
"""

from __future__ import annotations

import re
from decimal import Decimal

from gmpy2 import mpq

Q = mpq
ZERO = mpq(0)

# The one bound on money, in every form it arrives in (text, JSON integer, JSON number): at most
# 12 digits of whole yuan, i.e. 999,999,999,999.99. In fen that is below 10**14, so any amount, and
# the sum of every amount a household may hold, fits a signed 64-bit integer: what SQLite, PostgreSQL's
# bigint, orjson and durable-rules' C engine can hold.
MONEY_DIGITS = 12
MAX_YUAN = 10**MONEY_DIGITS - 1  # the largest whole-yuan amount
MAX_FEN = (MAX_YUAN + 1) * 100 - 1
_MONEY_RE = re.compile(rf"^(\d{{1,{MONEY_DIGITS}}})(?:\.(\d{{1,2}}))?$")
_NUMBER_RE = re.compile(r"^(-?)(\d+)(?:\.(\d+))?$")


class MoneyError(ValueError):
    """A money value is malformed; carries a bilingual reason."""

    def __init__(self, zh: str, en: str):
        super().__init__(f"{zh} ({en})")
        self.zh = zh
        self.en = en


def parse_money(value: object) -> mpq:
    """Parse a non-negative yuan amount with at most 2 decimals.

    Accepts a string ("1200.50"), an int, or a float whose shortest repr has
    at most 2 decimals (JSON numbers arrive as floats).
    """
    if isinstance(value, bool):
        raise MoneyError("金额应为数字或数字字符串", "amount must be a number or a numeric string")
    if isinstance(value, int):
        if value < 0:
            raise MoneyError("金额不能为负数", "amount must not be negative")
        if value > MAX_YUAN:
            raise too_large()
        return mpq(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise MoneyError("金额不是有限数字", "amount must be finite")
        text = repr(value)
        if "e" in text or "E" in text:
            text = format(Decimal(text), "f")
    elif isinstance(value, str):
        text = value.strip()
    elif isinstance(value, Decimal):
        text = format(value, "f")
    else:
        raise MoneyError("金额应为数字或数字字符串", "amount must be a number or a numeric string")
    if text.startswith("-"):
        raise MoneyError("金额不能为负数", "amount must not be negative")
    m = _MONEY_RE.match(text)
    if not m:
        if re.match(r"^\d+\.\d{3,}$", text):
            raise MoneyError("金额最多保留两位小数", "amount must have at most 2 decimals")
        if re.match(r"^\d+(?:\.\d{1,2})?$", text):
            raise too_large()
        raise MoneyError('金额格式无效，应为如 "1200.50" 的数字', 'malformed amount, expected e.g. "1200.50"')
    whole, frac = m.group(1), m.group(2) or ""
    return mpq(int(whole + frac.ljust(2, "0")), 100)


def too_large() -> MoneyError:
    return MoneyError(f"金额过大（最多{MAX_YUAN}.99元）", f"amount is too large (at most {MAX_YUAN}.99 yuan)")


_FAST_MONEY = re.compile(rf"^(\d{{1,{MONEY_DIGITS}}})\.(\d\d)$")


def parse_money_fast(text: str) -> mpq | None:
    """The common "1200.50" form, or None to fall back to parse_money (and its error messages)."""
    m = _FAST_MONEY.match(text)
    if m is None:
        return None
    return mpq(int(m.group(1) + m.group(2)), 100)


def parse_number(text: str) -> mpq:
    """Parse a decimal literal ("1.3", "0.2", "-4") exactly."""
    m = _NUMBER_RE.match(text.strip())
    if not m:
        raise ValueError(f"not a decimal number: {text!r}")
    sign, whole, frac = m.group(1), m.group(2), m.group(3) or ""
    value = mpq(int(whole + frac), 10 ** len(frac))
    return -value if sign else value


def to_cents(q: mpq) -> int:
    """Round an exact amount to whole fen, half away from zero."""
    c = q * 100
    n, d = c.numerator, c.denominator
    if d == 1:  # the usual case: an amount in whole fen
        return int(n)
    if n >= 0:
        return int((2 * n + d) // (2 * d))
    return -int((2 * -n + d) // (2 * d))


def fmt_money(q: mpq) -> str:
    """Present an exact amount as yuan with exactly 2 decimals ("577.83")."""
    return yuan_text(to_cents(q))


def cents_of(text: str) -> int:
    """Whole fen of an amount as presented ("1716.00" -> 171600); exact, for sums of presented amounts."""
    whole, _, frac = text.partition(".")
    sign = -1 if whole.startswith("-") else 1
    return sign * (abs(int(whole)) * 100 + int((frac + "00")[:2]))


def yuan_text(fen: int) -> str:
    """Present whole fen as yuan with exactly 2 decimals (171600 -> "1716.00")."""
    if fen < 0:
        return "-" + yuan_text(-fen)
    yuan, rest = divmod(fen, 100)
    return str(yuan) + _FEN_TEXT[rest]  # twice as fast as an f-string with a format spec


_FEN_TEXT = tuple(f".{i:02d}" for i in range(100))


def fmt_number(q: mpq, max_places: int = 4) -> str:
    """Present a ratio or plain number without trailing zeros ("1.5", "0.8")."""
    if q.denominator == 1:
        return str(int(q.numerator))
    scale = 10**max_places
    n = q.numerator * scale
    d = q.denominator
    v = (2 * abs(n) + d) // (2 * d)
    sign = "-" if n < 0 else ""
    whole, frac = divmod(int(v), scale)
    frac_s = f"{frac:0{max_places}d}".rstrip("0")
    return f"{sign}{whole}.{frac_s}" if frac_s else f"{sign}{whole}"

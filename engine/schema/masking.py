"""Resident ID numbers (居民身份证号码, GB 11643): finding, masking and keyed hashing.

The one place that decides what an ID number looks like in text. Everything that
stores or logs data masks through here (``scrub``, ``scrub_json``); where an id
must stay distinguishable after masking (a household's history, a monitored
household, a member), ``id_key`` gives a keyed hash (HMAC-SHA256 with a
per-deployment secret) to store next to the masked text, and ``pseudonym``
puts a short one right after each masked number.

An ID number is 17 digits and a check character (a digit, ``X`` or ``x``) that
is right for the 17 digits. It may stand anywhere in a text, also right after
or before letters (``abc21010219560501123X``) or Chinese, but not inside a
longer run of digits: 19 digits hold no ID number.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from typing import Any

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"

# 17 digits, then the check character; no digit just before, and none just after a final digit
# (an ``X`` ends the number whatever follows).
_ID = re.compile(r"(?<!\d)\d{17}(?:[Xx]|\d(?!\d))")
MASK = "*" * 8
# A quick first look (~2 µs a kilobyte, the regex takes ~30): ASCII text without 17 digits in a row
# holds no ID number. Digits are bytes 0x30-0x39 in UTF-8 only as themselves.
_TO_ZERO = bytes.maketrans(b"123456789", b"000000000")
_RUN = b"0" * 17


def _may_hold(text: str) -> bool:
    if len(text) < 18:
        return False
    return not text.isascii() or _RUN in text.encode().translate(_TO_ZERO)


def check_digit(first17: str) -> str:
    """GB 11643 check character for the first 17 digits of a resident ID."""
    total = sum(int(c) * w for c, w in zip(first17, _WEIGHTS, strict=True))
    return _CHECK[total % 11]


def is_id_number(text: str) -> bool:
    """Whether ``text`` is (exactly) a valid resident ID number; a lower-case ``x`` counts."""
    m = _ID.fullmatch(text)
    return m is not None and check_digit(text[:17]) == text[17].upper()


def mask_id_number(id_number: str) -> str:
    """``210102********123X``: area code and last four only."""
    return id_number[:6] + MASK + id_number[-4:].upper()


def find_id_numbers(text: str) -> list[str]:
    """Every valid ID number in ``text``, as written."""
    if not _may_hold(text):
        return []
    return [m.group() for m in _ID.finditer(text) if check_digit(m.group()[:17]) == m.group()[17].upper()]


def has_id_number(text: str) -> bool:
    if not _may_hold(text):
        return False
    return any(check_digit(m.group()[:17]) == m.group()[17].upper() for m in _ID.finditer(text))


def _sub(text: str, replace) -> str:
    if not _may_hold(text):
        return text

    def one(m: re.Match) -> str:
        v = m.group()
        return replace(v) if check_digit(v[:17]) == v[17].upper() else v

    return _ID.sub(one, text)


def scrub(text: str) -> str:
    """``text`` with every valid resident ID number masked."""
    return _sub(text, mask_id_number)


def scrub_json(value: Any) -> Any:
    """A JSON-like value (dicts, lists, strings...) with every ID number masked, in keys too."""
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {scrub(k) if isinstance(k, str) else k: scrub_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub_json(v) for v in value]
    return value


def _canonical(text: str) -> str:
    # ``…123x`` and ``…123X`` are one person.
    return _sub(text, str.upper)


def id_key(text: str, secret: bytes) -> str:
    """Keyed hash (HMAC-SHA256, hex) of an id, for look-ups by an id whose stored text is masked.
    Without the deployment's secret it cannot be reversed by trying every birth date and area code."""
    return hmac.new(secret, _canonical(text).encode(), hashlib.sha256).hexdigest()


def tag(id_number: str, secret: bytes) -> str:
    """A short keyed hash of one ID number (50 bits, base32): tells apart numbers that mask alike."""
    digest = hmac.new(secret, id_number.upper().encode(), hashlib.sha256).digest()
    return base64.b32encode(digest[:10]).decode()[:10]


def pseudonym(text: str, secret: bytes, limit: int | None = None) -> str:
    """``text`` with each ID number masked and followed by its tag (``210102********123X-K7Q3ZB2M4A``).

    The result is itself a valid identifier (``engine.schema.text``: ``*`` may follow the first character), so
    the monitor can validate the household records it stores under pseudonyms.

    Deterministic, so the same id gives the same stored form every time and in every process,
    and two ids that mask alike stay two. ``limit``: the longest the result may be (a column's
    length); a longer one is cut and ends with the tag of the whole text instead.
    """
    out = _sub(text, lambda v: mask_id_number(v) + "-" + tag(v, secret))
    if limit is not None and len(out) > limit:
        whole = base64.b32encode(hmac.new(secret, _canonical(text).encode(), hashlib.sha256).digest()[:10]).decode()[:10]
        out = out[: limit - 11] + "-" + whole
    return out

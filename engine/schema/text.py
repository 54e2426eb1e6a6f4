"""What text an input may hold: identifiers from one documented character set, free text without
control characters.

Identifiers (``household_id``, member ``id``, an event's ``member`` and ``event_id``) are stored in
database columns, put in URLs (``/v1/households/{household_id}/history``) and in durable-rules facts.
They may hold ASCII letters and digits, Chinese characters (CJK Unified Ideographs, Extension A and
the compatibility block) and ``-`` ``_`` ``.`` ``*``, and start with a letter, digit or Chinese character
(``*`` so that a masked ID number's pseudonym, ``210102********123X-K7Q3ZB2M4A``, is an id too):
household numbers in China are numeric, lettered (``LN-2021-0001``) or Chinese (``和平区-0001``), and
resident ID numbers (``21010219800301123X``) fit. Everything else is refused: ``/ ? # %`` and
whitespace (a URL could not name the household), and control characters (PostgreSQL cannot store NUL).

Free text (an event's ``note``) may hold any printable character, tabs and line breaks, but no other
control character: no NUL, C0 or C1 controls, line/paragraph separators, bidirectional overrides (text
that reads differently from what it holds) or unpaired surrogates.
"""

from __future__ import annotations

import re

_ID_FIRST = "0-9A-Za-z\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
ID_RE = re.compile(f"[{_ID_FIRST}][{_ID_FIRST}_.*\\-]*")
ID_ZH = "只能包含英文字母、数字、汉字和 - _ . *，并以字母、数字或汉字开头"
ID_EN = "may hold only letters, digits, Chinese characters and - _ . * (starting with a letter, digit or Chinese character)"

_CONTROL_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
TEXT_ZH = "不能包含控制字符（如 NUL、换页符、方向控制符）"
TEXT_EN = "must not contain control characters (NUL, form feed, direction overrides...)"


def is_id(text: str) -> bool:
    """True when ``text`` (a str) is made of the identifier character set."""
    return ID_RE.fullmatch(text) is not None


_NOT_ID = re.compile(f"[^{_ID_FIRST}_.*\\-]+")


def to_id(text: str, max_len: int = 128) -> str:
    """An identifier made from any text (a test case's name): other characters become ``-``."""
    out = _NOT_ID.sub("-", text)[:max_len].lstrip("-_.").rstrip("-")
    return out or "id"


def has_control(text: str) -> bool:
    """True when ``text`` holds a character free text may not hold."""
    return _CONTROL_RE.search(text) is not None

"""The one identifier grammar of rule and policy files.

Every id a rule or policy file gives - program, rule, ``let`` and fact names, parameter
keys, template slots, interaction and monitoring ids - is lowercase ASCII: a letter, then
letters, digits and underscores, at most 64 characters per segment; dotted ids are such
segments joined by ``.``. The loaders refuse anything else with file and line, so no
newline, quote, ``#``, Unicode line separator, NUL or look-alike letter ever travels
on as a name (the compiled fast path in ``engine.executors.codegen`` checks again before it writes
a line).
"""

from __future__ import annotations

import re

MAX_SEGMENT = 64
MAX_SEGMENTS = 8
_SEGMENT = rf"[a-z][a-z0-9_]{{0,{MAX_SEGMENT - 1}}}"
NAME_RE = re.compile(_SEGMENT)
DOTTED_RE = re.compile(rf"{_SEGMENT}(?:\.{_SEGMENT}){{0,{MAX_SEGMENTS - 1}}}")

RULE_ZH = "小写英文字母开头，只含小写英文字母、数字和下划线，每段至多64个字符"
RULE_EN = "a lowercase ASCII letter, then lowercase letters, digits and underscores, at most 64 per segment"


def is_name(value: object) -> bool:
    """A single segment: ``standard``, ``per_capita_income``."""
    return type(value) is str and NAME_RE.fullmatch(value) is not None


def is_dotted(value: object) -> bool:
    """One to eight segments joined by dots: ``dibao.standard.urban``."""
    return type(value) is str and DOTTED_RE.fullmatch(value) is not None


def shown(value: object, limit: int = 60) -> str:
    """Rule-file text as an error message may quote it: escaped, and cut short."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def problem(value: object, zh: str, en: str, dotted: bool = False) -> str | None:
    """The bilingual error for an id that breaks the grammar, or None when it is valid."""
    if (is_dotted if dotted else is_name)(value):
        return None
    form = "，可用点号分段" if dotted else ""
    form_en = ", segments joined by '.'" if dotted else ""
    return (
        f"{zh} {shown(value)} 不是合法的标识符（{RULE_ZH}{form}） / "
        f"{en} {shown(value)} is not a valid identifier ({RULE_EN}{form_en})"
    )

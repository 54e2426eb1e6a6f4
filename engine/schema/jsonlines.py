"""Telling JSON Lines (one object per line: populations, event streams) from a plain JSON document."""

from __future__ import annotations

from pathlib import Path

import orjson


def looks_like_plain_json(first_line: bytes) -> bool:
    """The first non-blank line of a file opens a JSON array, or an object spread over several lines (a
    pretty-printed file), rather than holding one object: reported once as "not JSON Lines" instead of as
    every line being invalid JSON. A broken object on one line is left to the usual per-line error."""
    text = first_line.strip()
    if text[:1] not in (b"[", b"{"):
        return False
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return not text.endswith(b"}")
    return not isinstance(value, dict)


def first_line(path: Path) -> tuple[int, bytes] | None:
    """(line number, text) of the file's first non-blank line; None for an empty file."""
    with open(path, "rb") as f:
        for lineno, line in enumerate(f, 1):
            if line.strip():
                return lineno, line
    return None

"""Page one of every example reads as plain Chinese: no brackets inside brackets, no stiff category phrases."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.explain.report import build_report, page_one_text, render_html

EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "examples").glob("*.json"))


def _nested_brackets(text: str) -> list[str]:
    """Spans where a （ opens inside another （…） (text in “…” quotes is a label and may hold its own)."""
    depth, quoted, start, found = 0, False, 0, []
    for i, ch in enumerate(text):
        if ch == "“":
            quoted = True
        elif ch == "”":
            quoted = False
        elif quoted:
            continue
        elif ch == "（":
            depth += 1
            if depth == 1:
                start = i
            elif depth == 2:
                found.append(text[start : i + 8])
        elif ch == "）":
            depth = max(0, depth - 1)
    return found


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_page_one_has_no_brackets_inside_brackets(engine, path):
    h = json.loads(path.read_text(encoding="utf-8"))
    for line in page_one_text(build_report(engine.evaluate(h), h)):
        assert not _nested_brackets(line), line
        assert "不属于无劳动能力：" not in line, line


def test_appendix_items_carry_their_own_mark_not_a_second_bullet(engine):
    h = json.loads(EXAMPLES[0].read_text(encoding="utf-8"))
    page = render_html(build_report(engine.evaluate(h), h))
    # each item starts with ✓/✗/· (its mark); a list bullet before it would print "• ·"
    assert ".appendix ul { list-style: none;" in page

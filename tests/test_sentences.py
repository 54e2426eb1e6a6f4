"""Every sentence template of every rule, rendered with representative and edge values.

A caseworker hands these sentences to a family, so each must read as plain Chinese whatever
the values: no internal identifier, English word or placeholder; brackets balanced; no doubled
negation ("未满足：未…", "缺少…未配置", "是为否"); no bare locality code.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from gmpy2 import mpq

from engine.executors.evaluate import amount_note, failed_note, missing_text, part_note, render
from engine.expr import Missing

MEMBER = "甲"  # a member id that is not ASCII, so an ASCII letter in a sentence is always a defect
UNKNOWN = Missing(frozenset({("members[0].self_care", f"成员{MEMBER}的生活自理能力")}))
UNCONFIGURED = Missing(frozenset({("dibao.standard.urban", "城市低保标准未配置")}))
BOTH = Missing(UNKNOWN.keys | UNCONFIGURED.keys)

NEGATION = [
    re.compile(p)
    for p in (
        r"未满足：",
        r"不符合的条件：[未不非没]",
        r"缺少[^，。；）]*未配置",
        r"未配置[^，。；]*无法",
        r"(是|否)为(是|否)",
        r"(尚未|未)配置[^，。；]*未配置",
        r"已符合低保[^，。；]*渐退",
    )
]
PAIRS = {"（": "）", "(": ")", "《": "》", "“": "”", "【": "】", "〔": "〕"}


def _value(t, variant: str, name: str):
    if name == "id":
        return MEMBER
    if variant == "unknown":
        return UNKNOWN
    if variant == "unconfigured":
        return UNCONFIGURED
    zero = variant == "zero"
    kind = t.kind
    if kind == "money":
        return mpq(0) if zero else mpq(67250, 100)
    if kind == "number":
        return mpq(0) if zero else mpq(3, 2)
    if kind == "int":
        return 0 if zero else 3
    if kind == "bool":
        return not zero
    if kind == "date":
        return dt.date(2021, 7, 1)
    if kind == "str":
        if t.domain:
            return sorted(t.domain)[0 if zero else -1]
        return "210102" if name.endswith("locality") else ("" if zero else "某地")
    if kind == "set":
        return frozenset() if zero else frozenset(t.domain or {"某项"})
    if kind == "list":
        return [] if zero else [{"id": MEMBER}, {"id": "乙"}]
    raise AssertionError(f"no sample for {kind}")


def _templates(engine):
    """(where, template, failed titles of the program) for every sentence template of the rule book."""
    book = engine.book
    for s in book.facts.steps:
        for which in ("text", "text_pass", "text_fail"):
            tpl = getattr(s, which)
            if tpl is not None:
                yield f"{s.id}.{which}", tpl
    for prog in book.programs:
        for s in prog.steps:
            for which in ("text", "text_pass", "text_fail"):
                tpl = getattr(s, which)
                if tpl is not None:  # shared checks (use:) are the household module's own templates
                    yield f"{s.id}.{which}", tpl
        for i, c in enumerate(prog.decision):
            if c.text is not None:
                yield f"{prog.code}.decision[{i}].text", c.text
            for j, (_f, lab) in enumerate(c.missing):
                yield f"{prog.code}.decision[{i}].missing[{j}].label", lab


def _types(tpl) -> dict:
    return {name: t for name, _node, t in tpl.nodes}


def _problems(text: str) -> list[str]:
    out = []
    if re.search(r"[A-Za-z]", text):
        out.append("English or identifier")
    if re.search(r"[{}]|%s|（（|））", text):
        out.append("placeholder or doubled bracket")
    if re.search(r"(?<!\d)\d{6}(?!\d)", text):
        out.append("bare locality code")
    stack: list[str] = []
    for ch in text:
        if ch in PAIRS:
            stack.append(PAIRS[ch])
        elif ch in PAIRS.values() and (not stack or stack.pop() != ch):
            out.append("unbalanced brackets")
            break
    else:
        if stack:
            out.append("unbalanced brackets")
    out += [f"doubled negation /{p.pattern}/" for p in NEGATION if p.search(text)]
    return out


def _render_all(engine):
    for where, tpl in _templates(engine):
        types = _types(tpl)
        for variant in ("representative", "zero", "unknown", "unconfigured"):
            raw = []
            for name, _fn, _conv in tpl.slots:
                t = types.get(name)
                if t is None:  # {amount} of a decision
                    raw.append(mpq(0) if variant == "zero" else mpq(1044))
                else:
                    raw.append(_value(t, variant, name))
            yield where, tpl, variant, render(tpl, raw)[0]


def test_every_sentence_template_reads_cleanly(engine):
    bad = []
    seen = set()
    for where, tpl, variant, text in _render_all(engine):
        seen.add(id(tpl))
        for p in _problems(text):
            bad.append(f"{where} [{variant}]: {p}: {text}")
    assert len(seen) > 100  # every rule's sentences, not a sample
    assert bad == [], "\n".join(bad)


def test_titles_and_notes_read_cleanly(engine):
    """Rule titles appear in 暂无法判断 and 不符合的条件 notes; the notes tell facts from settings."""
    bad = []
    steps = [*engine.book.facts.steps, *(s for p in engine.book.programs for s in p.steps)]
    for s in steps:
        if s.kind == "let":
            continue
        texts = [f"{s.title}：暂无法判断（{missing_text(BOTH)}）"]
        if s.kind == "check":  # a failed check is named in the ineligible decision
            texts.append("不符合规定" + failed_note([s.title, s.title]))
        for text in texts:
            bad += [f"{s.id}: {p}: {text}" for p in _problems(text)]
    assert bad == [], "\n".join(bad)
    assert missing_text(UNKNOWN) == f"请补充：成员{MEMBER}的生活自理能力"
    assert missing_text(UNCONFIGURED) == "本地尚未配置城市低保标准，请联系民政部门"
    assert "本地尚未配置城市低保标准" in amount_note(BOTH) and "请补充" in amount_note(BOTH)
    assert part_note(UNCONFIGURED) == "未计入（本地尚未配置城市低保标准，请联系民政部门）"


def test_the_checks_catch_each_defect_class():
    for text in (
        "缺少城市低保标准未配置，无法判断",
        "成员p1未满足：未按特困人员供养",
        "本地是否允许：是为否",
        "生活自理能力（（未知））",
        "户籍在本地210102",
        "家庭（未配置",
        "金额{amount}元",
    ):
        assert _problems(text), text


def count_templates(engine) -> int:
    return len({id(tpl) for _w, tpl in _templates(engine)})


@pytest.fixture(scope="module")
def n_templates(engine):
    return count_templates(engine)


def test_report_the_number_of_templates(n_templates, capsys):
    with capsys.disabled():
        print(f"\nsentence templates checked: {n_templates}")
    assert n_templates > 100

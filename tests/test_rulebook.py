"""Rule files: loading, validation errors with file and line, ruleset_version."""

import dataclasses
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
import yaml as pyyaml
from rulehome import copy_home, edit

from engine.book import yamlio
from engine.book.rules import load_rulebook
from engine.book.yamlio import YamlError, loads_yaml

ROOT = Path(__file__).resolve().parent.parent


def test_shipped_rules_load_cleanly():
    book = load_rulebook(ROOT)
    assert not book.errors, "\n".join(map(str, book.errors))
    order = [p.code for p in book.programs]
    # 低保 reads which members are granted 特困 (issue 15), so 特困 is evaluated before it
    assert order.index("tekun") < order.index("dibao") < order.index("dibao_edge")
    assert {"dibao", "dibao_single", "tekun", "dibao_edge"} <= {p.code for p in book.programs}
    assert book.version.startswith("sha256:") and len(book.version) == 71


@pytest.mark.parametrize(
    "file, old, new, fragment",
    [
        ("dibao.yaml", "when: per_capita_income < standard", "when: per_capita_incom < standard", "未知名称 'per_capita_incom'"),
        ("dibao.yaml", "when: per_capita_income < standard", "when: per_capita_income < area", "不能比较"),
        ("dibao.yaml", "    citation: 《社会救助暂行办法》第九条\n", "", "缺少 citation"),
        ("dibao.yaml", "when: per_capita_income < standard", "when: per_capita_income.__class__", "未知名称"),
        ("dibao.yaml", "when: per_capita_income < standard", "when: __import__('os')", "未知函数"),
        (
            "tekun.yaml",
            "schooling in {'compulsory', 'high_school', 'vocational'}",
            "schooling in {'compulsory', 'highschool'}",
            "highschool",
        ),
        (
            "dibao_edge.yaml",
            "when: dibao_edge.not_dibao and dibao_edge.income_below_line and",
            "when:",
            "未在任何 decision.when 中使用",
        ),
        ("dibao.yaml", "当地低保标准", "当地低保标准{nope}", None),
        ("dibao.yaml", "pass: 家庭人均收入{per_capita_income}元", "pass: 家庭人均收入{per_capita_incme}元", "per_capita_incme"),
    ],
)
def test_bad_rules_are_refused_with_file_and_line(tmp_path, file, old, new, fragment):
    home = copy_home(tmp_path)
    edit(home / "rules" / file, old, new)
    book = load_rulebook(home)
    if fragment is None:  # edits inside comments change nothing but the version
        assert not book.errors
        return
    assert book.errors
    msgs = [str(e) for e in book.errors]
    assert any(fragment in m for m in msgs), msgs
    assert any(f"rules/{file}:" in m for m in msgs), msgs


def test_cycle_between_programs_is_refused(tmp_path):
    home = copy_home(tmp_path)
    edit(
        home / "rules" / "dibao.yaml",
        "when: per_capita_income < standard",
        "when: per_capita_income < standard and not dibao_edge.granted",
    )
    book = load_rulebook(home)
    assert any("循环依赖" in str(e) for e in book.errors)


def test_program_order_comes_from_the_parsed_expressions_not_from_words_in_a_sentence(tmp_path):
    # 特困 is evaluated before 低保 (低保 reads it); a sentence of 特困 that mentions the file name
    # dibao.yaml in plain text is no reference to 低保, so it makes no dependency and no cycle
    home = copy_home(tmp_path)
    edit(
        home / "rules" / "tekun.yaml",
        "fail: 成员{id}本人月收入{counted_income}元不低于低保标准{dibao_standard}元，有生活来源",
        "fail: 成员{id}本人月收入{counted_income}元不低于低保标准{dibao_standard}元，有生活来源（标准见 dibao.yaml）",
    )
    book = load_rulebook(home)
    assert not book.errors, "\n".join(map(str, book.errors))
    order = [p.code for p in book.programs]
    assert order.index("tekun") < order.index("dibao")


def test_version_changes_when_a_value_changes(tmp_path):
    home = copy_home(tmp_path)
    before = load_rulebook(home).version
    edit(home / "policies" / "210000.yaml", "value: 672", "value: 700")
    after = load_rulebook(home)
    assert not after.errors
    assert after.version != before


def test_rules_check_command_exit_codes(tmp_path):
    ok = subprocess.run(
        [sys.executable, "-m", "engine.cli.main", "rules", "check", "--home", str(ROOT)], capture_output=True, text=True
    )
    assert ok.returncode == 0, ok.stderr
    home = copy_home(tmp_path)
    edit(home / "rules" / "tekun.yaml", "when: \"supporters in {'none', 'unable'}\"", "when: supporters")
    bad = subprocess.run(
        [sys.executable, "-m", "engine.cli.main", "rules", "check", "--home", str(home)], capture_output=True, text=True
    )
    assert bad.returncode != 0
    assert "rules/tekun.yaml:" in bad.stderr


def test_compiling_a_template_builds_a_new_one_and_leaves_the_checked_one_as_it_was():
    from engine.book.rules import _compile_template
    from engine.expr.types import MONEY

    book = load_rulebook(ROOT)
    scope = book._scope(False, {"standard": MONEY}, {"standard": "dibao:standard"})
    checked = book._template("t.yaml", 1, "月收入{monthly_income}元，标准{standard}元，合计{monthly_income}元", scope, "t")
    compiled = _compile_template(checked, frozenset())
    assert compiled is not checked
    assert checked.slots == ()  # untouched: the checked template is frozen
    with pytest.raises(dataclasses.FrozenInstanceError):
        checked.slots = compiled.slots  # type: ignore[misc]
    assert compiled.fmt == checked.fmt == "月收入%s元，标准%s元，合计%s元" and compiled.order == (0, 1, 0)
    assert [name for name, _fn, _conv in compiled.slots] == ["monthly_income", "standard"]
    assert compiled.nodes is checked.nodes and compiled == checked  # the same sentence, now with its functions
    assert _compile_template(compiled, frozenset()) is compiled  # shared by a 'use' step: compiled once


def test_a_local_value_is_bound_to_its_storage_key_by_the_checker_not_renamed_afterwards():
    from engine.expr import ast as A
    from engine.expr import check, parse
    from engine.expr.types import MONEY

    book = load_rulebook(ROOT)
    node, _t = check(parse("standard > monthly_income"), book._scope(False, {"standard": MONEY}, {"standard": "dibao:standard"}))
    paths = {n.name: n.path for n in A.walk(node) if isinstance(n, A.Name)}
    assert paths == {"standard": "dibao:standard", "monthly_income": "monthly_income"}
    # and in the shipped book, a program's let values are read from their keys
    dibao = book.program("dibao")
    lets = {s.name for s in dibao.steps if s.kind == "let"}
    named = [n for s in dibao.steps if s.node is not None for n in A.walk(s.node) if isinstance(n, A.Name)]
    local = [n for n in named if n.binding == "name" and "dibao:" + n.name in lets]
    assert local and all(n.path == "dibao:" + n.name for n in local)


def _tree(o):
    """A loaded YAML document with its line numbers, to compare two loaders."""
    if isinstance(o, dict):
        return ("map", o.line, sorted(o.key_lines.items()), [(k, _tree(v)) for k, v in o.items()])
    if isinstance(o, list):
        return ("seq", o.line, list(o.item_lines), [_tree(v) for v in o])
    return (type(o).__name__, o)


def test_libyaml_and_the_guarded_loader_read_every_shipped_file_alike():
    """Start-up parses the shipped files with libyaml; the Python loader that refuses aliases as it reads
    must see the same values, types (exact decimals) and lines."""
    root = Path(__file__).resolve().parent.parent
    files = sorted([*root.glob("rules/*.yaml"), *root.glob("policies/**/*.yaml")])
    assert len(files) > 10
    for f in files:
        text = f.read_text(encoding="utf-8")
        assert yamlio._plainly_bounded(text), f
        assert _tree(yamlio._load_fast(text)) == _tree(pyyaml.load(text, Loader=yamlio._Loader)), f


def test_deep_block_nesting_with_short_lines_is_refused_on_the_fast_path_too():
    deep = "".join(" " * i + f"k{i}:\n" for i in range(70)) + " " * 70 + "v\n"
    assert yamlio._plainly_bounded(deep)
    with pytest.raises(YamlError) as e:
        loads_yaml(deep, "rules/x.yaml")
    assert "nested deeper than 64" in e.value.message and e.value.line == 64
    assert loads_yaml("title: 规则 & 政策\nn: 1.10\n", "rules/y.yaml") == {"title": "规则 & 政策", "n": Decimal("1.10")}

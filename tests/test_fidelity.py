"""Domain fidelity (issue 15): dated readings of the regulations and the labels their explanations carry."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from rulehome import ROOT, copy_home, edit


def _pension_household(as_of: str) -> dict:
    return {
        "household_id": "PENSION",
        "locality": "210102",
        "as_of": as_of,
        "area": "urban",
        "assets": {"financial": "0", "vehicles": [], "properties": 1},
        "members": [
            {
                "id": "p1",
                "relation": "head",
                "birth_date": "1950-01-01",
                "hukou_locality": "210102",
                "supporters": "able",
                "incomes": [{"type": "resident_pension_base", "monthly": "150.00"}, {"type": "pension", "monthly": "100.00"}],
            }
        ],
    }


def _income_reason(det: dict) -> dict:
    return next(r for r in det["household"]["reasons"] if r["rule"] == "household.counted_income")


@pytest.mark.parametrize(("as_of", "default"), [("2025-12-31", False), ("2026-01-01", True)])
def test_pension_base_exclusion_after_the_14th_plan_is_a_labelled_project_default(engine, as_of, default):
    det = engine.evaluate(_pension_household(as_of))
    reason = _income_reason(det)
    assert det["household"]["monthly_income"] == "100.00"
    assert ("项目默认值" in reason["text"]) is default
    assert "民发〔2021〕57号" in reason["citation"]


def test_the_pension_exclusion_is_read_only_when_such_an_income_exists(engine):
    h = _pension_household("2026-01-01")
    h["members"][0]["incomes"] = [{"type": "pension", "monthly": "100.00"}]
    assert "项目默认值" not in _income_reason(engine.evaluate(h))["text"]


def test_age_citation_glosses_article_1259_as_including_the_number(engine):
    step = next(s for s in engine.book.facts.steps if s.id == "household.age")
    assert "包括本数" in step.citation
    assert "周岁按日历计算" not in step.citation


ENCOURAGING = ("鼓励", "探索", "逐步推进", "逐步扩大", "有条件的地方", "有条件的地区", "有条件的县")


def _entries():
    for path in sorted((ROOT / "policies").glob("[0-9]*.yaml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        for key, entries in doc["parameters"].items():
            for e in entries:
                yield path.stem, key, e


def test_encouraging_wording_read_as_in_force_is_labelled_an_interpretation():
    """The same wording gets the same reading everywhere: on locally (labelled), off nationally (a default)."""
    unlabelled = []
    for code, key, e in _entries():
        if not any(w in e["source"] for w in ENCOURAGING) or e.get("value") in (False, None):
            continue
        if code == "100000" and e.get("value") is not True:
            continue  # a set (就业成本扣减的区域) read from such wording is labelled below
        if not e.get("interpretation"):
            unlabelled.append(f"{code} {key} {e['from']}")
    assert unlabelled == []


def test_national_switches_left_off_for_encouraging_wording_are_project_defaults():
    off = [(k, e) for code, k, e in _entries() if code == "100000" and e.get("value") is False]
    flagged = [k for k, e in off if any(w in e["source"] for w in ENCOURAGING)]
    assert flagged, "the national plan's encouraging wording maps to switches left off"
    assert [k for k, e in off if k in flagged and not e.get("project_default")] == []


def test_the_emergency_place_wording_reads_alike_in_every_plan_that_has_it(engine):
    on = dt.date(2021, 8, 1)
    codes = ("210102", "350502", "500152", "620722")
    got = {c: engine.policies.resolve(c, on).values["temporary.emergency_place.allowed"] for c in codes}
    assert got == {"210102": True, "350502": True, "500152": True, "620722": False}


# ---- citations name documents (policies/sources.yaml) -----------------------------------------


def _check(home: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "engine.cli.main", "rules", "check", "--home", str(home)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )


@pytest.mark.parametrize(
    ("file", "old", "new", "where", "fragment"),
    [
        (
            "rules/dibao.yaml",
            "citation: 《社会救助暂行办法》第九条\n",
            "citation: 《社会救助办法》第九条\n",
            "rules/dibao.yaml:",
            "《社会救助办法》",
        ),
        (
            "policies/210000.yaml",
            "source: 001_1723463741dbcebc.txt L31–34",
            "source: 009_1723463741dbcebc.txt L31–34",
            "policies/210000.yaml:",
            "009_1723463741dbcebc.txt",
        ),
    ],
)
def test_rules_check_refuses_a_citation_to_an_unknown_source(tmp_path, file, old, new, where, fragment):
    home = copy_home(tmp_path)
    edit(home / file, old, new)
    r = _check(home)
    assert r.returncode != 0
    line = next(ln for ln in (r.stdout + r.stderr).splitlines() if fragment in ln)
    assert where in line and "未登记" in line


def test_every_explanation_names_documents_not_files_or_parameter_keys(engine):
    keys = set(engine.policies.schema)
    for path in sorted((ROOT / "examples").glob("*.json")):
        det = engine.evaluate(json.loads(path.read_text(encoding="utf-8")))
        texts = [r["citation"] for r in det["household"]["reasons"]]
        texts += [r["citation"] for p in det["programs"] for r in p["reasons"]]
        texts += [link["citation"] for p in det["programs"] for link in p.get("links", [])]
        for t in texts:
            assert ".txt" not in t, (path.name, t)
            assert not [k for k in keys if k in t], (path.name, t)
        assert any("《辽宁省民政事业发展第十四个五年规划》" in t or "《“十四五”民政事业发展规划》" in t for t in texts)


def test_a_seed_line_renders_as_its_document_and_chapter(engine):
    src = engine.policies.sources.by_seed["000_e6fc943ba75c7f6b.txt"]
    assert src.id == "national_plan_14th" and src.kind == "plan" and src.number == "民发〔2021〕51号"
    assert src.section(173) == "第二章第二节"
    out = engine.policies.sources.render("000_e6fc943ba75c7f6b.txt L173（探索）；L213", lambda *_: None, 1)
    assert (
        out
        == "《“十四五”民政事业发展规划》（民发〔2021〕51号）第二章第二节（探索）；《“十四五”民政事业发展规划》（民发〔2021〕51号）第二章第四节"
    )

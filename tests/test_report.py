"""The report, answer first (issue 15): page one for the family and the window, then the review appendix."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from engine.explain.render import render_report
from engine.explain.report import build_report, page_one_text, render_html, report

EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "examples").glob("*.json"))
# A4 with 12 mm margins at 9.5 pt: about 55 characters a line and 59 lines (see engine/explain/report.py's CSS)
A4_CHARS, A4_LINES = 55, 59


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_page_one_answers_first_and_fits_a4(engine, path):
    h = _load(path)
    det = engine.evaluate(h)
    rep = build_report(det, h)
    page = page_one_text(rep)
    text = "\n".join(page)
    for p in det["programs"]:
        assert p["name"] in text  # every program: granted, waiting for information or refused
    for item in det["summary"]["paid"]:
        amount = item.get("monthly_amount") or item.get("one_off_amount") or item.get("annual_amount")
        assert amount in text
    assert f"每月现金{det['summary']['monthly_total']}元" in text
    assert page[-2].startswith("说明：") and rep.disclaimer in page[-2]
    assert det["as_of"] in page[-1] and det["ruleset_version"][:23] in page[-1]
    assert "依据：" not in text  # citations are in the appendix
    if len(h["members"]) <= 4:
        assert sum(max(1, math.ceil(len(line) / A4_CHARS)) for line in page) <= A4_LINES
    full = render_report(det, h)
    assert full.index("救助金额合计") < full.index("审核附录") < full.index("依据：")


def test_members_are_named_by_relation_and_id(engine):
    h = _load(Path(EXAMPLES[0]).with_name("liaoning_shenyang_family.json"))
    text = "\n".join(page_one_text(build_report(engine.evaluate(h), h)))
    assert "特困人员救助供养（户主p1）：符合，每月873.60元" in text
    assert "户主p1符合特困人员认定条件" in text
    assert "成员p1" not in text


def test_a_locality_without_its_own_policy_file_says_so(engine):
    h = _load(Path(EXAMPLES[0]).with_name("liaoning_shenyang_family.json"))
    assert "本地区无专门政策文件，按上级（辽宁省）政策评估" in build_report(engine.evaluate(h), h).notes
    h = _load(Path(EXAMPLES[0]).with_name("minle_rural_household.json"))
    assert build_report(engine.evaluate(h), h).notes == []


def test_needs_info_tells_the_family_what_to_supply_and_the_window_what_to_configure(engine):
    h = _load(Path(EXAMPLES[0]).with_name("tongnan_rural_household.json"))
    rep = build_report(engine.evaluate(h), h)
    assert "（窗口）本地尚未配置城市低保标准，请联系民政部门" in rep.next_steps
    h = _load(Path(EXAMPLES[0]).with_name("liaoning_shenyang_family.json"))
    del h["members"][0]["self_care"]
    rep = build_report(engine.evaluate(h), h)
    assert "请补充：户主p1的生活自理能力" in rep.next_steps


def test_html_is_the_same_report_for_print(engine):
    h = _load(Path(EXAMPLES[0]).with_name("liaoning_shenyang_family.json"))
    det = engine.evaluate(h)
    # ids cannot hold markup (validation refuses it), but the page must escape whatever it shows
    det["household_id"] = h["household_id"] = "<script>x</script>"
    out = report(det, h)
    assert set(out) == {"report", "text", "html"}
    page = out["html"]
    assert "@page { size: A4" in page and "break-before: page" in page
    assert "<script>x</script>" not in page and "&lt;script&gt;" in page
    assert "每月现金1395.60元" in page and "审核附录" in page
    assert out["report"]["granted"][0]["program"] == "dibao"
    assert render_html(build_report(det, h)) == page

"""The determination's shape (docs/contract.md) and explanations."""

import json
import re
from pathlib import Path

import orjson

from engine import evaluate

EXAMPLES = Path(__file__).parent.parent / "examples"
MONEY = re.compile(r"^\d+\.\d{2}$")


def load(name):
    return json.loads((EXAMPLES / name).read_text(encoding="utf-8"))


def test_every_example_evaluates_with_the_contract_shape():
    for path in sorted(EXAMPLES.glob("*.json")):
        det = evaluate(json.loads(path.read_text(encoding="utf-8")))
        assert set(det) >= {"household_id", "locality", "locality_chain", "as_of", "ruleset_version", "household", "programs"}
        assert set(det["household"]) >= {"counted_members", "monthly_income", "per_capita_income", "dibao_standard"}
        seen = set()
        for p in det["programs"]:
            assert set(p) >= {"program", "name", "scope", "members", "status", "monthly_amount", "reasons", "missing"}
            key = (p["program"], tuple(p["members"]) if p["scope"] == "member" else ())
            assert key not in seen
            seen.add(key)
            assert p["monthly_amount"] is None or MONEY.match(p["monthly_amount"])
            assert p["reasons"], p["program"]
            for r in p["reasons"]:
                assert set(r) >= {"rule", "passed", "text", "values", "citation"}
                assert r["citation"] and r["text"]
                assert r["passed"] in (True, False, None)
                for v in r["values"].values():
                    assert not isinstance(v, float)
        orjson.dumps(det)


def test_member_programs_once_per_counted_member():
    det = evaluate(load("liaoning_shenyang_family.json"))
    tekun = det.programs("tekun")
    assert [p["members"] for p in tekun] == [[m] for m in det["household"]["counted_members"]]


def test_reason_citation_names_the_seed_line_of_the_standard():
    det = evaluate(load("liaoning_shenyang_family.json"))
    r = next(r for r in det.program("dibao")["reasons"] if r["rule"] == "dibao.income_below_standard")
    # the seed line (001 L31–34) is shown as the document and its chapter (issue 15)
    assert "《辽宁省民政事业发展第十四个五年规划》第一章第一节" in r["citation"]
    assert r["values"]["standard"] == "672.00"


def test_project_defaults_are_flagged_in_the_text():
    det = evaluate(load("liaoning_shenyang_family.json"))
    r = next(r for r in det.program("dibao")["reasons"] if r["rule"] == "household.financial_assets")
    assert "项目默认值，待地方确认" in r["text"]


def test_tongnan_says_the_standard_is_unconfigured():
    det = evaluate(load("tongnan_rural_household.json"))
    p = det.program("dibao")
    assert p["status"] == "needs_info"
    assert p["missing"] == ["dibao.standard.urban"]
    # a setting the bureau configures, told apart from facts the family supplies (issue 15)
    assert any("本地尚未配置城市低保标准，请联系民政部门" in r["text"] for r in p["reasons"])

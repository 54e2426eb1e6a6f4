"""The simulation briefing: headline, 万元, Chinese statuses, by prefecture and county, unconfigured
standards flagged, and chart ticks a person can read."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from engine.batch import briefing, synth
from engine.batch.charts import ticks
from engine.batch.simulate import run_simulation

ROOT = Path(__file__).resolve().parents[2]
REFORM = ROOT / "examples" / "reforms" / "dibao_plus5_edge2.yaml"


@pytest.fixture(scope="module")
def result(tmp_path_factory, engine):
    tmp = tmp_path_factory.mktemp("brief")
    synth.write(tmp / "pop", "210000", 200, seed=11)
    res = run_simulation(tmp / "pop", REFORM, out_dir=tmp / "out", engine=engine)
    return res.to_dict(), (tmp / "out" / "report.html").read_text(encoding="utf-8")


def test_wan_has_one_decimal_and_separators_and_never_hides_a_small_amount():
    assert briefing.wan("7555000.00") == "755.5"
    assert briefing.wan("123456789.00") == "12,345.7"
    assert briefing.wan("-434606.52", signed=True) == "-43.5"
    assert briefing.wan("12.00") == "<0.1"
    assert briefing.wan("0.00") == "0.0"


def test_ticks_are_round_numbers_and_counts_are_whole():
    # before: the histogram labelled 1.25 households "1" and the income axis 387, 774, 1161
    assert ticks(4, 4, integer=True) == [0, 1, 2, 3, 4]
    assert ticks(1935, 6) == [0, 500, 1000, 1500, 2000]
    assert all(float(t).is_integer() for t in ticks(7, 4, integer=True))
    assert ticks(0.37, 4) == [0, 0.1, 0.2, 0.3, 0.4]


def test_the_breakdown_by_locality_adds_up_to_the_totals(result):
    d, _html = result
    for code, counts in d["counts"].items():
        granted = sum(counts[s]["baseline"] for s in ("eligible", "gradual_exit"))
        assert sum(progs.get(code, {}).get("baseline", 0) for progs in d["by_locality"].values()) == granted, code
    rows = briefing.locality_rows(d)
    assert {r["code"] for r in rows} <= {c[:4] + "00" for c in d["by_locality"]}
    assert sum(r["baseline"] for r in rows) == sum(d["counts"]["dibao"][s]["baseline"] for s in ("eligible", "gradual_exit"))
    assert all(c["code"].startswith(r["code"][:4]) for r in rows for c in r["counties"])


def test_the_headline_names_the_program_and_the_yearly_change(result):
    d, html = result
    line = briefing.headline(d)
    assert "最低生活保障" in line and "万元" in line and line in html
    net = sum(d["counts"]["dibao"][s]["reform"] - d["counts"]["dibao"][s]["baseline"] for s in ("eligible", "gradual_exit"))
    assert f"{net:,} 户" in line


def test_unconfigured_standards_are_flagged_not_costed_at_zero(result):
    d, html = result
    assert d["unpriced"], "the Liaoning rules grant some subsidies whose standard is not configured"
    flagged = [r for r in briefing.cost_rows(d) if r["unpriced"]]
    assert flagged and "标准未配置" in html
    assert "dibao_edge" not in d["unpriced"]  # it pays nothing: not a missing amount


def test_the_report_shows_statuses_in_chinese(result):
    _d, html = result
    assert "<td>符合</td>" in html and "<td>不符合</td>" in html
    assert "<td>eligible</td>" not in html and "<td>ineligible</td>" not in html


def test_the_summary_is_json_ready(result):
    d, _html = result
    assert orjson.loads(orjson.dumps(d))["by_locality"] == d["by_locality"]

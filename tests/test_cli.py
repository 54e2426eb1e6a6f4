"""The jiuzhu command line: exit codes, JSON out, Chinese report, YAML test runner."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "liaoning_shenyang_family.json"


def jiuzhu(*args, stdin: str | None = None):
    return subprocess.run([sys.executable, "-m", "engine.cli", *args], capture_output=True, text=True, input=stdin, cwd=ROOT)


def test_evaluate_prints_the_determination():
    r = jiuzhu("evaluate", str(EXAMPLE))
    assert r.returncode == 0, r.stderr
    det = json.loads(r.stdout)
    assert det["household_id"] == "LN-2021-0001"
    assert det["ruleset_version"].startswith("sha256:")


def test_evaluate_reads_stdin_and_arrays():
    one = EXAMPLE.read_text(encoding="utf-8")
    r = jiuzhu("evaluate", "-", stdin=f"[{one}, {one}]")
    assert r.returncode == 0, r.stderr
    assert len(json.loads(r.stdout)) == 2


def test_bad_input_exits_2_naming_the_field():
    h = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    h["members"][1]["birth_date"] = "2099-01-01"
    r = jiuzhu("evaluate", "-", stdin=json.dumps(h))
    assert r.returncode == 2
    assert r.stdout == ""
    assert "members[1].birth_date" in r.stderr
    assert "出生日期晚于评估日期" in r.stderr and "birth_date is after as_of" in r.stderr


def test_bad_item_in_an_array_is_named_by_index():
    h = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    bad = dict(h, area="town")
    r = jiuzhu("evaluate", "-", stdin=json.dumps([h, bad]))
    assert r.returncode == 2
    assert "[1].area" in r.stderr


def test_not_json_exits_2():
    r = jiuzhu("evaluate", "-", stdin="{nope")
    assert r.returncode == 2
    assert "JSON" in r.stderr


def test_explain_is_a_chinese_report():
    r = jiuzhu("explain", str(EXAMPLE))
    assert r.returncode == 0, r.stderr
    assert "社会救助资格评估报告" in r.stdout
    # p1 is granted 特困, so 低保 is paid for p2 only (issue 15): (672 - 150) × 1
    # the answer first (issue 15): page one lists each program, the appendix every rule with its citation
    assert "✓ 最低生活保障（全户）：符合，每月522.00元" in r.stdout
    assert "✓ 特困人员救助供养（户主p1）：符合，每月873.60元" in r.stdout
    assert r.stdout.index("救助金额合计") < r.stdout.index("审核附录") < r.stdout.index("依据：")
    assert "依据：" in r.stdout


def test_test_command_runs_cases_and_fails_on_a_wrong_expectation(tmp_path):
    ok = jiuzhu("test")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    case = tmp_path / "wrong.yaml"
    case.write_text(
        "cases:\n"
        "  - name: wrong\n"
        "    household: {locality: '210102', as_of: 2021-08-01, area: urban, assets: {financial: 0, properties: 1},\n"
        "                members: [{id: p1, relation: head, birth_date: 1980-01-01, hukou_locality: '210102'}]}\n"
        "    expect: {dibao: ineligible}\n",
        encoding="utf-8",
    )
    bad = jiuzhu("test", str(case))
    assert bad.returncode == 1
    assert "dibao.status" in bad.stdout

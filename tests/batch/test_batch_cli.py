"""The policy-staff commands end to end (small populations)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
from click.testing import CliRunner

from engine.cli.main import main

ROOT = Path(__file__).resolve().parents[2]


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_synth_batch_explain_export_and_verify(tmp_path):
    pop, out = tmp_path / "pop", tmp_path / "out"
    r = run("synth", "--locality", "620722", "--households", 400, "--seed", 9, "--out", pop)
    assert r.exit_code == 0 and "SYNTHETIC" in r.output and "合成数据" in r.output
    r = run("batch", pop, "--out", out, "--verify", 40)
    assert r.exit_code == 0, r.output
    assert "抽样复核 40 户：全部一致" in r.output and "合成数据" in r.output
    hh = pq.read_table(out / "households.parquet")
    assert hh.num_rows == 400 and pq.read_table(out / "member_programs.parquet").num_rows > 400
    run_json = json.loads((out / "run.json").read_text())
    assert run_json["households"] == 400 and run_json["synthetic"] is True
    hid = hh.column("household_id")[5].as_py()
    r = run("batch", pop, "--explain", hid)
    assert r.exit_code == 0 and "社会救助资格评估报告" in r.output and hid in r.output
    r = run("batch", pop, "--export", hid)
    (exported,) = json.loads(r.output)
    assert exported["household_id"] == hid and exported["members"]
    r = run("evaluate", "-")
    r = CliRunner().invoke(main, ["evaluate", "-"], input=json.dumps(exported))
    det = json.loads(r.output)
    assert det["programs"][0]["status"] == hh.column("dibao_status")[5].as_py()
    r = run("batch", out, "--explain", hid)  # a results directory: the run's population and date
    assert r.exit_code == 0 and hid in r.output
    r = run("batch", pop, "--explain", "NO-SUCH")
    assert r.exit_code == 2


def test_batch_refuses_a_bad_population(tmp_path):
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "households.csv").write_text(
        "household_id,locality,as_of,area\nH1,210102,2021-08-01,suburb\n", encoding="utf-8"
    )
    (tmp_path / "p" / "members.csv").write_text(
        "household_id,member_id,relation,birth_date\nH1,p1,head,1950-01-01\n", encoding="utf-8"
    )
    r = run("batch", tmp_path / "p", "--out", tmp_path / "o")
    assert r.exit_code == 2 and "households.csv 第1行 area" in r.output
    assert not (tmp_path / "o" / "households.parquet").exists()


def test_simulate_and_columns(tmp_path):
    pop = tmp_path / "pop"
    run("synth", "--locality", "210000", "--households", 300, "--out", pop)
    r = run(
        "simulate",
        pop,
        "--reform",
        ROOT / "examples" / "reforms" / "dibao_plus5_edge2.yaml",
        "--out",
        tmp_path / "s",
    )
    assert r.exit_code == 0, r.output
    assert "改革试算" in r.output and (tmp_path / "s" / "report.html").exists()
    r = run("batch-columns")
    assert "income_wage" in r.output and "members[].incomes[]" in r.output


def test_batch_on_plain_json_says_once_that_it_expects_json_lines(tmp_path):
    household = json.loads((ROOT / "examples" / "liaoning_shenyang_family.json").read_text(encoding="utf-8"))
    for name, text in (
        ("array.json", json.dumps([household, household], indent=2)),
        ("object.json", json.dumps(household, indent=2)),
        ("one_line_array.json", json.dumps([household])),
    ):
        (tmp_path / name).write_text(text, encoding="utf-8")
        r = run("batch", tmp_path / name, "--out", tmp_path / "o")
        assert r.exit_code == 2, r.output
        assert r.output.count("one household per line") == 1 and "不是有效的 JSON" not in r.output
        assert "每行一户" in r.output and "one household per line" in r.output
    lines = tmp_path / "lines.jsonl"
    lines.write_text(json.dumps(household) + "\n" + json.dumps(household) + "\n", encoding="utf-8")
    assert run("batch", lines, "--out", tmp_path / "o").exit_code == 0


def test_batch_programs_typo_and_a_directory_without_tables_exit_2_with_a_message(tmp_path):
    lines = tmp_path / "lines.jsonl"
    lines.write_text((ROOT / "examples" / "liaoning_shenyang_family.json").read_text(encoding="utf-8").replace("\n", "") + "\n")
    r = CliRunner().invoke(main, ["batch", str(lines), "--out", str(tmp_path / "o"), "--programs", "dibo"])
    assert r.exit_code == 2 and "unknown program(s) in --programs: dibo" in r.output, r.output
    r = CliRunner().invoke(main, ["batch", str(tmp_path), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "holds no households/members tables" in r.output, r.output


def test_synth_refuses_a_household_count_below_one(tmp_path):
    for n in ("-5", "0"):
        r = run("synth", "--locality", "210000", "--households", n, "--out", tmp_path / "p")
        assert r.exit_code == 2 and "--households" in r.output
        assert not (tmp_path / "p").exists()


def test_simulate_takes_the_population_as_batch_does_and_keeps_the_old_option(tmp_path):
    pop = tmp_path / "pop"
    run("synth", "--locality", "210000", "--households", 50, "--out", pop)
    reform = ROOT / "examples" / "reforms" / "dibao_plus5_edge2.yaml"
    old = CliRunner().invoke(main, ["simulate", "--population", str(pop), "--reform", str(reform), "--out", str(tmp_path / "a")])
    assert old.exit_code == 0, old.output
    assert "改革试算" in old.stdout and "位置参数" in old.stderr
    r = run("simulate", "--reform", reform)
    assert r.exit_code == 2 and "POPULATION" in r.output


def test_diff_that_compares_no_case_warns_and_says_why(tmp_path):
    (tmp_path / "empty").mkdir()
    r = CliRunner().invoke(main, ["diff", "--base", str(ROOT), "--head", str(ROOT), "--cases", str(tmp_path / "empty")])
    assert r.exit_code == 0, r.output
    assert "测试用例：0 个" in r.stdout
    assert "没有比较任何测试用例" in r.stderr and "holds no .yaml case files" in r.stderr
    r = CliRunner().invoke(main, ["diff", "--base", str(ROOT), "--head", str(ROOT)])
    assert "no test case was compared" not in r.stderr

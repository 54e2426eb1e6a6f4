"""The jiuzhu command line: exit codes, JSON out, Chinese report, YAML test runner."""

import json
import subprocess
import sys
from pathlib import Path

import click
from click.testing import CliRunner

from engine.cli.main import main

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "liaoning_shenyang_family.json"


def jiuzhu(*args, stdin: str | None = None):
    return subprocess.run([sys.executable, "-m", "engine.cli.main", *args], capture_output=True, text=True, input=stdin, cwd=ROOT)


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


def test_a_missing_file_or_a_directory_exits_2_with_a_message_not_a_traceback(tmp_path):
    for command in ("evaluate", "explain"):
        missing = jiuzhu(command, str(tmp_path / "nope.json"))
        assert missing.returncode == 2, missing.stderr
        assert "does not exist" in missing.stderr and "Traceback" not in missing.stderr
        directory = jiuzhu(command, str(tmp_path))
        assert directory.returncode == 2, directory.stderr
        assert "is a directory" in directory.stderr and "Traceback" not in directory.stderr


def test_a_typo_in_programs_names_the_typo_and_the_valid_codes():
    r = jiuzhu("evaluate", str(EXAMPLE), "--programs", "dibao,tekunn")
    assert r.returncode == 2, r.stderr
    assert r.stdout == ""
    assert "unknown program(s) in --programs: tekunn" in r.stderr and "未知的项目：tekunn" in r.stderr
    valid = r.stderr.split("valid:", 1)[1]
    assert "dibao" in valid and "tekun," in valid  # every code, in the rule book's order
    assert "rule or policy files have errors" not in r.stderr  # the files are fine; the option is not


def test_a_case_file_naming_an_unknown_status_program_or_rule_is_an_error_with_file_and_line(tmp_path):
    case = tmp_path / "typos.yaml"
    case.write_text(
        "cases:\n"
        "  - name: typos\n"
        "    household: {locality: '210102', as_of: 2021-08-01, area: urban, assets: {financial: 0, properties: 1},\n"
        "                members: [{id: p1, relation: head, birth_date: 1980-01-01, hukou_locality: '210102'}]}\n"
        "    expect:\n"
        "      dibao: eligable\n"
        "      dibaoo: eligible\n"
        "      tekun[p1]: {status: inelligible}\n"
        "      rules:\n"
        "        dibao.income_below_standrd: true\n"
        "        dibao.income_below_standard: true\n",
        encoding="utf-8",
    )
    r = jiuzhu("test", str(case))
    assert r.returncode == 2, r.stdout + r.stderr
    assert "个用例通过" not in r.stdout  # nothing ran
    assert f"{case}:6: 未知的状态 eligable" in r.stderr
    assert f"{case}:7: 未知的项目 dibaoo" in r.stderr
    assert f"{case}:8: 未知的状态 inelligible" in r.stderr
    assert f"{case}:10: 未知的规则 dibao.income_below_standrd" in r.stderr
    assert ":11:" not in r.stderr  # a real rule id is fine


def _commands(cmd: click.Command, path: str):
    yield path, cmd
    if isinstance(cmd, click.Group):  # as click lists them: the service's commands are loaded on demand
        ctx = click.Context(cmd)
        for name in cmd.list_commands(ctx):
            yield from _commands(cmd.get_command(ctx, name), f"{path} {name}")


def test_every_command_option_and_argument_has_help():
    assert {"serve", "db", "keys", "users", "monitor", "alerts"} <= {
        p.split()[1] for p, _c in _commands(main, "jiuzhu") if " " in p
    }
    undocumented = []
    for path, cmd in _commands(main, "jiuzhu"):
        if not cmd.help:
            undocumented.append(path)
        for p in cmd.params:
            if isinstance(p, click.Option) and not p.hidden and not p.help:
                undocumented.append(f"{path} {p.opts[0]}")
            if isinstance(p, click.Argument) and f"{p.human_readable_name}：" not in (cmd.help or ""):
                undocumented.append(f"{path} {p.human_readable_name}")  # described in the command's help
    assert undocumented == []


def test_a_home_without_rules_and_policies_is_a_usage_error_not_a_traceback(tmp_path):
    for args in (["rules", "check", "--home", str(tmp_path)], ["evaluate", str(EXAMPLE), "--home", str(tmp_path / "no")]):
        r = CliRunner().invoke(main, args)
        assert r.exit_code == 2, r.output
        assert "holds no rules or policies directory" in r.output and r.exception.__class__ is SystemExit


def test_counts_below_one_are_refused_by_the_option(tmp_path):
    events = tmp_path / "e.jsonl"
    events.write_text("", encoding="utf-8")
    for args in (
        ["monitor", "replay", str(events), "--workers", "0", "--data-dir", str(tmp_path)],
        ["monitor", "replay", str(events), "--batch", "-1", "--data-dir", str(tmp_path)],
        ["monitor", "synth", "--households", "0", "--out", str(tmp_path / "s.jsonl")],
        ["alerts", "--limit", "0", "--data-dir", str(tmp_path)],
        ["serve", "--workers", "0", "--data-dir", str(tmp_path)],
        ["batch", str(events), "--out", str(tmp_path / "o"), "--part-size", "0"],
    ):
        r = CliRunner().invoke(main, args)
        assert r.exit_code == 2 and "is not in the range" in r.output, (args, r.output)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e.jsonl"]  # nothing created


def test_monitor_replay_on_plain_json_says_once_that_it_expects_json_lines(tmp_path):
    events = [{"household_id": "H1", "type": "register", "date": "2022-01-01"}] * 3
    (tmp_path / "events.json").write_text(json.dumps(events, indent=2), encoding="utf-8")
    r = CliRunner().invoke(main, ["monitor", "replay", str(tmp_path / "events.json"), "--data-dir", str(tmp_path / "d")])
    assert r.exit_code == 2, r.output
    assert r.stderr.count("one event per line") == 1 and "invalid JSON" not in r.stderr
    assert not (tmp_path / "d").exists()  # refused before a database is made


def test_batch_does_not_import_the_service():
    """The service's commands join `jiuzhu` through entry points, loaded only when run: a `jiuzhu batch`
    imports none of api/ (half a second of its start-up before)."""
    code = (
        "import sys; from click.testing import CliRunner; from engine.cli.main import main; "
        "r = CliRunner().invoke(main, ['batch', '--help']); assert r.exit_code == 0, r.output; "
        "print(sorted(m for m in sys.modules if m == 'api' or m.startswith('api.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    assert out.strip() == "[]"

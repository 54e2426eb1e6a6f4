"""Monitoring rule files are checked at load, with file and line, like the program rules."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from engine.monitor.rules import LEVELS, load_monitoring

ROOT = Path(__file__).resolve().parents[2]
JIUZHU = str(Path(sys.executable).with_name("jiuzhu"))

GOOD = """module: monitoring
rules:
  - id: monitor.big_loss
    title: 大额损失
    level: red
    match:
      - {as: e, fact: event, when: "type == 'disaster' and loss >= 10000.50"}
    text: 损失{e.loss}元
    action: 核实
    citation: 000_e6fc943ba75c7f6b.txt L173
"""


def _book(tmp_path: Path, text: str):
    d = tmp_path / "rules" / "monitoring"
    d.mkdir(parents=True)
    (d / "x.yaml").write_text(text, encoding="utf-8")
    return load_monitoring(d)


def test_the_shipped_rules_load_and_every_rule_is_complete():
    book = load_monitoring(ROOT / "rules" / "monitoring")
    assert book.errors == []
    ids = {r.id for r in book.rules}
    assert {"monitor.income_halved", "monitor.hospitalised_twice", "monitor.loss_beyond_income", "monitor.tekun_minor_18_in_school",
            "monitor.tekun_minor_18_not_in_school", "monitor.member_turns_60", "monitor.member_turns_80", "monitor.gradual_exit_ends",
            "monitor.review_due", "monitor.may_qualify_dibao", "monitor.may_qualify_temporary"} <= ids
    for r in book.rules:
        assert r.title and r.text and r.action and r.citation and r.level in LEVELS


def test_a_condition_compiles_to_durable_rules_json_with_money_in_fen(tmp_path):
    book = _book(tmp_path, GOOD)
    assert book.errors == []
    assert len(book.rules) == 1
    assert book.definition()["monitor.big_loss"] == {
        "all": [{"e": {"$and": [{"kind": "event"}, {"type": "disaster"}, {"$gte": {"loss": 1000050}}]}}]
    }


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("loss >= 10000.50", "loss >= 10000.505"),  # a third decimal cannot be a fen
        ("type == 'disaster'", "type == 'disastr'"),
        ("loss >= 10000.50", "losses >= 1"),
        ("loss >= 10000.50", "loss + 1 > 2"),
        ("level: red", "level: purple"),
        ("citation: 000_e6fc943ba75c7f6b.txt L173", "note: none"),
        ("fact: event", "fact: weather"),
        ("{e.loss}", "{e.damage}"),
    ],
)
def test_mistakes_are_refused_with_file_and_line(tmp_path, change, message):
    old = GOOD
    book = _book(tmp_path, old.replace(change, message))
    assert book.errors, message
    err = book.errors[0]
    assert err.file.endswith("x.yaml") and err.line > 0


def test_rules_check_reports_a_broken_monitoring_file(tmp_path):
    shutil.copytree(ROOT / "rules", tmp_path / "rules")
    shutil.copytree(ROOT / "policies", tmp_path / "policies")
    f = tmp_path / "rules" / "monitoring" / "warnings.yaml"
    f.write_text(f.read_text(encoding="utf-8").replace("level: red", "level: crimson", 1), encoding="utf-8")
    r = subprocess.run([JIUZHU, "rules", "check", "--home", str(tmp_path)], capture_output=True, text=True)
    assert r.returncode == 1
    assert "rules/monitoring/warnings.yaml:" in r.stderr and "level" in r.stderr
    ok = subprocess.run([JIUZHU, "rules", "check"], capture_output=True, text=True)
    assert ok.returncode == 0 and "动态监测规则通过校验" in ok.stdout

"""Alerts cite documents like the program rules: no seed file names, no line locators, no parameter keys."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ORPHAN, WORKER, Driver, household

from engine.monitor.rules import load_monitoring

ROOT = Path(__file__).resolve().parents[2]
_SEED_LOCATOR = re.compile(r"\.txt|\bL\d+")


def _leaks(text: str, keys: set[str]) -> list[str]:
    found = _SEED_LOCATOR.findall(text)
    found += [k for k in keys if k in text]
    return found


def test_shipped_monitoring_citations_name_documents(monitor):
    keys = set(monitor.engine.policies.schema)
    book = load_monitoring(ROOT / "rules" / "monitoring")
    assert book.errors == []
    cited = [(r.id, r.citation) for r in book.rules] + [(m.name, m.citation) for m in book.milestones]
    for name, citation in cited:
        assert not _leaks(citation, keys), (name, citation)
        assert "《" in citation, (name, citation)
    by_id = dict(cited)
    # a seed line reads as its document and chapter, the same rendering as the program rules use
    assert by_id["monitor.member_turns_80"].startswith("《“十四五”民政事业发展规划》（民发〔2021〕51号）第五章第一节")
    assert "《最低生活保障审核确认办法》" in by_id["monitor.review_due"]


def test_no_alert_shows_a_file_name_or_a_parameter_key(monitor):
    keys = set(monitor.engine.policies.schema)
    alerts: list[dict] = []

    d = Driver(monitor, "C-1")
    d.register("2021-08-01", household(WORKER))
    d.send("income_change", "2021-10-01", member="p1", income_type="wage", monthly="600")
    d.send("hospitalisation", "2021-11-01", member="p2", cost="3000")
    d.send("hospitalisation", "2022-01-15", member="p2", cost="5000")
    d.send("accident", "2022-02-10", cause="traffic_accident", loss="30000")
    d.send("job_lost", "2022-03-01", member="p1")
    alerts += d.alerts

    o = Driver(monitor, "C-2")
    o.register("2021-08-01", household(ORPHAN))
    o.send("tick", "2022-05-02")
    o.send("tick", "2022-08-01")
    alerts += o.alerts

    g = Driver(monitor, "C-3")
    rec = household(WORKER, current_benefits=["dibao"], current_amounts={"dibao": "300.00"})
    rec["members"][0]["incomes"] = [{"type": "wage", "monthly": "1000.00"}]
    rec["members"].append(
        {"id": "g1", "relation": "grandparent", "birth_date": "1942-02-10", "hukou_locality": "210102", "supporters": "able"}
    )
    g.register("2021-08-01", rec)
    g.send("income_change", "2021-09-01", member="p1", income_type="wage", monthly="1500")
    g.send("tick", "2022-03-02")
    alerts += g.alerts

    fired = {a["rule"] for a in alerts}
    assert len(fired) >= 8, fired  # the check below covers most rules, not one or two
    for a in alerts:
        for field in ("title", "text", "action", "citation"):
            assert not _leaks(a[field], keys), (a["rule"], field, a[field])
        assert "《" in a["citation"], (a["rule"], a["citation"])


@pytest.mark.parametrize(
    ("old", "new", "fragment"),
    [
        (
            "citation: 000_e6fc943ba75c7f6b.txt L425（高龄、失能老年人补贴）",
            "citation: 009_e6fc943ba75c7f6b.txt L425",
            "009_e6fc943ba75c7f6b.txt",
        ),
        ("citation: 《社会救助暂行办法》第十三条（家庭人口", "citation: 《社会救助办法》第十三条（家庭人口", "《社会救助办法》"),
    ],
    ids=["unknown-seed-file", "unknown-title"],
)
def test_rules_check_refuses_an_unknown_source_in_monitoring_rules(tmp_path, old, new, fragment):
    shutil.copytree(ROOT / "rules", tmp_path / "rules")
    shutil.copytree(ROOT / "policies", tmp_path / "policies")
    path = tmp_path / "rules" / "monitoring" / "warnings.yaml"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    r = subprocess.run(
        [sys.executable, "-m", "engine.cli.main", "rules", "check", "--home", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert r.returncode != 0
    line = next(ln for ln in (r.stdout + r.stderr).splitlines() if fragment in ln)
    assert "rules/monitoring/warnings.yaml:" in line and "未登记" in line

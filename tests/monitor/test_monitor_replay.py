"""`jiuzhu monitor replay`, `jiuzhu monitor tick` and `jiuzhu alerts` on a real database file."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from engine.monitor.synth import generate

JIUZHU = str(Path(sys.executable).with_name("jiuzhu"))


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "JIUZHU_DATA_DIR")}
    return subprocess.run([JIUZHU, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


def _count(db: Path, table: str) -> int:
    with sqlite3.connect(db) as c:
        return c.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def test_replay_on_two_processes_then_again_records_nothing_twice(tmp_path):
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"".join(generate(40, 600, seed=7)))
    r = _run("monitor", "replay", str(events), "--workers", "2", "--batch", "100", "--data-dir", "d", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "回放 600 个事件（40 户）" in r.stdout and "事件/秒" in r.stdout
    db = tmp_path / "d" / "jiuzhu.sqlite3"
    n_events, n_alerts = _count(db, "monitor_events"), _count(db, "alerts")
    assert n_events + int(r.stdout.split("拒绝 ")[1].split("；")[0]) == 600
    assert n_alerts > 0 and _count(db, "monitor_households") == 40
    again = _run("monitor", "replay", str(events), "--workers", "2", "--data-dir", "d", cwd=tmp_path)
    assert again.returncode == 0 and "新预警 0 条" in again.stdout
    assert (_count(db, "monitor_events"), _count(db, "alerts")) == (n_events, n_alerts)

    # the same stream on one process gives the same alerts (households are independent)
    one = _run("monitor", "replay", str(events), "--workers", "1", "--data-dir", "d1", cwd=tmp_path)
    assert one.returncode == 0
    with sqlite3.connect(db) as a, sqlite3.connect(tmp_path / "d1" / "jiuzhu.sqlite3") as b:
        q = "SELECT key, text FROM alerts ORDER BY key"
        assert a.execute(q).fetchall() == b.execute(q).fetchall()

    listed = _run("alerts", "--data-dir", "d", "--json", "--limit", "500", cwd=tmp_path)
    alerts = json.loads(listed.stdout)
    assert len(alerts) == min(n_alerts, 500) and all(a["status"] == "open" for a in alerts)
    aid = alerts[0]["alert_id"]
    assert _run("alerts", "--data-dir", "d", "ack", aid, "--note", "已入户", cwd=tmp_path).returncode == 0
    assert _run("alerts", "--data-dir", "d", "close", aid, "--note", "已处理", cwd=tmp_path).returncode == 0
    assert _run("alerts", "--data-dir", "d", "close", aid, "--note", "再次", cwd=tmp_path).returncode == 1
    text = _run("alerts", "--data-dir", "d", "--status", "closed", cwd=tmp_path).stdout
    assert aid in text and "建议：" in text and "依据：" in text

    tick = _run("monitor", "tick", "--date", "2026-01-01", "--data-dir", "d", cwd=tmp_path)
    assert tick.returncode == 0 and "已推进 40 户" in tick.stdout
    assert _count(db, "monitor_events") == n_events + 40
    again = _run("monitor", "tick", "--date", "2026-01-01", "--data-dir", "d", cwd=tmp_path)
    assert "已推进 0 户" in again.stdout


def test_a_malformed_file_is_refused_whole_naming_lines(tmp_path):
    events = tmp_path / "events.jsonl"
    lines = [json.dumps({"household_id": "H1", "type": "register", "date": "2021-01-01", "household": {"locality": "210102", "area": "urban", "members": [{"id": "p1", "relation": "head", "birth_date": "1970-01-01"}]}}),
             json.dumps({"household_id": "H2", "type": "job_lost", "date": "2021-02-01"}),
             "{not json"]
    events.write_text("\n".join(lines) + "\n", encoding="utf-8")
    r = _run("monitor", "replay", str(events), "--workers", "2", "--data-dir", "d", cwd=tmp_path)
    assert r.returncode == 2
    assert "events.jsonl:2: member" in r.stderr and "events.jsonl:3:" in r.stderr
    assert _count(tmp_path / "d" / "jiuzhu.sqlite3", "monitor_events") == 0

"""jiuzhu keys create / list / revoke."""

from __future__ import annotations

from click.testing import CliRunner
from http_helpers import auth

from api import examples
from api.app import create_app
from api.settings import Settings
from engine.cli import main


def test_create_list_revoke(tmp_path, engine, monkeypatch):
    from fastapi.testclient import TestClient

    monkeypatch.delenv("DATABASE_URL", raising=False)
    runner = CliRunner()
    where = ["--data-dir", str(tmp_path)]
    made = runner.invoke(main, ["keys", "create", "--role", "window", "--name", "城关镇窗口", *where])
    assert made.exit_code == 0, made.output
    key = made.stdout.strip()
    assert key.startswith("jzk_") and len(key) > 40

    listed = runner.invoke(main, ["keys", "list", *where])
    assert listed.exit_code == 0
    assert "城关镇窗口" in listed.stdout and "window" in listed.stdout and key not in listed.stdout
    key_id = next(line.split()[0] for line in listed.stdout.splitlines() if "城关镇窗口" in line)

    settings = Settings(data_dir=tmp_path, key_cache_seconds=0)
    with TestClient(create_app(settings, rules=engine)) as client:
        assert client.post("/v1/evaluate", json=examples.HOUSEHOLD, headers=auth(key)).status_code == 200
        revoked = runner.invoke(main, ["keys", "revoke", key_id, *where])
        assert revoked.exit_code == 0 and "已撤销" in revoked.stdout
        assert client.post("/v1/evaluate", json=examples.HOUSEHOLD, headers=auth(key)).status_code == 401

    assert runner.invoke(main, ["keys", "revoke", "k_missing", *where]).exit_code == 1
    assert runner.invoke(main, ["keys", "create", "--role", "root", "--name", "x", *where]).exit_code == 2


def test_create_with_a_locality_scope(tmp_path, engine, monkeypatch):
    from fastapi.testclient import TestClient

    monkeypatch.delenv("DATABASE_URL", raising=False)
    runner = CliRunner()
    where = ["--data-dir", str(tmp_path)]
    made = runner.invoke(main, ["keys", "create", "--role", "window", "--name", "和平区窗口", "--locality", "210102", *where])
    assert made.exit_code == 0, made.output
    assert "210102" in made.stderr and "辽宁省沈阳市和平区" in made.stderr
    key = made.stdout.strip()
    listed = runner.invoke(main, ["keys", "list", *where]).stdout
    line = next(line for line in listed.splitlines() if "和平区窗口" in line)
    assert line.split()[2] == "210102" and "locality" in listed.splitlines()[0]

    typo = runner.invoke(main, ["keys", "create", "--role", "window", "--name", "x", "--locality", "210199", *where])
    assert typo.exit_code == 2 and "210199" in typo.stderr and "jzk_" not in typo.output
    assert runner.invoke(main, ["keys", "create", "--role", "window", "--name", "x", "--locality", "2101", *where]).exit_code == 2

    with TestClient(create_app(Settings(data_dir=tmp_path), rules=engine)) as client:
        assert client.post("/v1/evaluate", json=examples.HOUSEHOLD, headers=auth(key)).status_code == 200  # 210102
        elsewhere = {**examples.HOUSEHOLD, "locality": "620722"}
        assert client.post("/v1/evaluate", json=elsewhere, headers=auth(key)).status_code == 403

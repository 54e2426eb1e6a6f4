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

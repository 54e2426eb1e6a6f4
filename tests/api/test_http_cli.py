"""jiuzhu keys create / list / revoke."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner
from http_helpers import auth

from api.app import create_app
from api.core import examples
from api.core.config import Settings
from engine.cli.main import main


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


def test_the_default_data_dir_does_not_depend_on_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.delenv("JIUZHU_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    for cwd in (tmp_path, tmp_path / "elsewhere"):
        cwd.mkdir(exist_ok=True)
        monkeypatch.chdir(cwd)
        assert Settings.from_env().data_dir == tmp_path / "xdg" / "jiuzhu"
        assert Settings().data_dir == tmp_path / "xdg" / "jiuzhu"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert Settings.from_env().data_dir == tmp_path / "home" / ".local" / "share" / "jiuzhu"
    monkeypatch.setenv("JIUZHU_DATA_DIR", "/data")
    assert Settings.from_env().data_dir == Path("/data")


def test_commands_that_only_read_refuse_a_data_dir_without_a_database(tmp_path, monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("JIUZHU_DATA_DIR", "")  # --data-dir is handed on to the workers in it: restored after
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    empty = tmp_path / "empty"
    for args in (
        ["keys", "list", "--data-dir", str(empty)],
        ["keys", "revoke", "k_0123456789ab", "--data-dir", str(empty)],
        ["alerts", "--data-dir", str(empty)],
        ["alerts", "--data-dir", str(empty), "ack", "a_1"],
        ["monitor", "tick", "--date", "2022-01-01", "--data-dir", str(empty)],
    ):
        r = runner.invoke(main, args)
        assert r.exit_code == 2, (args, r.output)
        assert f"在 {empty} 没有找到数据库" in r.stderr and "jiuzhu serve" in r.stderr, r.output
    monkeypatch.setenv("JIUZHU_DATA_DIR", "")
    r = runner.invoke(main, ["keys", "list"])  # the default directory, not ./var
    assert r.exit_code == 2 and str(tmp_path / "xdg" / "jiuzhu") in r.stderr
    assert not empty.exists() and not (tmp_path / "var").exists() and not (tmp_path / "xdg").exists()
    # keys create may start a database (before the first `jiuzhu serve`); then list reads it
    assert runner.invoke(main, ["keys", "create", "--role", "admin", "--name", "运维"]).exit_code == 0
    assert "运维" in runner.invoke(main, ["keys", "list"]).stdout
    assert (tmp_path / "xdg" / "jiuzhu" / "jiuzhu.sqlite3").is_file()


def test_a_malformed_database_url_is_a_message_not_a_traceback(tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "")  # --database-url is handed on to the workers in it: restored after
    r = CliRunner().invoke(main, ["keys", "create", "--role", "admin", "--name", "x", "--database-url", "nonsense://x"])
    assert r.exit_code == 4 and isinstance(r.exception, SystemExit), r.output
    assert "cannot open or migrate the database" in r.stderr and "nonsense" in r.stderr

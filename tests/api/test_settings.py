"""The settings object: read once, validated naming the variable, handed to child processes whole."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from api.core.config import Settings, SettingsError
from api.simulations.reform_checks import ReformChecker
from api.simulations.runner import _child_environment
from engine.cli.main import main

ROOT = Path(__file__).resolve().parents[2]


def _distinct(tmp_path: Path) -> Settings:
    """Settings no environment could produce by chance."""
    return Settings(
        data_dir=tmp_path / "parent",
        database_url="postgresql://jiuzhu:s3cret-pw@db.example/jiuzhu",
        id_hash_secret="parent-id-secret",
        max_body_bytes=4321,
        simulation_timeout_seconds=77.5,
        sqlite_synchronous="NORMAL",
        monitor_sessions=17,
    )


def test_a_bad_value_names_its_variable(monkeypatch):
    monkeypatch.setenv("JIUZHU_MAX_BATCH_MEMBERS", "lots")
    with pytest.raises(SettingsError) as e:
        Settings.from_env()
    assert e.value.variable == "JIUZHU_MAX_BATCH_MEMBERS"
    assert "JIUZHU_MAX_BATCH_MEMBERS" in str(e.value) and "'lots'" in str(e.value)
    monkeypatch.setenv("JIUZHU_MAX_BATCH_MEMBERS", "0")
    with pytest.raises(SettingsError, match=r"JIUZHU_MAX_BATCH_MEMBERS.*at least 1"):
        Settings.from_env()


def test_blank_values_count_as_unset(monkeypatch):
    monkeypatch.setenv("JIUZHU_ID_HASH_SECRET", "")  # blank counts as unset
    assert Settings.from_env().id_hash_secret == ""
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:pw@h/d")
    assert Settings.from_env().url == "postgresql+psycopg://u:pw@h/d"


def test_the_cli_exits_2_naming_the_variable(tmp_path, monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("JIUZHU_KEY_CACHE_SECONDS", "soon")
    out = CliRunner().invoke(main, ["keys", "list", "--data-dir", str(tmp_path)])
    assert out.exit_code == 2, out.output
    assert "JIUZHU_KEY_CACHE_SECONDS" in out.output


def test_commands_leave_the_environment_alone(tmp_path, monkeypatch):
    """The options reach the settings object, not os.environ (which every later child would inherit)."""
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("JIUZHU_DATA_DIR", raising=False)
    before = dict(os.environ)
    out = CliRunner().invoke(main, ["keys", "create", "--role", "window", "--name", "窗口", "--data-dir", str(tmp_path)])
    assert out.exit_code == 0, out.output
    assert dict(os.environ) == before


def test_secrets_stay_out_of_repr(tmp_path):
    shown = repr(_distinct(tmp_path))
    assert "s3cret-pw" not in shown and "parent-id-secret" not in shown
    assert "max_body_bytes=4321" in shown


def test_the_checking_process_gets_the_parents_settings_not_its_environment(tmp_path, monkeypatch):
    settings = _distinct(tmp_path)
    # What the child would read from the environment differs in every field set above.
    monkeypatch.setenv("JIUZHU_MAX_BODY_BYTES", "99")
    monkeypatch.setenv("JIUZHU_DATA_DIR", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("DATABASE_URL", "postgresql://other@elsewhere/db")
    monkeypatch.setenv("JIUZHU_SIMULATION_TIMEOUT_SECONDS", "5")

    async def ask():
        checker = ReformChecker(settings)
        try:
            return await checker.process_settings(), await checker.pid()
        finally:
            checker.close()

    held, pid = asyncio.run(ask())
    assert pid != os.getpid()
    assert held == settings


def test_a_simulation_child_reads_the_settings_from_stdin_not_its_environment(tmp_path, monkeypatch):
    settings = _distinct(tmp_path)
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:pw@h/d")
    monkeypatch.setenv("JIUZHU_ID_HASH_SECRET", "secret-of-the-parent-environment")
    env = _child_environment()
    assert "DATABASE_URL" not in env and "JIUZHU_ID_HASH_SECRET" not in env  # the child opens no database
    env["JIUZHU_MAX_BODY_BYTES"] = "99"
    env["JIUZHU_DATA_DIR"] = str(tmp_path / "elsewhere")
    spec = {"settings": orjson.loads(settings.to_child())}  # as SimulationRunner sends it
    code = (
        "import sys, orjson\n"
        "from api.simulations.child import settings_of\n"
        "sys.stdout.buffer.write(settings_of(orjson.loads(sys.stdin.buffer.read())).to_child())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], input=orjson.dumps(spec), env=env, cwd=ROOT, capture_output=True, check=True)
    assert Settings.from_child(out.stdout) == settings


def test_replace_validates():
    with pytest.raises(ValueError):
        dataclasses.replace(Settings(), max_batch_households=0)

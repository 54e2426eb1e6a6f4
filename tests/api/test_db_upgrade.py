"""`jiuzhu db upgrade`: migrations as an explicit, locked step; `jiuzhu serve` on PostgreSQL does not migrate."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from api.core.config import Settings
from api.storage.db import current_revision, head_revision, make_engine
from tests.api.conftest import PG_URL, _drop, _pg_database

JIUZHU = str(Path(sys.executable).parent / "jiuzhu")


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "JIUZHU_AUTO_MIGRATE")}
    env.update(extra)
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def pg_url():
    if not PG_URL:
        pytest.skip("JIUZHU_TEST_DATABASE_URL not set (CI sets it; see .ci/run)")
    name, base, url = _pg_database()
    try:
        yield url
    finally:
        _drop(base, name)


def test_two_concurrent_upgrades_on_one_fresh_postgresql_both_succeed_and_one_migrates(pg_url, tmp_path):
    procs = [
        subprocess.Popen(
            [JIUZHU, "db", "upgrade", "--database-url", pg_url],
            env=_env(JIUZHU_DATA_DIR=str(tmp_path)),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    said = [out for out, _ in outs]
    assert sum("schema upgraded to" in s for s in said) == 1, said
    assert sum("schema already at" in s for s in said) == 1, said
    engine = make_engine(Settings(database_url=pg_url))
    try:
        assert current_revision(engine) == head_revision()
        with engine.connect() as conn:  # one row in alembic_version: nobody stamped twice
            assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar_one() == 1
    finally:
        engine.dispose()


def test_serve_on_a_postgresql_behind_head_exits_2_naming_db_upgrade(pg_url, tmp_path):
    r = subprocess.run(
        [JIUZHU, "serve", "--port", str(_free_port()), "--workers", "1", "--database-url", pg_url],
        env=_env(JIUZHU_DATA_DIR=str(tmp_path)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "jiuzhu db upgrade" in r.stderr and "服务未启动" in r.stderr
    engine = make_engine(Settings(database_url=pg_url))
    try:
        assert current_revision(engine) is None  # serve wrote nothing
    finally:
        engine.dispose()


def test_db_upgrade_on_sqlite_then_current_is_head(tmp_path):
    env = _env(JIUZHU_DATA_DIR=str(tmp_path))
    r = subprocess.run([JIUZHU, "db", "current"], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1, (r.stdout, r.stderr)
    r = subprocess.run([JIUZHU, "db", "upgrade"], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "schema upgraded to" in r.stdout, (r.stdout, r.stderr)
    r = subprocess.run([JIUZHU, "db", "current"], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and head_revision() in r.stdout, (r.stdout, r.stderr)


def test_settings_migrate_on_start_only_on_sqlite_unless_told():
    assert Settings().migrates_on_start
    assert not Settings(database_url="postgresql://x@h/db").migrates_on_start
    assert Settings(database_url="postgresql://x@h/db", auto_migrate=True).migrates_on_start

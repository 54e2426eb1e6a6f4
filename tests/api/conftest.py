"""Fixtures for the HTTP service: an app on a fresh database, and a key for every role.

Persistence tests take ``db_settings``, which runs them on an SQLite file and,
when JIUZHU_TEST_DATABASE_URL names a PostgreSQL server (CI starts one), on a
fresh database of that server too.
"""

from __future__ import annotations

import os
import uuid

import pytest

from api.app import create_app
from api.auth.keys import Role
from api.core.config import Settings, normalise_database_url
from api.storage.db import make_engine, migrate

PG_URL = os.environ.get("JIUZHU_TEST_DATABASE_URL")


def _pg_database():
    import psycopg

    name = "jiuzhu_test_" + uuid.uuid4().hex[:12]
    base = normalise_database_url(PG_URL).replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    head, _, _ = base.rpartition("/")
    return name, base, f"{head}/{name}"


def _drop(base: str, name: str) -> None:
    import psycopg

    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def db_settings(request, tmp_path, monkeypatch):
    monkeypatch.delenv("JIUZHU_WRITER_SOCKET", raising=False)
    if request.param == "sqlite":
        yield Settings(data_dir=tmp_path)
        return
    if not PG_URL:
        pytest.skip("JIUZHU_TEST_DATABASE_URL not set (CI sets it; see .ci/run)")
    name, base, url = _pg_database()
    try:
        settings = Settings(database_url=url)
        _upgrade(settings)  # on PostgreSQL the app does not migrate: `jiuzhu db upgrade` does, first
        yield settings
    finally:
        _drop(base, name)


def _upgrade(settings) -> None:
    db = make_engine(settings)
    migrate(db)
    db.dispose()


@pytest.fixture
def sqlite_settings(tmp_path, monkeypatch):
    monkeypatch.delenv("JIUZHU_WRITER_SOCKET", raising=False)
    return Settings(data_dir=tmp_path)


def pytest_configure(config):
    # Starlette suggests a renamed httpx fork for its TestClient; httpx itself works and is what we test with.
    config.addinivalue_line("filterwarnings", "ignore:Using `httpx` with `starlette.testclient`")


def _client(settings, engine):
    from fastapi.testclient import TestClient

    app = create_app(settings, rules=engine)
    return TestClient(app)


@pytest.fixture
def client(sqlite_settings, engine):
    with _client(sqlite_settings, engine) as c:
        yield c


@pytest.fixture
def db_client(db_settings, engine):
    with _client(db_settings, engine) as c:
        yield c


def make_keys(client) -> dict[str, str]:
    repo = client.app.state.repo
    return {role.value: repo.create_key(f"测试{role.value}", role)[1] for role in Role}


@pytest.fixture
def keys(client):
    return make_keys(client)


@pytest.fixture
def db_keys(db_client):
    return make_keys(db_client)


@pytest.fixture
def pg_settings(monkeypatch):
    """Settings on a fresh PostgreSQL database at head (skipped without JIUZHU_TEST_DATABASE_URL)."""
    monkeypatch.delenv("JIUZHU_WRITER_SOCKET", raising=False)
    if not PG_URL:
        pytest.skip("JIUZHU_TEST_DATABASE_URL not set (CI sets it; see .ci/run)")
    name, base, url = _pg_database()
    try:
        settings = Settings(database_url=url)
        _upgrade(settings)
        yield settings
    finally:
        _drop(base, name)

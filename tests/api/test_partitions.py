"""Monthly partitions of determinations on PostgreSQL (`jiuzhu db partition-determinations`, `add-partitions`):
every row kept and in its month's partition, new rows land in theirs, the service's reads and
idempotent retries still work; SQLite is left alone."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from http_helpers import auth
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from api.app import create_app
from api.auth.keys import Role
from api.core.config import Settings
from api.core.examples import HOUSEHOLD
from api.storage import partitions
from api.storage.db import make_engine, writing
from api.storage.models import DeterminationRecord

JIUZHU = str(Path(sys.executable).parent / "jiuzhu")
_DET = DeterminationRecord.__table__


def _cli(*args: str, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "JIUZHU_DATA_DIR")}
    return subprocess.run([JIUZHU, "db", *args], env={**base, **env}, capture_output=True, text=True, timeout=120)


def _copy_row(db, created_at: dt.datetime, **changes) -> str:
    """A stored determination again, under a new id and time (as if recorded then)."""
    with writing(db) as conn, conn.begin():
        row = dict(conn.execute(select(_DET).limit(1)).mappings().one())
        row.update({"id": str(uuid.uuid4()), "created_at": created_at, "idempotency_key": None, **changes})
        conn.execute(_DET.insert(), [row])
    return row["id"]


def _where(db) -> dict[str, str]:
    """Each row's id -> the partition holding it."""
    with db.connect() as conn:
        return dict(conn.execute(text("SELECT id, tableoid::regclass::text FROM determinations")).all())


def _month_partition(created: dt.datetime) -> str:
    return partitions.partition_name(created.astimezone(dt.UTC).date().replace(day=1))


def test_partitioning_keeps_every_row_in_its_month_and_the_service_works_on(pg_settings, engine):
    url = pg_settings.database_url
    with TestClient(create_app(pg_settings, rules=engine)) as client:
        db = client.app.state.db
        key = auth(client.app.state.repo.create_key("窗口", Role.CASEWORKER)[1])
        first = client.post("/v1/evaluate", json=HOUSEHOLD, headers={**key, "Idempotency-Key": "k-1"}).json()
        old = _copy_row(db, dt.datetime(2025, 3, 15, 23, 59, tzinfo=dt.UTC))
        before = _where(db)

        done = _cli("partition-determinations", "--months-ahead", "2", DATABASE_URL=url)
        assert done.returncode == 0, done.stderr
        assert "复制 2 条记录" in done.stdout and "partitioned: 2 rows" in done.stdout

        with db.connect() as conn:
            assert partitions.is_partitioned(conn)
            made = partitions.partitions(conn)
        today = dt.datetime.now(dt.UTC).date().replace(day=1)
        ahead = partitions.next_month(partitions.next_month(today))
        assert {"determinations_202503", "determinations_202504", partitions.partition_name(ahead), partitions.DEFAULT} <= set(
            made
        )
        with db.connect() as conn:
            rows = dict(conn.execute(text("SELECT id, created_at FROM determinations")).all())
        after = _where(db)
        assert set(after) == set(before) and after[old] == "determinations_202503"
        assert all(after[i] == _month_partition(rows[i]) for i in rows)

        # The same replica, without a restart: records, reads and retries as before.
        new = client.post("/v1/evaluate", json=HOUSEHOLD, headers=key)
        assert new.status_code == 200, new.text
        assert _where(db)[new.json()["determination_id"]] == partitions.partition_name(today)
        assert client.get(f"/v1/determinations/{old}", headers=key).status_code == 200
        assert (
            client.get(f"/v1/determinations/{first['determination_id']}", headers=key).json()["determination_id"]
            == first["determination_id"]
        )
        history = client.get(f"/v1/households/{HOUSEHOLD['household_id']}/determinations", headers=key).json()["determinations"]
        assert {first["determination_id"], old, new.json()["determination_id"]} <= {d["determination_id"] for d in history}
        again = client.post("/v1/evaluate", json=HOUSEHOLD, headers={**key, "Idempotency-Key": "k-1"})
        assert (
            again.headers.get("idempotent-replayed") == "true" and again.json()["determination_id"] == first["determination_id"]
        )
        assert len(_where(db)) == 3

    second = _cli("partition-determinations", DATABASE_URL=url)
    assert second.returncode == 0 and "已是按月分区表" in second.stdout


def test_a_month_without_its_partition_goes_to_the_default_and_moves_when_the_month_is_added(pg_settings, engine):
    today = dt.date(2026, 12, 3)
    with TestClient(create_app(pg_settings, rules=engine)) as client:
        key = auth(client.app.state.repo.create_key("窗口", Role.WINDOW)[1])
        assert client.post("/v1/evaluate", json=HOUSEHOLD, headers=key).status_code == 200
    db = make_engine(pg_settings)
    try:
        with pytest.raises(partitions.PartitionError):
            partitions.add_partitions(db, 1, today=today)  # not partitioned yet: says which command first
        assert partitions.partition_determinations(db, months_ahead=0, today=today) is not None
        late = _copy_row(db, dt.datetime(2027, 6, 10, tzinfo=dt.UTC))
        assert _where(db)[late] == partitions.DEFAULT  # recorded, not refused, though no one made June's partition

        made = partitions.add_partitions(db, 6, today=today)
        assert made == [f"determinations_2027{m:02d}" for m in range(1, 7)]
        assert _where(db)[late] == "determinations_202706"
        assert partitions.add_partitions(db, 6, today=today) == []

        # Idempotency keys stay unique within a month: each partition has its own unique index.
        with db.connect() as conn:
            caller = conn.execute(select(_DET.c.caller_key_id)).scalar()
        _copy_row(db, dt.datetime(2027, 1, 5, tzinfo=dt.UTC), idempotency_key="h" * 64, caller_key_id=caller)
        with pytest.raises(IntegrityError):
            _copy_row(db, dt.datetime(2027, 1, 20, tzinfo=dt.UTC), idempotency_key="h" * 64, caller_key_id=caller)
    finally:
        db.dispose()


def test_sqlite_is_left_as_it_is(tmp_path):
    assert _cli("upgrade", JIUZHU_DATA_DIR=str(tmp_path)).returncode == 0
    db = make_engine(Settings(data_dir=tmp_path))
    with db.connect() as conn:
        before = conn.execute(text("SELECT sql FROM sqlite_master WHERE tbl_name = 'determinations' ORDER BY name")).all()
    for args in (["partition-determinations"], ["add-partitions", "--months", "2"]):
        r = _cli(*args, JIUZHU_DATA_DIR=str(tmp_path))
        assert r.returncode == 2 and "PostgreSQL" in r.stderr and "SQLite" in r.stderr
    with db.connect() as conn:
        assert conn.execute(text("SELECT sql FROM sqlite_master WHERE tbl_name = 'determinations' ORDER BY name")).all() == before
    db.dispose()

"""Monitoring storage on SQLite and on PostgreSQL (when JIUZHU_TEST_DATABASE_URL names a server, as in CI)."""

from __future__ import annotations

import os
import uuid

import pytest
from helpers import WORKER, household

PG_URL = os.environ.get("JIUZHU_TEST_DATABASE_URL")


@pytest.fixture(params=["sqlite", "postgresql"])
def settings(request, tmp_path, monkeypatch):
    from api.core.config import Settings, normalise_database_url

    for var in ("JIUZHU_WRITER_SOCKET", "JIUZHU_MONITOR_SOCKET"):
        monkeypatch.delenv(var, raising=False)
    if request.param == "sqlite":
        yield Settings(data_dir=tmp_path)
        return
    if not PG_URL:
        pytest.skip("JIUZHU_TEST_DATABASE_URL not set (CI sets it; see .ci/run)")
    import psycopg

    name = "jiuzhu_mon_" + uuid.uuid4().hex[:12]
    base = normalise_database_url(PG_URL).replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield Settings(database_url=base.rpartition("/")[0] + "/" + name)
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_events_households_and_alerts_round_trip(settings, monitor_engine):
    from api.monitoring.repo import MonitorRepository
    from api.monitoring.service import MonitorService, Request
    from api.storage.db import make_engine, migrate
    from engine.monitor.events import parse_event
    from engine.monitor.monitor import Monitor

    db = make_engine(settings)
    migrate(db)
    try:
        svc = MonitorService(Monitor(engine=monitor_engine), MonitorRepository(db))
        evs = [
            {"household_id": "H-1", "type": "register", "date": "2021-08-01", "household": household(WORKER), "event_id": "a"},
            {"household_id": "H-1", "type": "job_lost", "date": "2021-09-01", "member": "p1", "event_id": "b"},
            {"household_id": "H-1", "type": "job_lost", "date": "2021-09-01", "member": "p1", "event_id": "b"},
        ]
        req = Request([parse_event(e) for e in evs], "k_test", "测试")
        svc.handle([req])
        assert req.error is None
        assert [r["status"] for r in req.results] == ["recorded", "recorded", "duplicate"]
        alert_ids = [a["alert_id"] for r in req.results[:2] for a in r["alerts"]]
        assert alert_ids and all(alert_ids)

        # a fresh service (a restart) rebuilds the session from the stored events and continues
        svc2 = MonitorService(Monitor(engine=monitor_engine), MonitorRepository(db))
        req2 = Request([parse_event({"household_id": "H-1", "type": "job_found", "date": "2021-10-01", "member": "p1", "monthly": "3000", "event_id": "c"})], "k_test", "测试")
        svc2.handle([req2])
        assert req2.results[0]["seq"] == 3 and svc2.monitor.pool.rebuilds == 1
        repo = svc2.repo
        assert repo.count_events() == 3
        assert repo.household("H-1").summary[0]["status"] == "ineligible"
        # the same alerts again are not stored twice
        again = repo.alerts(household_id="H-1", limit=100)
        assert repo.add_alerts([]) == 0
        row, problem = repo.set_status(alert_ids[0], "closed", "已处理", "测试")
        assert problem is None and row.status == "closed"
        assert repo.set_status(alert_ids[0], "acknowledged", None, "测试")[1] == "closed"
        assert len({a.key for a in again}) == len(again)
        assert {a.locality for a in repo.alerts(locality="210000", limit=100)} == {"210102"}
    finally:
        db.dispose()


def test_a_small_session_pool_gives_the_same_alerts(tmp_path, monitor_engine):
    """Households interleaved in one transaction, with room for only 2 live sessions: the others are
    rebuilt from stored (and not yet committed) events, and raise exactly the alerts of a large pool."""
    import orjson

    from api.core.config import Settings
    from api.monitoring.repo import MonitorRepository
    from api.monitoring.service import MonitorService, Request
    from api.storage.db import make_engine, migrate
    from engine.monitor.events import parse_event
    from engine.monitor.monitor import Monitor
    from engine.monitor.synth import generate

    lines = [orjson.loads(x) for x in generate(6, 120, seed=3)]
    results = []
    for capacity, where in ((2, "small"), (100, "large")):
        db = make_engine(Settings(data_dir=tmp_path / where))
        migrate(db)
        svc = MonitorService(Monitor(engine=monitor_engine, capacity=capacity), MonitorRepository(db))
        req = Request([parse_event(e) for e in lines], "k", "测试")
        svc.handle([req])
        assert req.error is None
        results.append([(r["status"], [a["key"] for a in r.get("alerts", [])]) for r in req.results])
        if capacity == 2:
            assert svc.monitor.pool.rebuilds > 0
        db.dispose()
    assert results[0] == results[1]

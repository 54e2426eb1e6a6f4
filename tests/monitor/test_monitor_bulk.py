"""POST /v1/events/bulk: events validated and scoped whole, then appended to the Redis streams at once,
and applied by a consumer under the sender's key and scope; the lag gauge of /metrics. Against a real
redis-server (JIUZHU_TEST_REDIS_URL, flushed here) and a real database (SQLite; PostgreSQL too when
JIUZHU_TEST_DATABASE_URL is set)."""

from __future__ import annotations

import os
import uuid

import orjson
import pytest
import sqlalchemy as sa
from helpers import WORKER, household

from api.auth.keys import Role, Scope
from api.core.config import normalise_database_url

pytest.importorskip("fastapi")
REDIS_URL = os.environ.get("JIUZHU_TEST_REDIS_URL")
PG_URL = os.environ.get("JIUZHU_TEST_DATABASE_URL")
pytestmark = pytest.mark.skipif(not REDIS_URL, reason="JIUZHU_TEST_REDIS_URL not set: no redis-server to test against (see .ci/redis.sh)")

ID_NUMBER = "210102198003011236"  # a made-up resident ID number (its check digit valid)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        yield ""
        return
    if not PG_URL:
        pytest.skip("JIUZHU_TEST_DATABASE_URL not set (CI sets it; see .ci/run)")
    import psycopg

    base = normalise_database_url(PG_URL).replace("postgresql+psycopg://", "postgresql://")
    name = "jiuzhu_test_" + uuid.uuid4().hex[:12]
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{base.rpartition('/')[0]}/{name}"
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _client(tmp_path, monkeypatch, engine, monitor_engine, database_url="", **settings):
    from fastapi.testclient import TestClient

    import api.processes.monitor as mp
    from api.app import create_app
    from api.core.config import Settings
    from api.monitoring.repo import MonitorRepository
    from api.monitoring.service import MonitorService
    from engine.monitor.monitor import Monitor

    for var in ("JIUZHU_WRITER_SOCKET", "JIUZHU_MONITOR_SOCKET"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(mp, "make_service", lambda s, db: MonitorService(Monitor(engine=monitor_engine), MonitorRepository(db)))
    s = Settings(**{"data_dir": tmp_path, "database_url": database_url, "auto_migrate": True, "redis_url": REDIS_URL or "", **settings})
    return TestClient(create_app(s, rules=engine))


@pytest.fixture
def app(tmp_path, monkeypatch, engine, monitor_engine, database_url, redis_db):
    with _client(tmp_path, monkeypatch, engine, monitor_engine, database_url, stream_partitions=3, metrics_public=True) as c:
        yield c


def _keys(client) -> dict:
    repo = client.app.state.repo
    out = {role.value: {"Authorization": f"Bearer {repo.create_key(role.value, role)[1]}"} for role in Role}
    out["window_210102"] = {"Authorization": f"Bearer {repo.create_key('和平区窗口', Role.WINDOW, Scope.of('210102'))[1]}"}
    return out


def _register(hid: str, locality: str = "210102", **extra) -> dict:
    h = household(WORKER, locality=locality)
    for m in h["members"]:
        m["hukou_locality"] = locality
    return {"household_id": hid, "type": "register", "date": "2021-08-01", "household": h, "event_id": f"{hid}-r", **extra}


def _job_lost(hid: str, n: int = 1) -> dict:
    return {"household_id": hid, "type": "job_lost", "date": "2021-09-01", "member": "p1", "event_id": f"{hid}-e{n}"}


def _jsonl(events: list[dict]) -> bytes:
    return b"".join(orjson.dumps(e) + b"\n" for e in events)


def _entries(r) -> int:
    return sum(r.xlen(k) for k in r.keys("jiuzhu:monitor:events:[0-9]*"))


def _consume(client):
    """Drain the streams into the app's database, as `jiuzhu monitor consume` does."""
    from api.monitoring.repo import MonitorRepository
    from api.monitoring.service import MonitorService
    from api.streams import bus
    from engine.monitor.monitor import Monitor

    state = client.app.state
    service = MonitorService(Monitor(engine=state.monitor.service.monitor.engine), MonitorRepository(state.db, state.id_secret))
    try:
        return bus.consume(bus.connect(REDIS_URL), service, "monitor", "t", block_ms=100, until_empty=True)
    finally:
        service.close()


def _stored(client) -> list[tuple]:
    with client.app.state.db.connect() as c:
        return sorted(c.execute(sa.text("SELECT household_id, event_key, type, caller_key_id FROM monitor_events")).all())


def test_bulk_events_are_published_then_applied_under_the_senders_key(app, redis_db):
    keys = _keys(app)
    events = [_register("LN-B-1"), _register("LN-B-2"), _job_lost("LN-B-1"), _register("LN-B-3"), _job_lost("LN-B-2")]
    r = app.post("/v1/events/bulk", content=_jsonl(events), headers={**keys["window"], "Content-Type": "application/x-ndjson"})
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["count"] == 5 and body["partitions"] == 3 and sum(body["published"].values()) == 5
    assert len(set(body["ids"])) == 5 and _entries(redis_db) == 5
    # a household's events in one partition, in the order sent
    where = {}
    for ev, sid in zip(events, body["ids"], strict=True):
        k = next(k for k in range(3) if redis_db.xrange(f"jiuzhu:monitor:events:{k}", sid, sid))
        where.setdefault(ev["household_id"], set()).add(k)
    assert all(len(v) == 1 for v in where.values())

    lag = app.get("/metrics").text
    assert "jiuzhu_monitor_stream_lag{" in lag
    assert sum(float(line.rsplit(" ", 1)[1]) for line in lag.splitlines() if line.startswith("jiuzhu_monitor_stream_lag{")) == 5

    stats = _consume(app)
    assert (stats.recorded, stats.refused, stats.duplicates) == (5, 0, 0)
    stored = _stored(app)
    assert [(h, k, t) for h, k, t, _ in stored] == sorted((e["household_id"], e["event_id"], e["type"]) for e in events)
    assert len({c for *_, c in stored}) == 1 and stored[0][3] != "stream"  # recorded under the window key
    # acknowledged entries are trimmed: Redis holds what is not yet acknowledged, nothing more
    assert _entries(redis_db) == 0
    lag = app.get("/metrics").text
    assert all(line.endswith(" 0.0") for line in lag.splitlines() if line.startswith("jiuzhu_monitor_stream_lag{"))

    # the same file again: delivered, answered as duplicates, nothing applied twice
    again = app.post("/v1/events/bulk", json=events, headers=keys["admin"])
    assert again.status_code == 202
    stats = _consume(app)
    assert (stats.recorded, stats.duplicates) == (0, 5) and _stored(app) == stored


def test_one_bad_event_publishes_none_and_is_named(app, redis_db):
    keys = _keys(app)
    bad = {**_job_lost("LN-B-1"), "date": "2021-02-30"}
    r = app.post("/v1/events/bulk", content=_jsonl([_register("LN-B-1"), _job_lost("LN-B-1"), bad, {"type": "birth"}]), headers=keys["window"])
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")
    fields = {e["field"] for e in r.json()["errors"]}
    assert "line 3.date" in fields and "line 4.household_id" in fields
    r = app.post("/v1/events/bulk", json=[_register("LN-B-1"), bad], headers=keys["window"])
    assert r.status_code == 422 and [e["field"] for e in r.json()["errors"]] == ["[1].date"]
    r = app.post("/v1/events/bulk", content=_jsonl([_register("LN-B-1")]) + b"{not json\n", headers=keys["window"])
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "line 2"
    assert app.post("/v1/events/bulk", content=b"", headers=keys["window"]).status_code == 422
    assert _entries(redis_db) == 0


def test_only_window_and_admin_keys_publish_in_bulk(app, redis_db):
    keys = _keys(app)
    body = [_register("LN-B-1")]
    assert app.post("/v1/events/bulk", json=body).status_code == 401
    for role in ("caseworker", "policy"):
        r = app.post("/v1/events/bulk", json=body, headers=keys[role])
        assert r.status_code == 403, role
    assert _entries(redis_db) == 0
    assert app.post("/v1/events/bulk", json=body, headers=keys["admin"]).status_code == 202


def test_the_keys_locality_scope_holds_for_every_event(app, redis_db):
    keys = _keys(app)
    scoped = keys["window_210102"]
    # a register outside the scope: refused before anything is published, naming its event
    r = app.post("/v1/events/bulk", json=[_register("LN-B-1"), _register("LN-B-2", locality="220102")], headers=scoped)
    assert r.status_code == 403 and [e["field"] for e in r.json()["errors"]] == ["[1].household.locality"]
    assert _entries(redis_db) == 0
    # a household registered elsewhere (by a national key): published, then refused by the consumer
    assert app.post("/v1/events/bulk", json=[_register("LN-JL-1", locality="220102")], headers=keys["admin"]).status_code == 202
    _consume(app)
    before = _stored(app)
    r = app.post("/v1/events/bulk", json=[_register("LN-B-1"), _job_lost("LN-JL-1"), _job_lost("LN-B-1")], headers=scoped)
    assert r.status_code == 202
    stats = _consume(app)
    assert (stats.recorded, stats.refused) == (2, 1)
    after = _stored(app)
    assert [x for x in after if x[0] == "LN-JL-1"] == [x for x in before if x[0] == "LN-JL-1"]
    assert {x[1] for x in after if x[0] == "LN-B-1"} == {"LN-B-1-r", "LN-B-1-e1"}


def test_resident_id_numbers_never_reach_redis(app, redis_db):
    keys = _keys(app)
    hid = f"LN{ID_NUMBER}"
    r = app.post("/v1/events/bulk", json=[_register(hid, event_id=f"r-{ID_NUMBER}")], headers=keys["window"])
    assert r.status_code == 202
    raw = b"".join(v for k in redis_db.keys("jiuzhu:monitor:events:[0-9]*") for _id, f in redis_db.xrange(k) for v in f.values())
    assert ID_NUMBER.encode() not in raw and ID_NUMBER[:6].encode() in raw
    _consume(app)
    # stored as POST /v1/events stores it: the same pseudonym
    single = app.post("/v1/events", json=_job_lost(hid), headers=keys["window"])
    assert single.status_code == 200 and single.json()["seq"] == 2
    assert ID_NUMBER not in orjson.dumps(_stored(app), default=str).decode()


def test_a_request_over_the_bound_or_the_backlog_publishes_nothing(tmp_path, monkeypatch, engine, monitor_engine, redis_db):
    with _client(tmp_path, monkeypatch, engine, monitor_engine, stream_partitions=1, stream_max_unacked=5, max_bulk_events=6) as app:
        keys = _keys(app)
        seven = [_register(f"LN-B-{i}") for i in range(7)]
        r = app.post("/v1/events/bulk", json=seven, headers=keys["window"])
        assert r.status_code == 413 and r.json()["errors"][0]["code"] == "too_many"
        r = app.post("/v1/events/bulk", json=seven[:6], headers=keys["window"])  # 6 in one partition: never under 5
        assert r.status_code == 413 and "请分批" in r.json()["errors"][0]["message"]
        assert app.post("/v1/events/bulk", json=seven[:4], headers=keys["window"]).status_code == 202
        # the consumers are behind: 4 + 2 > 5, refused whole until they catch up
        r = app.post("/v1/events/bulk", json=seven[4:6], headers=keys["window"])
        assert r.status_code == 503 and r.headers["retry-after"] == "5"
        assert r.json()["errors"][0]["code"] == "backpressure" and _entries(redis_db) == 4
        assert _consume(app).recorded == 4
        assert app.post("/v1/events/bulk", json=seven[4:6], headers=keys["window"]).status_code == 202


def test_without_redis_the_bulk_endpoint_says_so(tmp_path, monkeypatch, engine, monitor_engine, redis_db):
    with _client(tmp_path, monkeypatch, engine, monitor_engine, redis_url="") as app:
        h = _keys(app)["window"]
        r = app.post("/v1/events/bulk", json=[_register("LN-B-1")], headers=h)
        assert r.status_code == 503 and "JIUZHU_REDIS_URL" in r.json()["errors"][0]["message"]
        # what is wrong with the body is said first
        r = app.post("/v1/events/bulk", json=[{}], headers=h)
        assert r.status_code == 422 and r.json()["errors"][0]["field"].startswith("[0].")


def test_an_event_without_an_id_is_not_applied_twice_when_delivered_again(app, redis_db, monkeypatch):
    from api.streams import bus

    keys = _keys(app)
    events = [_register("LN-B-1"), _job_lost("LN-B-1")]
    for ev in events:
        del ev["event_id"]
    assert app.post("/v1/events/bulk", json=events, headers=keys["window"]).status_code == 202
    acknowledge = bus._acknowledge

    def dies(*_a):  # the consumer dies after committing, before acknowledging
        raise ConnectionError("killed")

    monkeypatch.setattr(bus, "_acknowledge", dies)
    with pytest.raises(ConnectionError):
        _consume(app)
    assert len(_stored(app)) == 2
    monkeypatch.setattr(bus, "_acknowledge", acknowledge)
    stats = _consume(app)  # the same entries, claimed and delivered again
    assert stats.claimed == 2 and (stats.recorded, stats.duplicates) == (0, 2)
    stored = _stored(app)
    assert len(stored) == 2 and all(k.startswith("redis-") for _h, k, _t, _c in stored)


def test_an_event_stored_between_the_batch_look_up_and_its_commit_is_not_applied_twice(app, redis_db, monkeypatch):
    from api.streams import bus

    keys = _keys(app)
    assert app.post("/v1/events", json=_register("LN-B-1"), headers=keys["window"]).status_code == 200
    assert app.post("/v1/events/bulk", json=[_register("LN-B-1"), _job_lost("LN-B-1")], headers=keys["window"]).status_code == 202
    real, calls = bus.stored_keys, []

    def stale(repo, pairs):  # the first look-up misses the register stored by POST /v1/events (as if just before it)
        calls.append(1)
        return set() if len(calls) == 1 else real(repo, pairs)

    monkeypatch.setattr(bus, "stored_keys", stale)
    stats = _consume(app)
    assert len(calls) >= 2 and stats.retries >= 1  # the commit refused the stale batch; applied again
    assert (stats.recorded, stats.duplicates) == (1, 1)
    assert [k for _h, k, _t, _c in _stored(app)] == ["LN-B-1-e1", "LN-B-1-r"]

"""Access bounded by locality: keys scoped 210102, 210000, 620722 and national over every endpoint.

In scope works; out of scope is refused without leaking existence: a stored record outside
the scope gets the same answer as an id that was never stored. A locality the caller wrote
itself (evaluate, register) is refused with 403 naming the field. Run on SQLite and PostgreSQL.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt

import orjson
import pytest
from http_helpers import auth
from simulation_helpers import EXAMPLE_REFORM, POPULATION, configured, make_populations

from api.auth.keys import Role, Scope
from api.core import examples
from api.simulations.store import SimulationStore
from api.storage.ids import uuid7
from engine.batch import synth
from engine.policies.localities import is_valid

SCOPES = ("210102", "210000", "620722", "100000")
# the oracle, written out rather than computed by the code under test
_PREFIX = {"210102": "210102", "210000": "21", "620722": "620722", "100000": ""}


def covers(scope: str, locality: str) -> bool:
    return locality.startswith(_PREFIX[scope])


# one household per locality: a district of Shenyang, one of Dalian (in Liaoning, not in 210102), one in Gansu
PLACES = {"LN-A": "210102", "LN-B": "210202", "GS-C": "620722"}
GANSU = "gansu-demo"


def _household(hid: str, locality: str) -> dict:
    hh = copy.deepcopy(examples.HOUSEHOLD)
    hh["household_id"] = hid
    hh["locality"] = locality
    for m in hh["members"]:
        m["hukou_locality"] = locality
    return hh


def _monitored(hid: str, locality: str) -> dict:
    # a worker on a low wage: registering raises a 低保边缘 alert (tests/monitor/helpers.py WORKER)
    return {
        "household_id": hid,
        "locality": locality,
        "area": "urban",
        "members": [
            {"id": "p1", "relation": "head", "birth_date": "1980-03-01", "hukou_locality": locality, "supporters": "able",
             "employed": True, "incomes": [{"type": "wage", "monthly": "1400.00"}]},
            {"id": "p2", "relation": "child", "birth_date": "2012-06-01", "hukou_locality": locality, "supporters": "able",
             "schooling": "compulsory"},
        ],
        "assets": {"financial": "2000.00", "vehicles": [], "properties": 1},
    }  # fmt: skip


def _register(hid: str, locality: str, event_id: str) -> dict:
    return {
        "household_id": hid,
        "type": "register",
        "date": "2021-08-01",
        "household": _monitored(hid, locality),
        "event_id": event_id,
    }


@pytest.fixture(scope="module")
def monitor_engine():
    from engine.monitor.monitor import Monitor

    return Monitor().engine


@pytest.fixture(scope="module")
def scope_populations(tmp_path_factory):
    root = make_populations(tmp_path_factory.mktemp("populations"))
    synth.write(root / GANSU, "620722", 20, seed=5)
    return root


@pytest.fixture
def world(db_settings, engine, monitor_engine, scope_populations, tmp_path, monkeypatch):
    """An app holding records, monitored households, alerts and jobs in three localities; a key per scope."""
    from fastapi.testclient import TestClient

    import api.processes.monitor as mp
    from api.app import create_app
    from api.monitoring.repo import MonitorRepository
    from api.monitoring.service import MonitorService
    from engine.monitor.monitor import Monitor

    monkeypatch.delenv("JIUZHU_MONITOR_SOCKET", raising=False)
    monkeypatch.setattr(
        mp, "make_service", lambda settings, db: MonitorService(Monitor(engine=monitor_engine), MonitorRepository(db))
    )
    # no simulation runs: jobs stay queued (only who may see them matters here)
    settings = configured(db_settings, scope_populations, tmp_path, simulation_concurrency=0)
    with TestClient(create_app(dataclasses.replace(settings, key_cache_seconds=0), rules=engine)) as client:
        repo = client.app.state.repo
        keys = {s: auth(repo.create_key(f"管理员{s}", Role.ADMIN, Scope.of(s))[1]) for s in SCOPES}
        national = keys["100000"]
        dets, alerts, jobs = {}, {}, {}
        for hid, loc in PLACES.items():
            assert is_valid(loc)
            r = client.post("/v1/evaluate", json=_household(hid, loc), headers=national)
            assert r.status_code == 200, r.text
            dets[hid] = r.json()["determination_id"]
            r = client.post("/v1/events", json=_register(hid, loc, f"{hid}-reg"), headers=national)
            assert r.status_code == 200, r.text
            assert r.json()["alerts"], f"registering {hid} raised no alert"
            alerts[hid] = r.json()["alerts"][0]["alert_id"]
        store = SimulationStore(client.app.state.db)
        for s in ("210102", "210000", "620722"):
            jobs[s] = _stored_job(store, s)
        client.keys, client.dets, client.alerts, client.jobs = keys, dets, alerts, jobs
        yield client


def _stored_job(store: SimulationStore, scope: str) -> str:
    job_id = uuid7()
    info = {"name": "示例", "description": "", "changes": [], "rules": [], "effective": None}
    store.submit(
        {
            "id": job_id, "status": "queued", "population": POPULATION, "as_of": None, "reform_name": "示例",
            "reform_yaml": EXAMPLE_REFORM.read_text(encoding="utf-8"), "rules_json": "{}",
            "reform_info_json": orjson.dumps(info).decode(), "caller_key_id": "k_test", "caller_name": "测试",
            "caller_role": "policy", "caller_scope": scope, "idempotency_key": None, "request_hash": "0" * 64,
            "created_at": dt.datetime.now(dt.UTC), "attempts": 0, "households_total": None,
        }
    )  # fmt: skip
    return job_id


def _same_refusal(hidden, unknown) -> None:
    """An answer about a record outside the scope, and about one that does not exist, are one answer."""
    assert hidden.status_code == unknown.status_code
    assert hidden.json() == unknown.json()


SCOPE_IDS = pytest.mark.parametrize("scope", SCOPES)


@SCOPE_IDS
def test_evaluate_and_batch_only_within_the_scope(world, scope):
    h = world.keys[scope]
    batch = [_household(hid, loc) for hid, loc in PLACES.items()]
    for hid, loc in PLACES.items():
        r = world.post("/v1/evaluate", json=_household(hid, loc), headers=h)
        if covers(scope, loc):
            assert r.status_code == 200, r.text
        else:
            assert r.status_code == 403
            (err,) = r.json()["errors"]
            assert (
                err["field"] == "locality" and err["code"] == "out_of_scope" and err["message_zh"] == "该地区不在您的权限范围内"
            )
    r = world.post("/v1/evaluate/batch", json={"households": batch}, headers=h)
    assert r.status_code == 200
    results = r.json()["results"]
    for res, loc in zip(results, PLACES.values(), strict=True):
        if covers(scope, loc):
            assert res["status"] == "answered"
        else:
            assert res["status"] == "refused" and [e["field"] for e in res["errors"]] == ["locality"]
    assert r.json()["answered"] == sum(covers(scope, loc) for loc in PLACES.values())


@SCOPE_IDS
def test_determinations_and_histories_only_within_the_scope(world, scope):
    h = world.keys[scope]
    unknown = world.get(f"/v1/determinations/{uuid7()}", headers=h)
    assert unknown.status_code == 404
    nobody = world.get("/v1/households/NOBODY/determinations", headers=h).json()
    for hid, loc in PLACES.items():
        r = world.get(f"/v1/determinations/{world.dets[hid]}", headers=h)
        history = world.get(f"/v1/households/{hid}/determinations", headers=h).json()
        if covers(scope, loc):
            assert r.status_code == 200 and r.json()["locality"] == loc
            assert [d["determination_id"] for d in history["determinations"]] == [world.dets[hid]]
        else:
            _same_refusal(r, unknown)
            assert {**history, "household_id": "NOBODY"} == nobody


@SCOPE_IDS
def test_events_only_for_households_within_the_scope(world, scope):
    h = world.keys[scope]
    for hid, loc in PLACES.items():
        ev = {"household_id": hid, "type": "job_lost", "date": "2021-09-01", "member": "p1", "event_id": f"{hid}-{scope}"}
        r = world.post("/v1/events", json=ev, headers=h)
        # the national key's register event, sent again: a duplicate would return its stored alerts
        again = world.post("/v1/events", json=_register(hid, loc, f"{hid}-reg"), headers=h)
        if covers(scope, loc):
            assert r.status_code == 200 and r.json()["status"] == "recorded", r.text
            assert again.status_code == 200 and again.json()["status"] == "duplicate"
        else:
            unknown = world.post("/v1/events", json={**ev, "household_id": "NOBODY"}, headers=h)
            assert unknown.status_code == r.status_code == 422
            assert orjson.dumps(r.json()).replace(hid.encode(), b"NOBODY") == orjson.dumps(unknown.json())
            assert again.status_code == 403 and again.json()["errors"][0]["field"] == "household.locality"
            assert "alerts" not in again.text
    # a batch: each event on its own, the same way
    evs = [{"household_id": hid, "type": "job_found", "date": "2021-10-01", "member": "p1"} for hid in PLACES]
    r = world.post("/v1/events", json={"events": evs}, headers=h)
    assert r.status_code == 200
    assert [x["status"] for x in r.json()["results"]] == [
        "recorded" if covers(scope, loc) else "refused" for loc in PLACES.values()
    ]
    # registering a new household: only where the key may act
    for loc in ("210102", "210202", "620722"):
        r = world.post("/v1/events", json=_register(f"NEW-{scope}-{loc}", loc, f"new-{scope}-{loc}"), headers=h)
        assert r.status_code == (200 if covers(scope, loc) else 403)


@SCOPE_IDS
def test_alerts_only_within_the_scope(world, scope):
    h = world.keys[scope]
    listed = world.get("/v1/alerts", params={"limit": 500}, headers=h).json()["alerts"]
    assert listed and all(covers(scope, a["locality"]) for a in listed)
    everything = world.get("/v1/alerts", params={"limit": 500}, headers=world.keys["100000"]).json()["alerts"]
    assert [a["alert_id"] for a in listed] == [a["alert_id"] for a in everything if covers(scope, a["locality"])]
    for loc in ("620722", "210000"):
        asked = world.get("/v1/alerts", params={"locality": loc}, headers=h).json()["alerts"]
        assert {a["alert_id"] for a in asked} == {
            a["alert_id"] for a in everything if covers(loc, a["locality"]) and covers(scope, a["locality"])
        }
    unknown_id = uuid7()
    for hid, loc in PLACES.items():
        alert_id = world.alerts[hid]
        got = world.get(f"/v1/alerts/{alert_id}", headers=h)
        ack = world.post(f"/v1/alerts/{alert_id}/acknowledge", json={"note": "已知悉"}, headers=h)
        close = world.post(f"/v1/alerts/{alert_id}/close", json={"note": "已处理"}, headers=h)
        if covers(scope, loc):
            assert got.status_code == ack.status_code == close.status_code == 200
        else:
            _same_refusal(got, world.get(f"/v1/alerts/{unknown_id}", headers=h))
            _same_refusal(ack, world.post(f"/v1/alerts/{unknown_id}/acknowledge", json={"note": "已知悉"}, headers=h))
            _same_refusal(close, world.post(f"/v1/alerts/{unknown_id}/close", json={"note": "已处理"}, headers=h))
            untouched = world.get(f"/v1/alerts/{alert_id}", headers=world.keys["100000"]).json()
            assert untouched["notes"] == [] and untouched["status"] in ("open", "acknowledged", "closed")


@SCOPE_IDS
def test_populations_and_simulations_only_within_the_scope(world, scope):
    h = world.keys[scope]
    offered = {p["name"]: p["locality"] for p in world.get("/v1/populations", headers=h).json()["populations"]}
    expected = {POPULATION: "210000", GANSU: "620722"}
    assert {n: loc for n, loc in offered.items() if n in expected} == {
        n: loc for n, loc in expected.items() if covers(scope, loc)
    }
    reform = EXAMPLE_REFORM.read_text(encoding="utf-8")
    for name, loc in expected.items():
        r = world.post("/v1/simulations", json={"population": name, "reform": reform}, headers=h)
        if covers(scope, loc):
            assert r.status_code == 202, r.text
        else:
            unknown = world.post("/v1/simulations", json={"population": "no-such", "reform": reform}, headers=h)
            assert r.status_code == unknown.status_code == 422
            assert r.text.replace(name, "no-such") == unknown.text
    visible = {s["simulation_id"] for s in world.get("/v1/simulations", params={"limit": 200}, headers=h).json()["simulations"]}
    unknown = world.get(f"/v1/simulations/{uuid7()}", headers=h)
    unknown_file = world.get(f"/v1/simulations/{uuid7()}/files/report.html", headers=h)
    for job_scope, job_id in world.jobs.items():
        r = world.get(f"/v1/simulations/{job_id}", headers=h)
        if covers(scope, job_scope):
            assert r.status_code == 200 and job_id in visible
        else:
            _same_refusal(r, unknown)
            _same_refusal(world.get(f"/v1/simulations/{job_id}/files/report.html", headers=h), unknown_file)
            assert job_id not in visible


@SCOPE_IDS
def test_keys_are_managed_only_within_the_scope(world, scope):
    h = world.keys[scope]
    listed = world.get("/v1/keys", headers=h).json()
    assert listed and all(covers(scope, k["locality"]) for k in listed)
    assert {k["locality"] for k in listed} == {s for s in SCOPES if covers(scope, s)}
    for s in SCOPES:
        r = world.post("/v1/keys", json={"name": "窗口", "role": "window", "locality": s}, headers=h)
        if covers(scope, s):
            assert r.status_code == 201 and r.json()["locality"] == s
        else:
            assert r.status_code == 403 and r.json()["errors"][0]["field"] == "locality"
    inherited = world.post("/v1/keys", json={"name": "窗口", "role": "window"}, headers=h)
    assert inherited.status_code == 201 and inherited.json()["locality"] == scope
    national_key = next(k for k in world.get("/v1/keys", headers=world.keys["100000"]).json() if k["name"] == "管理员100000")
    r = world.delete(f"/v1/keys/{national_key['key_id']}", headers=h)
    if scope == "100000":
        return
    _same_refusal(r, world.delete("/v1/keys/k_nosuchkey00", headers=h))
    assert world.get("/v1/keys", headers=world.keys["100000"]).status_code == 200  # still valid


def test_a_key_scope_must_be_a_known_locality_code(world):
    h = world.keys["100000"]
    for bad in ("210199", "21010", "abcdef", "999999"):
        r = world.post("/v1/keys", json={"name": "窗口", "role": "window", "locality": bad}, headers=h)
        assert r.status_code == 422, bad
        assert r.json()["errors"][0]["field"] == "locality"


def test_keys_from_before_the_scope_migration_stay_national(db_settings):
    from sqlalchemy import text

    from api.auth.keys import hash_key, new_key
    from api.storage.db import make_engine, migrate
    from api.storage.repository import Repository

    db = make_engine(db_settings)
    try:
        migrate(db, "0003_simulations")
        secret = new_key()
        with db.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO api_keys (id, name, role, prefix, secret_hash, created_at)"
                    " VALUES ('k_old', '旧密钥', 'window', 'jzk_old', :h, :t)"
                ),
                {"h": hash_key(secret), "t": dt.datetime.now(dt.UTC)},
            )
        migrate(db)
        caller = Repository(db).caller_for_hash(hash_key(secret))
        assert caller is not None and caller.scope == Scope("100000") and caller.scope.national
        assert [k.locality for k in Repository(db).list_keys()] == ["100000"]
    finally:
        db.dispose()


def test_the_monitor_process_of_jiuzhu_serve_applies_the_callers_scope(tmp_path):
    """Under `jiuzhu serve` events go to the monitor process over a socket: the scope goes with them."""
    import httpx
    from served import Served

    served = Served(tmp_path, workers=1)
    try:
        admin = auth(served.admin_key())
        served.wait_ready()
        with httpx.Client(base_url=served.url, timeout=60) as c:
            made = c.post("/v1/keys", json={"name": "和平区", "role": "caseworker", "locality": "210102"}, headers=admin)
            assert made.status_code == 201, made.text
            scoped = auth(made.json()["key"])
            assert c.post("/v1/events", json=_register("GS-C", "620722", "gs-reg"), headers=admin).status_code == 200
            ev = {"household_id": "GS-C", "type": "job_lost", "date": "2021-09-01", "member": "p1"}
            hidden = c.post("/v1/events", json=ev, headers=scoped)
            unknown = c.post("/v1/events", json={**ev, "household_id": "NOBODY"}, headers=scoped)
            assert hidden.status_code == unknown.status_code == 422
            assert hidden.text.replace("GS-C", "NOBODY") == unknown.text
            assert c.post("/v1/events", json=_register("GS-D", "620722", "gs-d"), headers=scoped).status_code == 403
            assert c.post("/v1/events", json=_register("LN-A", "210102", "ln-a"), headers=scoped).status_code == 200
    finally:
        served.stop()


def test_a_malformed_locality_from_a_scoped_key_is_a_validation_error_not_a_scope_refusal(world):
    h = world.keys["210102"]
    for body in (_household("X-1", "21010x"), {"households": [_household("X-1", "21010x")]}):
        r = world.post("/v1/evaluate" + ("/batch" if "households" in body else ""), json=body, headers=h)
        errors = r.json()["errors"] if r.status_code == 422 else r.json()["results"][0]["errors"]
        assert "out_of_scope" not in {e["code"] for e in errors}
    r = world.post("/v1/events", json=_register("X-1", "21010x", "x-1"), headers=h)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "household.locality"
    assert r.json()["errors"][0]["code"] != "out_of_scope"

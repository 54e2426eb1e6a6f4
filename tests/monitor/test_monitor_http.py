"""POST /v1/events and the alerts endpoints, through the app (embedded monitor)."""

from __future__ import annotations

import pytest
from helpers import WORKER, household

from api.auth.keys import ROLE_PERMISSIONS, Permission, Role

pytest.importorskip("fastapi")


@pytest.fixture
def app_client(tmp_path, monkeypatch, engine, monitor_engine):
    from fastapi.testclient import TestClient

    import api.processes.monitor as mp
    from api.app import create_app
    from api.core.config import Settings
    from api.monitoring.repo import MonitorRepository
    from api.monitoring.service import MonitorService
    from engine.monitor.monitor import Monitor

    for var in ("JIUZHU_WRITER_SOCKET", "JIUZHU_MONITOR_SOCKET"):
        monkeypatch.delenv(var, raising=False)
    # the monitor's evaluator is loaded once for the session (the app would load its own on the first event)
    monkeypatch.setattr(mp, "make_service", lambda settings, db: MonitorService(Monitor(engine=monitor_engine), MonitorRepository(db)))
    with TestClient(create_app(Settings(data_dir=tmp_path), rules=engine)) as c:
        yield c


@pytest.fixture
def keys(app_client):
    repo = app_client.app.state.repo
    return {role.value: {"Authorization": f"Bearer {repo.create_key(role.value, role)[1]}"} for role in Role}


def _register(hid: str = "LN-M-1", **extra) -> dict:
    return {"household_id": hid, "type": "register", "date": "2021-08-01", "household": household(WORKER), **extra}


def test_window_and_caseworker_submit_events_policy_reads_alerts_only(app_client, keys):
    assert Permission.SUBMIT_EVENTS in ROLE_PERMISSIONS[Role.WINDOW] and Permission.SUBMIT_EVENTS in ROLE_PERMISSIONS[Role.CASEWORKER]
    assert Permission.SUBMIT_EVENTS not in ROLE_PERMISSIONS[Role.POLICY]
    assert app_client.post("/v1/events", json=_register(), headers=keys["policy"]).status_code == 403
    assert app_client.post("/v1/events", json=_register(), headers=keys["window"]).status_code == 200
    assert app_client.post("/v1/events", json=_register("LN-M-2"), headers=keys["caseworker"]).status_code == 200
    assert app_client.post("/v1/events", json=_register("LN-M-3")).status_code == 401
    assert app_client.get("/v1/alerts", headers=keys["policy"]).status_code == 200
    a = app_client.get("/v1/alerts", headers=keys["policy"]).json()["alerts"][0]
    assert app_client.post(f"/v1/alerts/{a['alert_id']}/acknowledge", headers=keys["window"]).status_code == 403
    assert app_client.post(f"/v1/alerts/{a['alert_id']}/acknowledge", headers=keys["caseworker"]).status_code == 200


def test_an_event_is_recorded_then_answered_with_its_alerts(app_client, keys):
    h = keys["caseworker"]
    r = app_client.post("/v1/events", json=_register(event_id="reg-1"), headers=h)
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "recorded" and body["seq"] == 1 and body["evaluated"] is True
    assert [a["rule"] for a in body["alerts"]] == ["monitor.may_qualify_edge"]
    r = app_client.post("/v1/events", json={"household_id": "LN-M-1", "type": "job_lost", "date": "2021-09-01", "member": "p1", "event_id": "e-2"}, headers=h)
    found = {a["rule"]: a for a in r.json()["alerts"]}["monitor.may_qualify_dibao"]
    assert found["alert_id"] and found["level"] == "orange" and found["determinations"]["after"]["programs"][0]["status"] == "eligible"
    stored = app_client.get(f"/v1/alerts/{found['alert_id']}", headers=h).json()
    assert stored["status"] == "open" and stored["text"] == found["text"] and stored["key"] == found["key"]
    repo = app_client.app.state.monitor.service.repo
    assert [e.event_key for e in repo.events_of("LN-M-1")] == ["reg-1", "e-2"]


def test_a_repeated_event_id_is_not_applied_twice(app_client, keys):
    h = keys["window"]
    app_client.post("/v1/events", json=_register(), headers=h)
    ev = {"household_id": "LN-M-1", "type": "job_lost", "date": "2021-09-01", "member": "p1", "event_id": "e-2"}
    first = app_client.post("/v1/events", json=ev, headers=h).json()
    again = app_client.post("/v1/events", json=ev, headers=h).json()
    assert again["status"] == "duplicate" and again["seq"] == first["seq"]
    assert {a["key"] for a in again["alerts"]} == {a["key"] for a in first["alerts"]}
    repo = app_client.app.state.monitor.service.repo
    assert repo.count_events() == 2


def test_bad_events_are_422_naming_the_field_and_nothing_is_recorded(app_client, keys):
    h = keys["window"]
    r = app_client.post("/v1/events", json={"events": [_register(), {"household_id": "LN-M-1", "type": "job_lost", "date": "2021-13-01"}]}, headers=h)
    assert r.status_code == 422
    fields = {e["field"]: e for e in r.json()["errors"]}
    assert set(fields) == {"events[1].date", "events[1].member"}
    assert fields["events[1].member"]["message_zh"] and fields["events[1].member"]["message_en"]
    assert app_client.get("/v1/alerts", headers=h).json()["alerts"] == []
    unknown = app_client.post("/v1/events", json={"household_id": "NOPE", "type": "tick", "date": "2021-09-01"}, headers=h)
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["code"] == "unknown_household"


def test_a_batch_answers_each_event_in_order(app_client, keys):
    h = keys["window"]
    evs = [
        _register(),
        {"household_id": "LN-M-1", "type": "hospitalisation", "date": "2021-09-01", "member": "p2", "cost": "2000"},
        {"household_id": "LN-M-1", "type": "hospitalisation", "date": "2021-10-01", "member": "p2", "cost": "2000"},
        {"household_id": "LN-M-1", "type": "death", "date": "2021-10-02", "member": "p7"},
    ]
    body = app_client.post("/v1/events", json={"events": evs}, headers=h).json()
    assert (body["count"], body["recorded"], body["refused"]) == (4, 3, 1)
    assert [r["status"] for r in body["results"]] == ["recorded", "recorded", "recorded", "refused"]
    assert body["results"][3]["errors"][0]["field"] == "events[3].member"
    assert [a["rule"] for a in body["results"][2]["alerts"]] == ["monitor.hospitalised_twice"]


def test_alerts_filter_page_acknowledge_and_close(app_client, keys):
    h = keys["caseworker"]
    app_client.post("/v1/events", json=_register(), headers=h)
    app_client.post("/v1/events", json={**_register("GS-M-1"), "household": {**household(WORKER), "locality": "620722", "area": "rural",
                    "members": [{**m, "hukou_locality": "620722"} for m in WORKER["members"]]}}, headers=h)
    app_client.post("/v1/events", json={"household_id": "LN-M-1", "type": "job_lost", "date": "2021-09-01", "member": "p1"}, headers=h)
    ln = app_client.get("/v1/alerts", params={"locality": "210000", "status": "open"}, headers=h).json()["alerts"]
    assert ln and {a["locality"] for a in ln} == {"210102"}
    assert {a["household_id"] for a in app_client.get("/v1/alerts", params={"locality": "620722"}, headers=h).json()["alerts"]} <= {"GS-M-1"}
    page = app_client.get("/v1/alerts", params={"limit": 1}, headers=h).json()
    assert len(page["alerts"]) == 1 and page["next_before"]
    rest = app_client.get("/v1/alerts", params={"limit": 50, "before": page["next_before"]}, headers=h).json()["alerts"]
    assert page["alerts"][0]["alert_id"] not in {a["alert_id"] for a in rest}
    aid = ln[0]["alert_id"]
    ack = app_client.post(f"/v1/alerts/{aid}/acknowledge", json={"note": "已电话联系"}, headers=h).json()
    assert ack["status"] == "acknowledged" and ack["notes"][0]["note"] == "已电话联系"
    assert app_client.post(f"/v1/alerts/{aid}/close", json={}, headers=h).status_code == 422
    closed = app_client.post(f"/v1/alerts/{aid}/close", json={"note": "已协助申请低保"}, headers=h).json()
    assert closed["status"] == "closed" and [n["status"] for n in closed["notes"]] == ["acknowledged", "closed"]
    assert app_client.post(f"/v1/alerts/{aid}/acknowledge", headers=h).status_code == 409
    assert aid not in {a["alert_id"] for a in app_client.get("/v1/alerts", params={"status": "open"}, headers=h).json()["alerts"]}
    assert app_client.get("/v1/alerts/nope", headers=h).status_code == 404


def test_id_numbers_are_masked_in_stored_events(app_client, keys):
    from engine.schema.model import id_check_digit

    idn = "21010219800301001" + id_check_digit("21010219800301001")
    rec = household(WORKER)
    rec["members"][0]["id_number"] = idn
    ev = {"household_id": "LN-M-1", "type": "register", "date": "2021-08-01", "household": rec, "note": f"身份证 {idn}"}
    assert app_client.post("/v1/events", json=ev, headers=keys["window"]).status_code == 200
    repo = app_client.app.state.monitor.service.repo
    (row,) = repo.events_of("LN-M-1")
    assert idn not in row.payload_json and "210102********" in row.payload_json
    assert idn not in repo.household_row("LN-M-1").record_json

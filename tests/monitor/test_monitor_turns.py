"""A large events request does not hold the monitor: requests are applied in slices, round-robin,
each still committed whole (api/monitoring/turns.py)."""

from __future__ import annotations

import threading

import orjson
import pytest
from helpers import WORKER, household

from api.core.config import Settings
from api.monitoring.repo import MonitorRepository
from api.monitoring.service import MonitorService, Request
from api.monitoring.turns import MonitorTurns
from api.storage.db import make_engine, migrate
from engine.monitor.events import parse_event
from engine.monitor.monitor import Monitor
from engine.monitor.synth import generate


def _register(hid: str, **extra) -> dict:
    return {"household_id": hid, "type": "register", "date": "2021-08-01", "household": household(WORKER), **extra}


@pytest.fixture
def service(tmp_path, monitor_engine):
    db = make_engine(Settings(data_dir=tmp_path))
    migrate(db)
    svc = MonitorService(Monitor(engine=monitor_engine), MonitorRepository(db))
    yield svc
    svc.close()
    db.dispose()


def _request(events: list[dict], caller: str = "k_big") -> Request:
    return Request([parse_event(e) for e in events], caller, caller)


def _run(turns: MonitorTurns, answered: list, limit: int = 10_000) -> None:
    for _ in range(limit):
        if not turns.busy:
            return
        answered.extend(token for _req, token in turns.turn())
    raise AssertionError("turns did not finish")


def test_a_single_event_sent_during_a_thousand_registrations_is_answered_first(service):
    turns = MonitorTurns(service, slice_events=20)
    big = _request([_register(f"BIG-{i:04d}", event_id=f"big-{i}") for i in range(1000)])
    turns.add(big, "big")
    answered: list[str] = []
    answered.extend(t for _r, t in turns.turn())  # the large request has begun: its first slice is applied
    assert big.done == 20 and not answered

    small = _request([_register("OTHER-1", event_id="other-1")], "k_window")
    turns.add(small, "small")
    answered.extend(t for _r, t in turns.turn())
    assert answered == ["small"]  # answered on the next turn, committed ...
    assert small.results[0]["status"] == "recorded"
    assert service.repo.count_events() == 1  # ... alone: none of the large request is committed yet
    assert big.done == 40

    _run(turns, answered)
    assert answered == ["small", "big"]
    assert big.error is None and [r["status"] for r in big.results] == ["recorded"] * 1000
    assert [r["index"] for r in big.results] == list(range(1000))
    assert service.repo.count_events() == 1001
    assert service.transactions == 2  # the large request committed whole, in one transaction


def test_a_request_for_a_household_a_larger_one_is_changing_waits_for_its_commit(service):
    turns = MonitorTurns(service, slice_events=5)
    events = [_register("H-1", event_id="r")]
    events += [
        {
            "household_id": "H-1",
            "type": "income_change",
            "date": "2021-09-01",
            "member": "p1",
            "income_type": "wage",
            "monthly": str(1400 + i),
            "event_id": f"i{i}",
        }
        for i in range(20)
    ]
    big = _request(events)
    turns.add(big, "big")
    answered: list[str] = []
    answered.extend(t for _r, t in turns.turn())
    same = _request(
        [{"household_id": "H-1", "type": "job_lost", "date": "2021-10-01", "member": "p1", "event_id": "late"}], "k_window"
    )
    other = _request([_register("H-2", event_id="h2")], "k_window")
    turns.add(same, "same")
    turns.add(other, "other")
    _run(turns, answered)
    # the other household's event does not wait; the same household's waits for the large request's commit
    assert answered == ["other", "big", "same"]
    assert same.results[0]["status"] == "recorded"
    assert same.results[0]["seq"] == 22  # applied after the 21 events of the large request


def test_interleaved_turns_give_the_alerts_of_one_request_applied_whole(tmp_path, monitor_engine):
    """A synthetic stream of 6 households as one request, applied 7 events a turn while other callers'
    requests come and go, with room for 2 live sessions: the same results and alerts as applied whole."""
    lines = [orjson.loads(x) for x in generate(6, 120, seed=3)]
    results = []
    for where in ("whole", "turns"):
        db = make_engine(Settings(data_dir=tmp_path / where))
        migrate(db)
        svc = MonitorService(Monitor(engine=monitor_engine, capacity=2), MonitorRepository(db))
        req = _request(lines)
        if where == "whole":
            svc.handle([req])
        else:
            turns = MonitorTurns(svc, slice_events=7)
            turns.add(req, "stream")
            answered: list[str] = []
            for i in range(40):
                turns.add(_request([_register(f"X-{i}", event_id=f"x{i}")], "k_other"), f"x{i}")
                answered.extend(t for _r, t in turns.turn())
            _run(turns, answered)
            assert answered.index("stream") > answered.index("x0")
        assert req.error is None
        results.append([(r["status"], r.get("seq"), [a["key"] for a in r.get("alerts", [])]) for r in req.results])
        svc.close()
        db.dispose()
    assert results[0] == results[1]


@pytest.fixture
def app_client(tmp_path, monkeypatch, engine, monitor_engine):
    from fastapi.testclient import TestClient

    import api.processes.monitor as mp
    from api.app import create_app

    for var in ("JIUZHU_WRITER_SOCKET", "JIUZHU_MONITOR_SOCKET"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(
        mp, "make_service", lambda settings, db: MonitorService(Monitor(engine=monitor_engine), MonitorRepository(db))
    )
    with TestClient(create_app(Settings(data_dir=tmp_path), rules=engine)) as c:
        yield c


def test_over_http_another_client_is_answered_while_a_large_request_is_applied(app_client):
    from api.auth.keys import Role

    repo = app_client.app.state.repo
    window = {"Authorization": f"Bearer {repo.create_key('窗口', Role.WINDOW)[1]}"}
    caseworker = {"Authorization": f"Bearer {repo.create_key('经办', Role.CASEWORKER)[1]}"}
    assert app_client.post("/v1/events", json=_register("WARM-1"), headers=caseworker).status_code == 200
    monitor = app_client.app.state.monitor
    finished: list[str] = []
    big_answer: list = []

    members = [{**WORKER["members"][1], "id": f"c{j}"} for j in range(10)]  # a larger household: more to apply
    big_household = household(WORKER, members=[WORKER["members"][0], *members])

    def send_big() -> None:
        body = {"events": [_register(f"BIG-{i:04d}", event_id=f"big-{i}", household=big_household) for i in range(1000)]}
        big_answer.append(app_client.post("/v1/events", json=body, headers=window))
        finished.append("big")

    t = threading.Thread(target=send_big)
    t.start()
    for _ in range(3000):  # until the large request is being applied
        turns = getattr(monitor, "turns", None)  # (without turns: give it half a second to reach the monitor)
        if (turns is not None and any(r.done for r, _t in list(turns.active))) or (turns is None and _ > 50):
            break
        threading.Event().wait(0.01)
    r = app_client.post("/v1/events", json=_register("OTHER-1", event_id="o1"), headers=caseworker)
    finished.append("small")
    t.join(300)
    assert r.status_code == 200 and r.json()["status"] == "recorded"
    assert finished == ["small", "big"]
    assert big_answer[0].status_code == 200 and big_answer[0].json()["recorded"] == 1000

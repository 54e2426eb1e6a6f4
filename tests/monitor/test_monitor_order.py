"""Events are applied in date order whatever order they arrive in, and what the monitor keeps of a
household stays bounded however many events arrive (api/monitoring/order.py, engine/monitor/apply.py).

On SQLite and PostgreSQL (when JIUZHU_TEST_DATABASE_URL names a server)."""

from __future__ import annotations

import datetime as dt
import random
import tempfile
from pathlib import Path

import orjson
from helpers import WORKER, household
from hypothesis import HealthCheck, Phase, assume, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from test_monitor_http import app_client, keys  # noqa: F401  (the app with its embedded monitor, API keys)
from test_monitor_storage import settings  # noqa: F401  (the sqlite / postgresql fixture)

from api.core.config import Settings
from api.monitoring.repo import MonitorRepository
from api.monitoring.service import MonitorService, Request, _Applied
from api.storage.db import make_engine, migrate
from engine.monitor.events import parse_event
from engine.monitor.monitor import Monitor
from engine.monitor.synth import _stream
from engine.schema.model import InputError
from engine.schema.validate import parse

HID = "H-ORD"


def _service(db, monitor_engine) -> MonitorService:
    return MonitorService(Monitor(engine=monitor_engine), MonitorRepository(db))


def _send(svc: MonitorService, *events: dict) -> list[dict]:
    req = Request([parse_event(e) for e in events], "k_test", "测试")
    svc.handle([req])
    assert req.error is None, req.error
    return req.results


def _ev(type_: str, date: str, eid: str, **fields) -> dict:
    return {"household_id": HID, "type": type_, "date": date, "event_id": eid, **fields}


def _final(db) -> dict:
    """What is stored of the household: its row, its open alerts, and the events' order of application."""
    repo = MonitorRepository(db)
    row = repo.household_row(HID)
    alerts = {
        a.key: (a.rule, a.text, a.member_id, a.event_key, a.event_date, orjson.loads(a.determinations_json))
        for a in repo.alerts(household_id=HID, limit=10_000)
        if a.status != "closed"
    }
    return {
        "seq": row.seq,
        "record": orjson.loads(row.record_json),
        "summary": orjson.loads(row.summary_json),
        "meta": orjson.loads(row.meta_json),
        "alerts": alerts,
    }


def test_a_late_income_change_does_not_overwrite_a_newer_one(settings, monitor_engine):  # noqa: F811
    db = make_engine(settings)
    migrate(db)
    try:
        svc = _service(db, monitor_engine)
        _send(svc, _ev("register", "2021-08-01", "r", household=household(WORKER)))
        _send(svc, _ev("income_change", "2021-09-01", "sep", member="p1", income_type="wage", monthly="3000.00"))
        [late] = _send(svc, _ev("income_change", "2021-08-15", "aug", member="p1", income_type="wage", monthly="800.00"))
        state = svc.repo.household(HID)
        p1 = state.record["members"][0]
        assert p1["incomes"] == [{"type": "wage", "monthly": "3000.00"}]  # the 09-01 one, the newer
        assert late["status"] == "recorded" and late["replayed"] == 1
        assert state.record["as_of"] == "2021-09-01" and state.seq == 3
        assert state.figures["monthly_income"] == 300000

        # a restart rebuilds the session from the stored operations, in date order, and carries on alike
        svc2 = _service(db, monitor_engine)
        [nxt] = _send(svc2, _ev("income_change", "2021-10-01", "oct", member="p1", income_type="wage", monthly="3000.00"))
        assert nxt["status"] == "recorded" and "replayed" not in nxt and svc2.monitor.pool.rebuilds == 1
        assert svc2.repo.household(HID).record["members"][0]["incomes"] == [{"type": "wage", "monthly": "3000.00"}]

        # an event that a later stored one contradicts is refused, and nothing changes
        _send(svc2, _ev("school_left", "2021-09-10", "left", member="p2"))
        before = _final(db)
        [bad] = _send(svc2, _ev("member_moved_out", "2021-08-20", "out2", member="p2"))
        assert bad["status"] == "refused" and bad["errors"][0]["code"] == "conflicts_with_later_event"
        assert bad["errors"][0]["field"] == "date"
        assert _final(db) == before
    finally:
        db.dispose()


def test_alerts_follow_the_date_order(settings, monitor_engine):  # noqa: F811
    """An alert raised again keeps its id; one the events no longer raise in date order is withdrawn
    (closed by the monitor, with a note), and opened again when a later replay raises it again."""
    db = make_engine(settings)
    migrate(db)
    try:
        svc = _service(db, monitor_engine)
        repo = svc.repo
        _send(svc, _ev("register", "2021-08-01", "r", household=household(WORKER)))
        # 人均 700 -> 300 on 09-01: income halved
        [sep] = _send(svc, _ev("income_change", "2021-09-01", "sep", member="p1", income_type="wage", monthly="600.00"))
        [halved] = [a for a in sep["alerts"] if a["rule"] == "monitor.income_halved"]
        # a late hospitalisation changes nothing of it: the same alert, the same id, still open
        [h] = _send(svc, _ev("hospitalisation", "2021-08-10", "hosp", member="p1", cost="900.00"))
        assert h["replayed"] == 1
        assert [a.id for a in repo.alerts(household_id=HID, rule="monitor.income_halved", limit=10)] == [halved["alert_id"]]
        assert repo.alert(halved["alert_id"]).status == "open"
        # a late transfer income of 08-20 (人均 1,700, then 1,300 on 09-01): no halving any more
        [aug] = _send(svc, _ev("income_change", "2021-08-20", "aug", member="p2", income_type="transfer", monthly="2000.00"))
        assert aug["replayed"] == 1
        row = repo.alert(halved["alert_id"])
        assert row.status == "closed"
        note = orjson.loads(row.notes_json)[-1]
        assert note["by"] == "jiuzhu-monitor" and note["withdrawn"] and "aug" in note["note"]
        assert not [a for a in repo.alerts(household_id=HID, status="open", limit=100) if a.rule == "monitor.income_halved"]
        # the transfer ends on 08-25 (late again): 700 then 300, halved again: the same alert reopened
        [end] = _send(svc, _ev("income_change", "2021-08-25", "end", member="p2", income_type="transfer", monthly="0.00"))
        assert end["replayed"] == 1
        row = repo.alert(halved["alert_id"])
        assert row.status == "open" and orjson.loads(row.notes_json)[-1]["status"] == "open"
        # (and 08-25's 700 is half of 08-20's 1,700: an alert of its own)
        assert sorted(a.event_key for a in repo.alerts(household_id=HID, rule="monitor.income_halved", status="open", limit=10)) == ["end", "sep"]
        # the same late event again: a duplicate, nothing changes
        ids = {a.key: (a.id, a.status) for a in repo.alerts(household_id=HID, limit=100)}
        [dup] = _send(svc, _ev("income_change", "2021-08-25", "end", member="p2", income_type="transfer", monthly="0.00"))
        assert dup["status"] == "duplicate"
        assert {a.key: (a.id, a.status) for a in repo.alerts(household_id=HID, limit=100)} == ids
    finally:
        db.dispose()


_ORDER_FREE = {"birth", "death", "member_moved_in", "member_moved_out"}  # whether these apply depends on order


def _history(seed: int, count: int, ties: int) -> list[dict]:
    rng = random.Random(seed)
    events = [e for e in _stream(rng, HID, count, dt.date(2021, 1, 1), dt.date(2023, 6, 30)) if e["type"] not in _ORDER_FREE]
    for _ in range(ties):  # some events on the same day (ties: the order they arrived in)
        i = rng.randrange(1, len(events))
        j = max(1, i - 1)
        events[i]["date"] = events[j]["date"]
    return events


def _run(tmp: Path, monitor_engine, events: list[dict], chunks: random.Random | None = None) -> tuple[dict, list, dict]:
    """Send ``events`` one per request, or (``chunks``) in requests of random sizes: a late event then
    also meets events of its own transaction, not yet committed."""
    db = make_engine(Settings(data_dir=tmp))
    migrate(db)
    try:
        svc = _service(db, monitor_engine)
        results, i = [], 0
        while i < len(events):
            n = chunks.randint(1, 6) if chunks is not None else 1
            results += _send(svc, *events[i : i + n])
            i += n
        refused = [r for r in results if r["status"] == "refused"]
        final = _final(db)
        parsed = parse(final["record"])
        outline = svc.monitor.engine.outline(parsed)
        # a restart, then one more event: the session rebuilt from the stored operations matches
        svc2 = _service(db, monitor_engine)
        [after] = _send(svc2, _ev("tick", "2024-06-01", "tick-end"))
        tick = sorted((a["key"], a["text"]) for a in after["alerts"])
        return {**final, "outline": outline, "tick": tick}, refused, {"rebuilds": svc2.monitor.pool.rebuilds}
    finally:
        db.dispose()


def _applicable(monitor_engine, events: list[dict]) -> list[dict]:
    """The events that apply when sent in this order (a synthetic stream has a few that do not)."""
    mon, state, kept = Monitor(engine=monitor_engine), None, []
    for raw in events:
        try:
            state = mon.process(parse_event(raw), state).state
        except InputError:
            continue
        kept.append(raw)
    mon.pool.clear()
    return kept


@hsettings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.reuse, Phase.generate])
@given(seed=st.integers(0, 2**32 - 1), count=st.integers(3, 25), ties=st.integers(0, 4), shuffle=st.integers(0, 2**32 - 1))
def test_any_arrival_order_ends_as_the_date_order(monitor_engine, seed, count, ties, shuffle):
    # in date order (ties: the order they arrive in, a stable sort), the events that apply
    in_order = _applicable(monitor_engine, sorted(_history(seed, count, ties), key=lambda e: e["date"]))
    # the same events arriving in a random order (the registration first: nothing applies before it)
    rest = in_order[1:]
    random.Random(shuffle).shuffle(rest)
    arrival = [in_order[0], *rest]
    in_order = sorted(arrival, key=lambda e: e["date"])  # ties keep their arrival order
    with tempfile.TemporaryDirectory() as a:
        expected, refused, _ = _run(Path(a), monitor_engine, in_order)
    assume(not refused)  # a tie reordered may make one inapplicable (an income of a job not yet found...)
    with tempfile.TemporaryDirectory() as b:
        got, refused, _ = _run(Path(b), monitor_engine, arrival, random.Random(shuffle) if shuffle % 2 else None)
    # an event sent before one it depends on is refused alike in any order (never here: no births or moves)
    assert not refused
    assert got["record"] == expected["record"]
    assert got["summary"] == expected["summary"]
    assert got["meta"] == expected["meta"]
    assert got["seq"] == expected["seq"]
    assert got["outline"] == expected["outline"]
    assert got["alerts"] == expected["alerts"]
    assert got["tick"] == expected["tick"]


def test_an_emergency_every_other_day_for_two_years_is_never_refused(settings, monitor_engine):  # noqa: F811
    """A chronically ill member and a household hit again and again: 400 events, each adding an item
    that 临时救助 reads. The record keeps only what the rules can still read."""
    db = make_engine(settings)
    migrate(db)
    try:
        svc = _service(db, monitor_engine)
        _send(svc, _ev("register", "2021-01-01", "r", household=household(WORKER)))
        day = dt.date(2021, 1, 2)
        batch = []
        for i in range(400):
            if i % 3 == 0:
                batch.append(_ev("disaster", day.isoformat(), f"e{i}", loss="1200.00", cause="fire"))
            elif i % 3 == 1:
                batch.append(_ev("illness_diagnosed", day.isoformat(), f"e{i}", member="p1", cost="3000.00"))
            else:
                batch.append(_ev("accident", day.isoformat(), f"e{i}", loss="800.00"))
            if i % 5 != 4:
                day += dt.timedelta(days=2)  # every fifth event on the same day as the one before
            if len(batch) == 50:
                results = _send(svc, *batch)
                assert [r["status"] for r in results] == ["recorded"] * 50, [r for r in results if r["status"] != "recorded"][:1]
                batch = []
        assert (day - dt.date(2021, 1, 2)).days == 640  # 400 events in 21 months
        rec = svc.repo.household(HID).record
        window = dt.date.fromisoformat(rec["as_of"]) - dt.timedelta(days=31 * 3 + 1)
        assert all(e["date"] >= window.isoformat() for e in rec["events"])
        # at most one item per day and type within the window (3 months, a month counted as 31 days)
        assert len(rec["events"]) <= 31 * 3 + 2
        assert len({(e["date"], e["type"]) for e in rec["events"]}) == len(rec["events"])
        # what 临时救助 reads is what all the events of its window add up to
        start = dt.date.fromisoformat(rec["as_of"]) - dt.timedelta(days=92)
        d, total = dt.date(2021, 1, 2), 0
        for i in range(400):
            if d >= start:
                total += (120000, 300000, 80000)[i % 3]
            if i % 5 != 4:
                d += dt.timedelta(days=2)
        kept = sum(int(e["loss"].replace(".", "")) for e in rec["events"] if e["date"] >= start.isoformat())
        assert kept == total
        # and one more is still taken
        [last] = _send(svc, _ev("hospitalisation", day.isoformat(), "h-last", member="p1", cost="500.00"))
        assert last["status"] == "recorded"
    finally:
        db.dispose()


def test_the_replay_command_applies_in_date_order_as_the_service(tmp_path, monkeypatch, monitor_engine):
    from api.monitoring.replay import replay

    for var in ("DATABASE_URL", "JIUZHU_DATABASE_URL"):
        monkeypatch.delenv(var, raising=False)
    evs = [
        _ev("register", "2021-08-01", "r", household=household(WORKER)),
        _ev("income_change", "2021-09-01", "sep", member="p1", income_type="wage", monthly="3000.00"),
        _ev("income_change", "2021-08-15", "aug", member="p1", income_type="wage", monthly="800.00"),
        _ev("hospitalisation", "2021-08-20", "h1", member="p2", cost="5000.00"),
    ]
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in evs[:2]))
    monkeypatch.setenv("JIUZHU_DATA_DIR", str(tmp_path / "replayed"))
    stats = replay(path, workers=1)
    assert stats.recorded == 2
    # a second file with events dated before the stored ones: applied in date order
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in evs[2:]))
    stats = replay(path, workers=1)
    assert stats.recorded == 2 and stats.refused == 0 and stats.replays == 1  # one replay for both
    # a file whose older events cannot all apply (p2 moved out before the stored 08-20 hospitalisation):
    # applied one by one then, the one that cannot apply refused and named
    more = [
        _ev("member_moved_out", "2021-08-16", "out", member="p2"),
        _ev("job_found", "2021-08-10", "job", member="p1", monthly="500.00"),
    ]
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in more))
    stats = replay(path, workers=1)
    assert (stats.recorded, stats.refused, stats.replays) == (1, 1, 1)
    assert "line 1: date:" in stats.refusals[0] and "h1" in stats.refusals[0]
    replayed = _final(make_engine(Settings(data_dir=tmp_path / "replayed")))

    db = make_engine(Settings(data_dir=tmp_path / "served"))
    migrate(db)
    svc = _service(db, monitor_engine)
    for e in [*evs, more[1], more[0]]:
        _send(svc, e)
    served = _final(db)
    assert replayed["record"]["members"][0]["incomes"] == [{"type": "wage", "monthly": "3000.00"}]
    for k in ("record", "summary", "meta", "seq", "alerts"):
        assert replayed[k] == served[k], k
    db.dispose()


def test_an_event_reported_after_a_daily_tick_applies_only_what_follows_it(tmp_path, monitor_engine):
    """Ticks and hospitalisations change no state: an event dated before them only (the common lag of
    a report after the daily tick) is applied with them again, not the household's whole history."""
    from api.monitoring import order

    db = make_engine(Settings(data_dir=tmp_path / "late"))
    migrate(db)
    ref = make_engine(Settings(data_dir=tmp_path / "ordered"))
    migrate(ref)
    try:
        history = [_ev("register", "2021-08-01", "r", household=household(WORKER))]
        history += [_ev("income_change", f"2021-{m:02d}-01", f"i{m}", member="p1", income_type="wage", monthly=f"{1000 + 100 * m}.00")
                    for m in range(9, 13)]
        history += [_ev("hospitalisation", "2021-12-10", "h", member="p2", cost="2000.00"), _ev("tick", "2021-12-15", "t15")]
        late = _ev("job_lost", "2021-12-05", "lost", member="p1")
        svc = _service(db, monitor_engine)
        for e in history:
            _send(svc, e)
        st_ = svc.repo.household(HID)
        _out, rebuild = order.apply(svc.monitor, parse_event(late), st_, None, lambda: svc._applied(HID, _Applied()))
        assert rebuild is not None and rebuild.applied_again == 3 and rebuild.replayed == 2
        svc.monitor.pool.clear()
        [res] = _send(svc, late)
        assert res["replayed"] == 2
        ordered = _service(ref, monitor_engine)
        for e in sorted([*history, late], key=lambda e: e["date"]):
            _send(ordered, e)
        assert _final(db) == _final(ref)
    finally:
        db.dispose()
        ref.dispose()


def test_what_late_events_may_cost_is_bounded_per_request(tmp_path, monkeypatch, monitor_engine):
    """Each late event applies its household again: a request's late events may apply at most
    REPLAY_BUDGET events again; those beyond are refused, named, and taken in another request."""
    from api.monitoring import order

    monkeypatch.setattr(order, "REPLAY_BUDGET", 20)
    db = make_engine(Settings(data_dir=tmp_path))
    migrate(db)
    try:
        svc = _service(db, monitor_engine)
        _send(svc, _ev("register", "2021-08-01", "r", household=household(WORKER)),
              *[_ev("income_change", f"2021-09-{d:02d}", f"i{d}", member="p1", income_type="wage", monthly=f"{1000 + d}.00")
                for d in range(10, 16)])
        late = [_ev("job_found", f"2021-09-0{d}", f"late{d}", member="p2", monthly="500.00") for d in (2, 3, 4)]
        results = _send(svc, *late)
        # 7 events stored: the first late one applies 8, the second 9; the third would pass 20
        assert [r["status"] for r in results] == ["recorded", "recorded", "refused"]
        assert results[2]["errors"][0]["code"] == "replay_budget" and results[2]["errors"][0]["field"] == "events[2].date"
        [again] = _send(svc, late[2])
        assert again["status"] == "recorded" and again["replayed"] == 6
        assert svc.repo.household(HID).seq == 10
    finally:
        db.dispose()


def test_a_late_event_through_http_with_id_numbers_masked_in_the_stored_ones(app_client, keys):  # noqa: F811
    """POST /v1/events: the stored registration (its ID number masked) is read again for the replay."""
    from engine.schema.model import id_check_digit

    idn = "21010219800301001" + id_check_digit("21010219800301001")
    rec = household(WORKER)
    rec["members"][0]["id_number"] = idn
    h = keys["caseworker"]
    assert app_client.post("/v1/events", json=_ev("register", "2021-08-01", "r", household=rec), headers=h).status_code == 200
    sep = _ev("income_change", "2021-09-01", "sep", member="p1", income_type="wage", monthly="3000.00")
    assert app_client.post("/v1/events", json=sep, headers=h).status_code == 200
    aug = _ev("income_change", "2021-08-15", "aug", member="p1", income_type="wage", monthly="800.00")
    r = app_client.post("/v1/events", json={"events": [aug]}, headers=h)
    assert r.status_code == 200, r.text
    [res] = r.json()["results"]
    assert res["status"] == "recorded" and res["replayed"] == 1 and res["seq"] == 3
    repo = app_client.app.state.monitor.service.repo
    assert repo.household(HID).record["members"][0]["incomes"] == [{"type": "wage", "monthly": "3000.00"}]
    assert idn not in repo.household_row(HID).record_json

"""One bad request never fails another: a group commit whose transaction fails is redone one request
at a time, so that only the request holding the bad value fails (422), on SQLite and PostgreSQL.

Validation refuses every known trigger first (tests/test_input_bounds.py); here the poison is forced
past it, as a crafted row or event, to test the group commit itself (defence in depth).
"""

from __future__ import annotations

import asyncio
import copy
import datetime as dt

import orjson
import pytest
from gmpy2 import mpq

from api.auth.keys import NATIONAL_SCOPE, Caller, Role
from api.core import examples
from api.core.errors import Unrecordable
from api.evaluation.records import build_row, request_hash
from api.monitoring.repo import MonitorRepository
from api.monitoring.service import MonitorService, Request
from api.processes.writer import RemoteWriter
from api.processes.writer import _Server as WriterServer
from api.storage.group_commit import Committer, Job
from engine.monitor.events import parse_event
from engine.monitor.monitor import Monitor
from engine.schema.validate import parse

CALLER = Caller("k_test", "测试", Role.WINDOW, NATIONAL_SCOPE)
VALID = 24


@pytest.fixture(scope="module")
def monitor_engine():
    return Monitor().engine


def _row(engine, hid: str) -> dict:
    hh = copy.deepcopy(examples.HOUSEHOLD)
    hh["household_id"] = hid
    parsed = parse(hh)
    det = engine.evaluate_parsed(parsed)
    return build_row(det, orjson.dumps(det), parsed.raw, request_hash(parsed.raw), CALLER, dt.datetime.now(dt.UTC))


def _poisons(dialect: str) -> list:
    """Ways a row can hold a value the database refuses: an integer beyond 64 bits (both), NUL (PostgreSQL)."""
    out = [("batch_index", 2**70)]
    if dialect == "postgresql":
        out.append(("household_id", "LN\x00-poison"))
    return out


def test_a_poisoned_job_fails_alone_and_the_group_is_recorded(db_client, engine):
    repo = db_client.app.state.repo
    committer = Committer(repo)
    try:
        for column, value in _poisons(repo.engine.dialect.name):
            before = repo.count_determinations()
            jobs = [Job([_row(engine, f"LN-{i}")], None, None) for i in range(VALID)]
            poisoned = _row(engine, "LN-poison")
            poisoned[column] = value
            jobs.insert(VALID // 2, Job([poisoned], None, None))
            committer.commit(jobs)
            bad = jobs.pop(VALID // 2)
            assert isinstance(bad.error, Unrecordable), (column, bad.error)
            assert [j.error for j in jobs] == [None] * VALID
            assert repo.count_determinations() - before == VALID  # every valid job recorded, none lost
    finally:
        committer.close()


def test_the_writer_process_answers_the_poisoned_job_with_unrecordable(db_client, engine):
    repo = db_client.app.state.repo
    committer = Committer(repo)
    try:
        poisoned = _row(engine, "LN-poison")
        poisoned["batch_index"] = 2**70
        items = [(None, i, ([_row(engine, f"LN-{i}")], None, None)) for i in range(3)]
        items.insert(1, (None, 9, ([poisoned], None, None)))

        async def handle():
            return WriterServer(committer).handle(items)

        answers = asyncio.run(handle())
        assert [ok for ok, _ in answers] == [True] * 4
        assert isinstance(answers[1][1], Unrecordable)
        assert [a for _, a in answers[:1] + answers[2:]] == [None] * 3
    finally:
        committer.close()

    # the worker's side raises it, and the route answers 422 (Service.evaluate)
    remote = RemoteWriter.__new__(RemoteWriter)

    async def call(*_args):
        return answers[1][1]

    remote.call = call
    with pytest.raises(Unrecordable):
        asyncio.run(remote.write([]))


def _register(hid: str) -> Request:
    ev = parse_event({"household_id": hid, "type": "register", "date": "2021-08-01", "event_id": f"{hid}-r",
                      "household": copy.deepcopy(_HOUSEHOLD)})
    return Request([ev], CALLER.key_id, CALLER.name)


_HOUSEHOLD = {
    "locality": "210102",
    "area": "urban",
    "members": [{"id": "p1", "relation": "head", "birth_date": "1980-03-01", "hukou_locality": "210102", "supporters": "able",
                 "employed": True, "incomes": [{"type": "wage", "monthly": "1400.00"}]}],
    "assets": {"financial": "2000.00", "vehicles": [], "properties": 1},
}


def _hospital(hid: str, n: int) -> Request:
    ev = parse_event({"household_id": hid, "type": "hospitalisation", "date": "2021-09-01", "member": "p1",
                      "cost": "800.00", "event_id": f"{hid}-h{n}"})
    return Request([ev], CALLER.key_id, CALLER.name)


def test_a_poisoned_monitoring_request_fails_alone(db_client, monitor_engine):
    db = db_client.app.state.db
    repo = MonitorRepository(db)
    svc = MonitorService(Monitor(engine=monitor_engine), repo)
    try:
        hids = [f"M-{i}" for i in range(VALID)]
        regs = [_register(h) for h in hids]
        svc.handle(regs)
        assert {r.results[0]["status"] for r in regs} == {"recorded"}

        # 1. a value the rules engine cannot hold (the 2**64 - 1), processed in the group
        # 2. a value the event table cannot hold (an integer orjson cannot write; NUL in a column on PostgreSQL)
        poisons = []
        rules_poison = _hospital(hids[0], 99)
        rules_poison.events[0].data["cost"] = mpq(18446744073709551615)
        poisons.append(rules_poison)
        json_poison = _hospital(hids[1], 99)
        json_poison.events[0].raw["cost"] = 2**70
        poisons.append(json_poison)
        if db.dialect.name == "postgresql":
            poisons.append(Request(_hospital(hids[2], 98).events, CALLER.key_id, "name\x00"))
        for k, poison in enumerate(poisons):
            events_before = repo.count_events()
            group = [_hospital(h, k) for h in hids]
            group.insert(len(group) // 2, poison)
            svc.handle(group)
            assert poison.error is None and poison.results[0]["status"] == "refused", (k, poison.error, poison.results)
            valid = [r for r in group if r is not poison]
            assert [r.error for r in valid] == [None] * VALID
            assert [r.results[0]["status"] for r in valid] == ["recorded"] * VALID
            assert repo.count_events() - events_before == VALID  # all valid events committed, the poisoned one not
    finally:
        svc.close()

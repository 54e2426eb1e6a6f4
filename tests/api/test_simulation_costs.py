"""What simulations may cost: jobs per caller, a time limit per job, reform checks off the event loop."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import re

import orjson
import pytest
from http_helpers import auth
from simulation_helpers import EXAMPLE_REFORM, POPULATION, configured, make_populations, wait_until

from api.app import create_app
from api.auth.keys import Role
from api.storage.ids import uuid7

CJK = re.compile(r"[\u4e00-\u9fff]")
REFORM = {"name": "低保边缘认定标准调至2倍", "parameters": [{"key": "dibao_edge.multiplier", "value": 2, "from": "2022-01-01"}]}


@pytest.fixture(scope="module")
def populations(tmp_path_factory):
    return make_populations(tmp_path_factory.mktemp("populations"))


def _client(settings, engine):
    from fastapi.testclient import TestClient  # lazily: see conftest.pytest_configure

    app = create_app(settings, rules=engine)
    c = TestClient(app)
    c.__enter__()
    c.keys = {}
    for name in ("政策科", "统计科"):
        row, secret = app.state.repo.create_key(name, Role.POLICY)
        c.keys[name] = (row.id, secret)
    return c


def _running_elsewhere(c, key_id: str) -> None:
    """A job of ``key_id`` running under another worker that is still alive (its heartbeat fresh)."""
    now = dt.datetime.now(dt.UTC)
    row = {
        "id": uuid7(),
        "status": "running",
        "population": POPULATION,
        "as_of": None,
        "reform_name": "示例",
        "reform_yaml": EXAMPLE_REFORM.read_text(encoding="utf-8"),
        "rules_json": "{}",
        "reform_info_json": orjson.dumps(
            {"name": "示例", "description": "", "changes": [], "rules": [], "effective": None}
        ).decode(),
        "caller_key_id": key_id,
        "caller_name": "政策科",
        "caller_role": "policy",
        "idempotency_key": None,
        "request_hash": "0" * 64,
        "created_at": now,
        "attempts": 1,
        "households_total": 300,
        "runner": "elsewhere:1",
        "started_at": now,
        "heartbeat_at": now + dt.timedelta(hours=1),  # not stale during the test
    }
    c.app.state.simulations.submit(row)


def test_a_caller_with_two_jobs_queued_or_running_gets_429_and_another_caller_does_not(
    db_settings, populations, tmp_path, engine
):
    c = _client(configured(db_settings, populations, tmp_path), engine)
    try:
        (first_id, first_key), (_second_id, second_key) = c.keys["政策科"], c.keys["统计科"]
        _running_elsewhere(c, first_id)  # the one slot is taken: what is submitted now stays queued
        r = c.post("/v1/simulations", json={"population": POPULATION, "reform": REFORM}, headers=auth(first_key))
        assert r.status_code == 202, r.text  # one running + this one queued: 2, the limit
        r = c.post("/v1/simulations", json={"population": POPULATION, "reform": REFORM}, headers=auth(first_key))
        assert r.status_code == 429, r.text
        assert int(r.headers["Retry-After"]) > 0
        (err,) = r.json()["errors"]
        assert err["code"] == "too_many_simulations"
        assert CJK.search(err["message_zh"]) and "at most 2" in err["message_en"]
        # another key is not held back by the first one's limit
        r = c.post("/v1/simulations", json={"population": POPULATION, "reform": REFORM}, headers=auth(second_key))
        assert r.status_code == 202, r.text
        listed = c.get("/v1/simulations", headers=auth(second_key)).json()["simulations"]
        assert sorted(j["caller"]["name"] for j in listed) == ["政策科", "政策科", "统计科"]
    finally:
        c.__exit__(None, None, None)


def test_a_simulation_over_its_time_limit_is_stopped_and_failed_with_a_reason(sqlite_settings, populations, tmp_path, engine):
    # the child process alone takes over a second to start: 0.3 s is always over
    c = _client(configured(sqlite_settings, populations, tmp_path, simulation_timeout_seconds=0.3), engine)
    try:
        key = c.keys["政策科"][1]
        r = c.post("/v1/simulations", json={"population": POPULATION, "reform": REFORM}, headers=auth(key))
        assert r.status_code == 202, r.text
        body = wait_until(c, r.headers["Location"], auth(key))
        assert body["status"] == "failed"
        (err,) = body["errors"]
        assert err["code"] == "timeout"
        assert "时限" in err["message_zh"] and "0.3" in err["message_en"]
        assert body["result"] is None
    finally:
        c.__exit__(None, None, None)


def test_reforms_are_read_and_checked_in_another_process(sqlite_settings, populations, tmp_path, engine):
    c = _client(configured(sqlite_settings, populations, tmp_path), engine)
    try:
        key = c.keys["政策科"][1]
        checker = c.app.state.reform_checker
        r = c.post("/v1/simulations", json={"population": POPULATION, "reform": REFORM}, headers=auth(key))
        assert r.status_code == 202, r.text
        assert checker.checks == 2  # the body read, the reform checked: both answered by the checking process
        assert c.portal.call(checker.pid) != os.getpid()
        bad = {
            "population": POPULATION,
            "reform": {"parameters": [{"key": "no.such.parameter", "value": 1, "from": "2022-01-01"}]},
        }
        r = c.post("/v1/simulations", json=bad, headers=auth(key))
        assert r.status_code == 422
        assert r.json()["errors"][0]["field"].startswith("reform.parameters[0]")
    finally:
        c.__exit__(None, None, None)


def test_a_reform_check_over_its_time_limit_is_refused_and_the_next_one_runs(sqlite_settings, populations, tmp_path, engine):
    settings = configured(sqlite_settings, populations, tmp_path, reform_check_timeout_seconds=0.001)
    c = _client(settings, engine)
    try:
        key = c.keys["政策科"][1]
        r = c.post("/v1/simulations", json={"population": POPULATION, "reform": REFORM}, headers=auth(key))
        assert r.status_code == 422, r.text
        assert r.json()["errors"][0]["code"] == "check_timeout"
        c.app.state.reform_checker.timeout = dataclasses.replace(
            settings, reform_check_timeout_seconds=60
        ).reform_check_timeout_seconds
        r = c.post("/v1/simulations", json={"population": POPULATION, "reform": REFORM}, headers=auth(key))
        assert r.status_code == 202, r.text
    finally:
        c.__exit__(None, None, None)

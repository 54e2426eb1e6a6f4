"""Simulation jobs across restarts and worker processes: never left running, never more at once than allowed."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import signal
import subprocess
import time
from pathlib import Path

import orjson
import pytest
from http_helpers import auth
from simulation_helpers import EXAMPLE_REFORM, POPULATION, configured, make_populations, wait_until
from sqlalchemy import update

from api.app import create_app
from api.auth.keys import Role
from api.simulations.store import SimulationStore
from api.storage.db import make_engine, migrate
from api.storage.ids import uuid7
from api.storage.models import SimulationJob

REFORM = {"name": "低保边缘认定标准调至2倍", "parameters": [{"key": "dibao_edge.multiplier", "value": 2, "from": "2022-01-01"}]}


@pytest.fixture(scope="module")
def populations(tmp_path_factory):
    return make_populations(tmp_path_factory.mktemp("populations"))


@pytest.fixture
def settings(sqlite_settings, populations, tmp_path):
    return configured(sqlite_settings, populations, tmp_path, simulation_stale_seconds=2.0)


def _app(settings, engine):
    from fastapi.testclient import TestClient  # lazily: see conftest.pytest_configure

    app = create_app(settings, rules=engine)
    client = TestClient(app)
    client.__enter__()
    client.policy = app.state.repo.create_key("政策科", Role.POLICY)[1]
    return client


def _stored_job(settings, status: str, attempts: int, heartbeat_age: float) -> str:
    """A job as a worker that vanished would have left it: running, its heartbeat old."""
    db = make_engine(settings)
    migrate(db)
    job_id = uuid7()
    now = dt.datetime.now(dt.UTC)
    SimulationStore(db).submit(
        {
            "id": job_id,
            "status": "queued",
            "population": POPULATION,
            "as_of": None,
            "reform_name": "示例",
            "reform_yaml": EXAMPLE_REFORM.read_text(encoding="utf-8"),
            "rules_json": "{}",
            "reform_info_json": orjson.dumps({"name": "示例", "description": "", "changes": [], "rules": [], "effective": None}).decode(),
            "caller_key_id": "k_test",
            "caller_name": "测试",
            "caller_role": "policy",
            "idempotency_key": None,
            "request_hash": "0" * 64,
            "created_at": now,
            "attempts": attempts,
            "households_total": 300,
        }
    )
    with db.begin() as conn:
        conn.execute(
            update(SimulationJob.__table__)
            .where(SimulationJob.__table__.c.id == job_id)
            .values(status=status, runner="gone:1", started_at=now, heartbeat_at=now - dt.timedelta(seconds=heartbeat_age))
        )
    db.dispose()
    return job_id


def test_a_job_left_running_by_a_vanished_worker_is_requeued_and_finished(settings, engine):
    job_id = _stored_job(settings, "running", attempts=1, heartbeat_age=600)
    c = _app(settings, engine)
    try:
        job = wait_until(c, f"/v1/simulations/{job_id}", auth(c.policy))
        assert job["status"] == "done" and job["attempts"] == 2 and job["result"]["households"] == 300
    finally:
        c.__exit__(None, None, None)


def test_a_job_interrupted_twice_fails_instead_of_looping(settings, engine):
    job_id = _stored_job(settings, "running", attempts=2, heartbeat_age=600)
    c = _app(settings, engine)
    try:
        job = wait_until(c, f"/v1/simulations/{job_id}", auth(c.policy))
        assert job["status"] == "failed" and job["errors"][0]["code"] == "interrupted"
        assert "中断" in job["errors"][0]["message_zh"]
    finally:
        c.__exit__(None, None, None)


def test_a_running_job_whose_worker_still_beats_is_left_alone(settings, engine):
    settings = dataclasses.replace(settings, simulation_stale_seconds=60.0)
    job_id = _stored_job(settings, "running", attempts=1, heartbeat_age=0)
    c = _app(settings, engine)
    try:
        time.sleep(1.0)  # several claims later
        job = c.get(f"/v1/simulations/{job_id}", headers=auth(c.policy)).json()
        assert (job["status"], job["attempts"]) == ("running", 1)
    finally:
        c.__exit__(None, None, None)


def test_stopping_the_service_requeues_a_running_job_and_the_next_start_finishes_it(settings, engine):
    c = _app(settings, engine)
    try:
        r = c.post("/v1/simulations", json={"population": POPULATION, "reform": REFORM}, headers=auth(c.policy))
        job_id = r.json()["simulation_id"]
        wait_until(c, r.headers["Location"], auth(c.policy), statuses=("running",), timeout=30)
    finally:
        c.__exit__(None, None, None)  # the lifespan ends: the child is stopped, the job goes back to the queue
    db = make_engine(settings)
    row = SimulationStore(db).get(job_id)._mapping
    db.dispose()
    assert (row["status"], row["attempts"], row["runner"], row["heartbeat_at"]) == ("queued", 0, None, None)
    assert not _children()  # no simulation process outlives its worker
    again = _app(settings, engine)
    try:
        job = wait_until(again, f"/v1/simulations/{job_id}", auth(again.policy))
        assert job["status"] == "done" and job["attempts"] == 1
    finally:
        again.__exit__(None, None, None)


def test_two_workers_on_one_database_run_one_simulation_at_a_time(settings, engine):
    """Two apps stand for two worker processes: the bound is the database's, not each worker's."""
    a, b = _app(settings, engine), _app(settings, engine)
    try:
        ids = []
        for c in (a, b):
            r = c.post("/v1/simulations", json={"population": POPULATION, "reform": REFORM}, headers=auth(c.policy))
            assert r.status_code == 202
            ids.append(r.json()["simulation_id"])
        most = 0
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            jobs = a.get("/v1/simulations", headers=auth(a.policy)).json()["simulations"]
            most = max(most, sum(j["status"] == "running" for j in jobs))
            if all(j["status"] == "done" for j in jobs):
                break
            time.sleep(0.05)
        assert [j["status"] for j in jobs] == ["done"] * 2
        assert most == 1
    finally:
        a.__exit__(None, None, None)
        b.__exit__(None, None, None)


def _children() -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(os.getpid())], capture_output=True, text=True).stdout.split()
    return [int(p) for p in out if "api.simulations.child" in Path(f"/proc/{p}/cmdline").read_text(errors="replace")]


def test_a_simulation_process_that_is_killed_fails_its_job(settings, engine):
    c = _app(settings, engine)
    try:
        r = c.post("/v1/simulations", json={"population": POPULATION, "reform": REFORM}, headers=auth(c.policy))
        wait_until(c, r.headers["Location"], auth(c.policy), statuses=("running",), timeout=30)
        deadline = time.monotonic() + 10
        while not _children() and time.monotonic() < deadline:
            time.sleep(0.02)
        (child,) = _children()
        os.kill(child, signal.SIGKILL)  # as the kernel's out-of-memory killer would
        job = wait_until(c, r.headers["Location"], auth(c.policy))
        assert job["status"] == "failed" and "9" in job["errors"][0]["message_en"], job["errors"]
        assert "意外退出" in job["errors"][0]["message_zh"]
        # the worker carries on: the next job runs
        nxt = c.post("/v1/simulations", json={"population": POPULATION, "reform": REFORM}, headers={**auth(c.policy), "Prefer": "wait=60"})
        assert nxt.status_code == 201 and nxt.json()["status"] == "done"
    finally:
        c.__exit__(None, None, None)


def test_queued_jobs_know_their_place_and_are_taken_oldest_first(settings):
    ids = [_stored_job(settings, "queued", attempts=0, heartbeat_age=0) for _ in range(3)]
    db = make_engine(settings)
    store = SimulationStore(db)
    try:
        assert [store.queue_position(i) for i in ids] == [0, 1, 2]
        first = store.claim("here:1", limit=1, stale_seconds=30)
        assert first.id == ids[0] and first.status == "running" and first.attempts == 1
        assert store.claim("there:2", limit=1, stale_seconds=30) is None  # the bound: one running
        assert [store.queue_position(i) for i in ids[1:]] == [0, 1]
        assert not store.heartbeat(ids[0], "there:2", 5)  # only the runner that holds a job records for it
        assert store.finish(ids[0], "here:1", result_json="{}", files_json="{}")
        assert store.claim("there:2", limit=1, stale_seconds=30).id == ids[1]
    finally:
        db.dispose()

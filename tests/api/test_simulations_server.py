"""Simulations through a real `jiuzhu serve` (two workers, the writer process): run, download, survive a restart."""

from __future__ import annotations

import time

import httpx
from served import Served
from simulation_helpers import POPULATION, make_populations

REFORM = {"name": "低保边缘认定标准调至2倍", "parameters": [{"key": "dibao_edge.multiplier", "value": 2, "from": "2022-01-01"}]}


def _poll(c: httpx.Client, location: str, statuses: tuple[str, ...], timeout: float = 90) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = c.get(location).json()
        if body["status"] in statuses:
            return body
        time.sleep(0.1)
    raise AssertionError(f"{location} still {body['status']}")


def test_serve_runs_simulations_and_finishes_one_interrupted_by_a_restart(tmp_path, monkeypatch):
    make_populations(tmp_path / "populations")
    monkeypatch.setenv("JIUZHU_POPULATIONS_DIR", str(tmp_path / "populations"))
    first = Served(tmp_path / "data", workers=2)
    try:
        admin = first.admin_key()
        first.wait_ready()
        with httpx.Client(base_url=first.url, headers={"Authorization": f"Bearer {admin}"}, timeout=90) as c:
            policy = c.post("/v1/keys", json={"name": "民政局政策科", "role": "policy"}).json()["key"]
            c.headers["Authorization"] = f"Bearer {policy}"
            assert [p["name"] for p in c.get("/v1/populations").json()["populations"]] == ["broken", POPULATION]
            done = c.post("/v1/simulations", json={"population": POPULATION, "reform": REFORM}, headers={"Prefer": "wait=60"})
            assert done.status_code == 201 and done.json()["status"] == "done", done.text
            report = c.get(done.json()["links"]["report"])
            assert report.status_code == 200 and "<svg" in report.text

            pending = c.post("/v1/simulations", json={"population": POPULATION, "reform": REFORM})
            assert pending.status_code == 202
            location = pending.headers["Location"]
            _poll(c, location, ("running",), timeout=30)
    finally:
        assert first.stop() == 0, first.output()  # SIGTERM while the job runs: it goes back to the queue

    second = Served(tmp_path / "data", workers=1)
    try:
        second.wait_ready()
        with httpx.Client(base_url=second.url, headers={"Authorization": f"Bearer {policy}"}, timeout=30) as c:
            job = _poll(c, location, ("done", "failed"))
            assert job["status"] == "done" and job["attempts"] == 1 and job["result"]["households"] == 300
            assert len(c.get("/v1/simulations").json()["simulations"]) == 2
    finally:
        assert second.stop() == 0

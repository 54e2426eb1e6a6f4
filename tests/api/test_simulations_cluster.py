"""POST /v1/simulations with a configured Dask scheduler (JIUZHU_DASK_SCHEDULER): a partitioned population
runs on the cluster's workers and the service stores the same files as a run in its own process.

The cluster is tests/conftest.py's ``dask_scheduler``."""

from __future__ import annotations

import dataclasses

import orjson
import pytest
from fastapi.testclient import TestClient
from http_helpers import auth
from simulation_helpers import EXAMPLE_REFORM, configured, wait_until

from api.app import create_app
from api.auth.keys import Role
from api.core.config import Settings, SettingsError
from engine.batch import synth

REFORM = EXAMPLE_REFORM.read_text(encoding="utf-8")
POPULATION = "liaoning-counties"
# Timings and the run's own identity differ between two runs; everything else in summary.json must not.
VOLATILE = ("seconds", "simulation_id", "created_at", "started_at", "finished_at")


@pytest.fixture(scope="module")
def populations(tmp_path_factory):
    root = tmp_path_factory.mktemp("populations")
    synth.write(root / POPULATION, "210100", 600, seed=5, partition_by="county")
    return root


def _run(settings: Settings, engine) -> tuple[dict, dict[str, bytes]]:
    app = create_app(settings, rules=engine)
    with TestClient(app) as c:
        h = auth(app.state.repo.create_key("政策科", Role.POLICY)[1])
        r = c.post("/v1/simulations", json={"population": POPULATION, "reform": REFORM}, headers=h)
        assert r.status_code == 202, r.text
        job = wait_until(c, r.headers["Location"], h, timeout=600)
        assert job["status"] == "done", job["errors"]
        return job, {f["name"]: c.get(f["href"], headers=h).content for f in job["files"]}


def _stable(summary: bytes) -> dict:
    d = orjson.loads(summary)
    for k in VOLATILE:
        d.pop(k, None)
    return d


def test_a_configured_cluster_runs_the_partitions_and_the_files_are_those_of_one_process(
    sqlite_settings, populations, dask_scheduler, tmp_path, engine
):
    here = configured(sqlite_settings, populations, tmp_path / "here")
    there = dataclasses.replace(configured(sqlite_settings, populations, tmp_path / "cluster"), dask_scheduler=dask_scheduler)
    job_here, files_here = _run(here, engine)
    job_there, files_there = _run(there, engine)
    assert job_there["result"]["counts"] == job_here["result"]["counts"]
    assert job_there["result"]["total_cost"] == job_here["result"]["total_cost"]
    assert set(files_there) == set(files_here)
    for name in files_here:
        if name == "summary.json":
            assert _stable(files_there[name]) == _stable(files_here[name])
        elif name != "report.html":  # the report prints the run's time
            assert files_there[name] == files_here[name], name


@pytest.mark.parametrize("bad", ["localhost:8786", "tcp://:8786", "tcp://h:port", "http://h:8786"])
def test_a_scheduler_address_that_is_not_tcp_host_port_is_refused_naming_the_variable(bad, monkeypatch):
    monkeypatch.setenv("JIUZHU_DASK_SCHEDULER", bad)
    with pytest.raises(SettingsError) as e:
        Settings.from_env()
    assert "JIUZHU_DASK_SCHEDULER" in str(e.value) and "tcp://" in str(e.value)

"""Two replicas on one database: a simulation run on one is read, with its files, from the other."""

from __future__ import annotations

import dataclasses
from contextlib import contextmanager

import pytest
from http_helpers import auth
from simulation_helpers import POPULATION, configured, make_populations, wait_until

from api.app import create_app
from api.auth.keys import Role
from api.core.config import Settings, SettingsError
from api.simulations import files as sim_files
from api.simulations.files import DatabaseFiles, DirectoryFiles
from api.storage.db import make_engine, migrate

REFORM = {"name": "低保边缘认定标准调至2倍", "parameters": [{"key": "dibao_edge.multiplier", "value": 2, "from": "2022-01-01"}]}


@pytest.fixture(scope="module")
def populations(tmp_path_factory):
    return make_populations(tmp_path_factory.mktemp("populations"))


@contextmanager
def _replica(settings: Settings, engine):
    from fastapi.testclient import TestClient  # lazily: see conftest.pytest_configure

    with TestClient(create_app(settings, rules=engine)) as c:
        yield c


def _two_replicas(base: Settings, populations, tmp_path, **kw) -> tuple[Settings, Settings]:
    """A and B: one database, each its own data directory for scratch; B's runner only wakes when
    nudged (it polls once an hour), so the job submitted on A runs on A."""
    a = configured(base, populations, tmp_path / "a", **kw)
    b = dataclasses.replace(configured(base, populations, tmp_path / "b", **kw), simulation_poll_seconds=3600.0)
    return a, b


def _run_on_a_read_on_b(a: Settings, b: Settings, engine) -> tuple[dict, dict[str, bytes], dict[str, bytes]]:
    with _replica(a, engine) as on_a, _replica(b, engine) as on_b:
        h = auth(on_a.app.state.repo.create_key("政策科", Role.POLICY)[1])
        r = on_a.post("/v1/simulations", json={"population": POPULATION, "reform": REFORM}, headers={**h, "Prefer": "wait=60"})
        assert r.status_code in (201, 202), r.text
        # a loaded machine may take longer than the minute the request waits: then poll like a client would
        job = r.json() if r.status_code == 201 else wait_until(on_a, r.json()["links"]["self"], h, timeout=600)
        assert job["status"] == "done"
        from_a = {f["name"]: on_a.get(f["href"], headers=h) for f in job["files"]}
        seen = on_b.get(job["links"]["self"], headers=h)
        assert seen.status_code == 200 and seen.json()["result"] == job["result"]
        from_b = {f["name"]: on_b.get(f["href"], headers=h) for f in job["files"]}
        assert {n: x.status_code for n, x in from_b.items()} == dict.fromkeys(from_a, 200)
        assert from_b["report.html"].headers["content-type"].startswith("text/html")
        assert "default-src 'none'" in from_b["report.html"].headers["content-security-policy"]
        assert from_b["changes.parquet"].headers["content-disposition"].startswith("attachment")
        return job, {n: x.content for n, x in from_a.items()}, {n: x.content for n, x in from_b.items()}


def test_a_simulation_run_on_one_replica_is_served_with_its_files_by_another(db_settings, populations, tmp_path, engine):
    a, b = _two_replicas(db_settings, populations, tmp_path)
    job, from_a, from_b = _run_on_a_read_on_b(a, b, engine)
    assert set(from_b) >= {"report.html", "gains_losses.csv", "changes.parquet", "summary.json"}
    assert from_b == from_a
    assert all(len(from_b[f["name"]]) == f["bytes"] for f in job["files"])
    # nothing of the job is left on A's disk: the files live in the database
    assert not (a.simulations_path / job["simulation_id"]).exists()


def test_with_a_shared_directory_the_files_live_there(db_settings, populations, tmp_path, engine):
    shared = tmp_path / "shared"
    a, b = _two_replicas(db_settings, populations, tmp_path, simulation_store=f"dir:{shared}")
    job, from_a, from_b = _run_on_a_read_on_b(a, b, engine)
    assert from_b == from_a
    kept = shared / job["simulation_id"] / "files"
    assert {p.name: p.read_bytes() for p in kept.iterdir()} == from_a
    db = make_engine(a)
    try:
        assert DatabaseFiles(db).open(job["simulation_id"], "report.html") is None
    finally:
        db.dispose()


def test_the_store_setting_is_db_or_an_absolute_directory(tmp_path, monkeypatch):
    assert Settings().simulation_store == "db"
    assert Settings(simulation_store=f"dir:{tmp_path}").simulation_store == f"dir:{tmp_path}"
    for bad in ("disk", "dir:relative/path", "db:x", "dir:"):
        monkeypatch.setenv("JIUZHU_SIMULATION_STORE", bad)
        with pytest.raises(SettingsError, match="JIUZHU_SIMULATION_STORE") as e:
            Settings.from_env()
        assert "dir:/" in str(e.value), bad


@pytest.mark.parametrize("size", [0, 1, 6, 7, 8, 50])
def test_a_file_in_the_database_is_kept_and_read_in_parts(sqlite_settings, tmp_path, monkeypatch, size):
    monkeypatch.setattr(sim_files, "PART_BYTES", 7)
    db = make_engine(sqlite_settings)
    migrate(db)
    out = tmp_path / "out"
    out.mkdir()
    data = bytes(range(size))
    (out / "report.html").write_bytes(data)
    store = DatabaseFiles(db)
    try:
        staged = store.stage("job-1", out, ["report.html", "costs.csv"])  # costs.csv was not written: not kept
        with db.begin() as conn:
            staged.commit(conn)
        got = store.open("job-1", "report.html")
        parts = list(got.parts)
        assert got.size == size and b"".join(parts) == data
        assert max(len(p) for p in parts) <= 7 and len(parts) == max(1, -(-size // 7))
        assert store.open("job-1", "costs.csv") is None and store.open("job-2", "report.html") is None
        # a re-run replaces what an earlier attempt kept
        (out / "report.html").write_bytes(b"second")
        with db.begin() as conn:
            store.stage("job-1", out, ["report.html"]).commit(conn)
        assert b"".join(store.open("job-1", "report.html").parts) == b"second"
    finally:
        db.dispose()


def test_a_directory_stage_that_is_discarded_leaves_nothing(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "counts.csv").write_text("a,b\n", encoding="utf-8")
    store = DirectoryFiles(tmp_path / "shared")
    store.stage("job-1", out, ["counts.csv"]).discard()
    assert list((tmp_path / "shared" / "job-1").iterdir()) == [] and store.open("job-1", "counts.csv") is None


def test_files_of_a_job_finished_before_the_store_are_read_from_the_data_directory(
    sqlite_settings, populations, tmp_path, engine
):
    settings = configured(sqlite_settings, populations, tmp_path)
    with _replica(settings, engine) as c:
        h = auth(c.app.state.repo.create_key("政策科", Role.POLICY)[1])
        r = c.post("/v1/simulations", json={"population": POPULATION, "reform": REFORM}, headers={**h, "Prefer": "wait=60"})
        job = r.json()
        assert r.status_code == 201 and job["status"] == "done"
        href = job["links"]["report"]
        report = c.get(href, headers=h).content
        # as an older version left it: no rows, the file in <simulations dir>/<id>/out/
        with c.app.state.db.begin() as conn:
            conn.exec_driver_sql("DELETE FROM simulation_files")
        assert c.get(href, headers=h).status_code == 404
        legacy = settings.simulations_path / job["simulation_id"] / "out"
        legacy.mkdir(parents=True)
        (legacy / "report.html").write_bytes(report)
        again = c.get(href, headers=h)
        assert again.status_code == 200 and again.content == report

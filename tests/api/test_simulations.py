"""POST /v1/simulations and what follows: roles, refusals, the job from queued to done, results, files."""

from __future__ import annotations

import io
import re

import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest
import yaml
from http_helpers import auth
from simulation_helpers import EXAMPLE_REFORM, POPULATION, ROOT, configured, make_populations, wait_until

from api.app import create_app
from api.auth.keys import Role
from engine.batch.simulate import run_simulation

CJK = re.compile(r"[\u4e00-\u9fff]")
MONEY = re.compile(r"^-?\d+\.\d{2}$")
REFORM = yaml.safe_load(EXAMPLE_REFORM.read_text(encoding="utf-8"))
REFORM["parameters"] = [{**p, "from": str(p["from"])} for p in REFORM["parameters"]]  # as JSON carries dates


@pytest.fixture(scope="module")
def populations(tmp_path_factory):
    return make_populations(tmp_path_factory.mktemp("populations"))


def _sim(settings, populations, tmp_path, engine):
    from fastapi.testclient import TestClient  # lazily: see conftest.pytest_configure

    app = create_app(configured(settings, populations, tmp_path), rules=engine)
    with TestClient(app) as c:
        c.keys = {role.value: app.state.repo.create_key(f"测试{role.value}", role)[1] for role in Role}
        yield c


@pytest.fixture
def sim(sqlite_settings, populations, tmp_path, engine):
    """An app on a fresh SQLite database offering the test populations."""
    yield from _sim(sqlite_settings, populations, tmp_path, engine)


@pytest.fixture
def db_sim(db_settings, populations, tmp_path, engine):
    """The same on SQLite and, in CI, on PostgreSQL (claims, heartbeats and idempotency are database work)."""
    yield from _sim(db_settings, populations, tmp_path, engine)


def _submit(c, body, role="policy", **headers):
    return c.post("/v1/simulations", json=body, headers={**auth(c.keys[role]), **headers})


def test_roles_policy_and_admin_may_simulate_window_and_caseworker_may_not(sim):
    body = {"population": POPULATION, "reform": REFORM}
    assert sim.post("/v1/simulations", json=body).status_code == 401
    for role in ("window", "caseworker"):
        r = _submit(sim, body, role)
        assert r.status_code == 403, role
        assert r.json()["errors"][0]["field"] == "Authorization" and CJK.search(r.json()["errors"][0]["message_zh"])
        assert sim.get("/v1/populations", headers=auth(sim.keys[role])).status_code == 403
        assert sim.get("/v1/simulations", headers=auth(sim.keys[role])).status_code == 403
    assert sim.get("/v1/simulations", headers=auth(sim.keys["policy"])).json()["simulations"] == []  # nothing was queued
    for role in ("policy", "admin"):
        r = _submit(sim, body, role)
        assert r.status_code == 202, r.text
        assert r.json()["caller"]["role"] == role
        loc = r.headers["Location"]
        assert sim.get(loc, headers=auth(sim.keys["window"])).status_code == 403
        assert sim.get(loc, headers=auth(sim.keys[role])).status_code == 200


def test_the_job_goes_from_queued_to_done_with_the_same_figures_as_jiuzhu_simulate(db_sim, populations, engine, tmp_path):
    sim = db_sim
    h = auth(sim.keys["policy"])
    r = _submit(sim, {"population": POPULATION, "reform": REFORM})
    assert r.status_code == 202
    first = r.json()
    assert first["status"] in ("queued", "running") and r.headers["Location"] == first["links"]["self"]
    assert first["reform"]["changes"][0] == "dibao.standard.urban × 1.05，自 2022-01-01 起"
    assert first["result"] is None and first["files"] == []
    done = wait_until(sim, r.headers["Location"], h)
    assert done["status"] == "done" and done["errors"] is None and done["attempts"] == 1
    assert done["progress"] == {"households_done": 300, "households_total": 300, "fraction": 1.0, "elapsed_seconds": done["progress"]["elapsed_seconds"]}
    result = done["result"]
    # The service runs what the command line runs: the same counts and costs.
    direct = run_simulation(populations / POPULATION, EXAMPLE_REFORM, engine=engine).to_dict()
    assert result["counts"] == direct["counts"] and result["total_cost"] == direct["total_cost"]
    assert result["gains"] == direct["gains"] and result["losses"] == direct["losses"]
    assert result["households"] == 300 and result["synthetic"] is True and result["as_of"] == "2022-01-01"
    assert all(MONEY.match(v) for v in result["total_cost"].values())
    assert result["gains"]["dibao_edge"] > 0  # 2× the standard admits households 1.5× did not
    # No server path leaks: the population is named, files are links.
    text = sim.get(r.headers["Location"], headers=h).text
    assert str(populations) not in text and str(tmp_path) not in text
    assert result["population"] == POPULATION
    assert result["files"]["report"] == done["links"]["report"] == f"/v1/simulations/{done['simulation_id']}/files/report.html"
    listed = sim.get("/v1/simulations", headers=h).json()["simulations"]
    assert [s["simulation_id"] for s in listed] == [done["simulation_id"]] and listed[0]["result"] is None


def test_files_are_served_by_listed_name_only(sim):
    h = auth(sim.keys["policy"])
    r = _submit(sim, {"population": POPULATION, "reform": REFORM}, **{"Prefer": "wait=60"})
    assert r.status_code == 201 and r.headers["Preference-Applied"] == "wait=60"
    job = r.json()
    assert job["status"] == "done"
    files = {f["name"]: f for f in job["files"]}
    assert set(files) == {"report.html", "gains_losses.csv", "changes.parquet", "counts.csv", "costs.csv", "summary.json", "reform.yaml"}
    assert all(CJK.search(f["title"]) for f in files.values())

    report = sim.get(files["report.html"]["href"], headers=h)
    assert report.status_code == 200 and report.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in report.headers["content-security-policy"]
    assert report.headers["x-content-type-options"] == "nosniff"
    assert "<svg" in report.text and "合成" in report.text and len(report.content) == files["report.html"]["bytes"]

    moved = pcsv.read_csv(io.BytesIO(sim.get(files["gains_losses.csv"]["href"], headers=h).content))
    result = job["result"]
    assert moved.num_rows == sum(result["gains"].values()) + sum(result["losses"].values())
    assert set(moved.column("change").to_pylist()) <= {"gain", "loss"}
    assert all(i.startswith("SYN-210000-") for i in moved.column("household_id").to_pylist())
    changes = pq.read_table(io.BytesIO(sim.get(files["changes.parquet"]["href"], headers=h).content))
    assert changes.num_rows >= moved.num_rows
    summary = sim.get(files["summary.json"]["href"], headers=h).json()
    assert summary["counts"] == result["counts"] and summary["population"] == POPULATION
    assert "dibao_edge.multiplier" in sim.get(files["reform.yaml"]["href"], headers=h).text

    base = f"/v1/simulations/{job['simulation_id']}/files/"
    for name in ("jiuzhu.sqlite3", "..%2F..%2Fjiuzhu.sqlite3", "%2e%2e", "reform", "SYNTHETIC.txt", "out", "report.html%00"):
        assert sim.get(base + name, headers=h).status_code in (404, 422), name
    assert sim.get(base + "report.html", headers=auth(sim.keys["window"])).status_code == 403
    unknown = "/v1/simulations/01234567-89ab-7def-8123-456789abcdef"
    assert sim.get(unknown, headers=h).status_code == 404
    assert sim.get(unknown + "/files/report.html", headers=h).status_code == 404
    assert sim.get("/v1/simulations/not-an-id", headers=h).status_code == 422


BAD = [
    ({"population": "../etc", "reform": REFORM}, "population"),
    ({"population": "/var/lib", "reform": REFORM}, "population"),
    ({"population": "nowhere", "reform": REFORM}, "population"),
    ({"population": POPULATION}, "reform"),
    ({"population": POPULATION, "reform": REFORM, "as_of": "2022-02-30"}, "as_of"),
    ({"population": POPULATION, "reform": REFORM, "output": "/tmp"}, "output"),
    ({"population": POPULATION, "reform": 5}, "reform"),
    ({"population": POPULATION, "reform": "name: [x\n"}, "reform"),
    ({"population": POPULATION, "reform": {"name": "无改动"}}, "reform"),
    ({"population": POPULATION, "reform": {"parameters": [{"key": "no.such.parameter", "value": 1, "from": "2022-01-01"}]}}, "reform.parameters[0]"),
    ({"population": POPULATION, "reform": {"parameters": [{"key": "dibao.standard.urban", "scale": 1.1, "value": 3, "from": "2022-01-01"}]}}, "reform.parameters[0]"),
    ({"population": POPULATION, "reform": {"parameters": [{"key": "dibao.standard.urban", "scale": "多", "from": "2022-01-01"}]}}, "reform.parameters[0]"),
    ({"population": POPULATION, "reform": {"parameters": [{"key": "dibao.standard.urban", "value": "多", "from": "2022-01-01"}]}}, "reform.parameters[0]"),
    ({"population": POPULATION, "reform": {"parameters": [{"key": "dibao.standard.urban", "scale": 1.1, "from": "2022-01-01", "locality": "999999"}]}}, "reform.parameters[0]"),
    ({"population": POPULATION, "reform": {"rules": {"dibao_edge.yaml": "/etc/passwd"}}}, "reform.rules.dibao_edge.yaml"),
    ({"population": POPULATION, "reform": {"rules": {"../../x.yaml": "a: 1"}}}, "reform.rules.../../x.yaml"),
]


def test_bad_requests_are_422_naming_the_field_in_chinese_and_english_and_queue_nothing(sim):
    bad_rule = (ROOT / "rules" / "dibao_edge.yaml").read_text(encoding="utf-8").replace("per_capita_income <", "per_capita_incom <")
    cases = [*BAD, ({"population": POPULATION, "reform": {"rules": {"dibao_edge.yaml": bad_rule}}}, "reform.rules.dibao_edge.yaml")]
    for body, field in cases:
        r = _submit(sim, body)
        assert r.status_code == 422, (body, r.text)
        errors = r.json()["errors"]
        assert field in [e["field"] for e in errors], (field, errors)
        for e in errors:
            assert CJK.search(e["message_zh"]) and e["message_en"] and not CJK.search(e["message_en"][:8]), e
    for raw in (b"{", b"[1]", b'{"population": NaN}', b"[" * 50_000, "\u00ff".encode("latin-1")):
        r = sim.post("/v1/simulations", content=raw, headers=auth(sim.keys["policy"]))
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "(root)"
    too_big = sim.post("/v1/simulations", content=b" " * (1024 * 1024 + 1), headers=auth(sim.keys["policy"]))
    assert too_big.status_code == 413
    assert sim.get("/v1/simulations", headers=auth(sim.keys["policy"])).json()["simulations"] == []
    unknown = _submit(sim, {"population": "nowhere", "reform": REFORM}).json()["errors"][0]
    assert POPULATION in unknown["message_zh"] and "broken" in unknown["message_en"]  # the names on offer


def test_yaml_text_with_an_inline_rule_file_and_as_of(sim):
    edge = (ROOT / "rules" / "dibao_edge.yaml").read_text(encoding="utf-8")
    reform = "name: 低保边缘规则文件替换（内容不变）\nparameters:\n  - {key: dibao_edge.multiplier, value: 2, unit: 倍, from: 2022-01-01}\n"
    body = {"population": POPULATION, "as_of": "2022-03-01", "reform": reform + "rules:\n  dibao_edge.yaml: " + yaml.safe_dump(edge)}
    r = _submit(sim, body, Prefer="wait=60")
    job = r.json()
    assert r.status_code == 201 and job["status"] == "done", job
    assert job["reform"]["rules"] == ["dibao_edge.yaml"] and job["as_of"] == "2022-03-01"
    assert job["result"]["as_of"] == "2022-03-01" and job["result"]["reform"]["rules"] == ["dibao_edge.yaml"]


def test_a_population_with_a_bad_household_fails_the_job_naming_the_row(sim):
    r = _submit(sim, {"population": "broken", "reform": REFORM})
    assert r.status_code == 202
    job = wait_until(sim, r.headers["Location"], auth(sim.keys["policy"]))
    assert job["status"] == "failed" and job["result"] is None and job["files"] == []
    fields = [e["field"] for e in job["errors"]]
    assert any(f.startswith("population:households.jsonl[2]") and "birth_date" in f for f in fields), job["errors"]
    assert all(CJK.search(e["message_zh"]) for e in job["errors"])


def test_idempotency_key_returns_the_first_job(db_sim):
    sim = db_sim
    h = {"Idempotency-Key": "sim-2022-01"}
    first = _submit(sim, {"population": POPULATION, "reform": REFORM}, **h)
    again = _submit(sim, {"reform": REFORM, "population": POPULATION}, **h)
    assert first.status_code == 202 and again.status_code in (201, 202)
    assert again.json()["simulation_id"] == first.json()["simulation_id"] and again.headers["Idempotent-Replayed"] == "true"
    other = _submit(sim, {"population": POPULATION, "reform": {**REFORM, "name": "另一方案"}}, **h)
    assert other.status_code == 422 and other.json()["errors"][0]["code"] == "idempotency_key_reused"
    assert len(sim.get("/v1/simulations", headers=auth(sim.keys["policy"])).json()["simulations"]) == 1


def test_populations_are_listed_by_name(sim):
    got = sim.get("/v1/populations", headers=auth(sim.keys["policy"])).json()["populations"]
    # locality: the narrowest code covering every household (the synthetic one spans Liaoning)
    assert {"name": POPULATION, "format": "parquet", "households": 300, "synthetic": True, "locality": "210000"} in got
    assert {"name": "broken", "format": "jsonl", "households": None, "synthetic": False, "locality": "210102"} in got


def test_the_documented_example_is_accepted(sim):
    spec = sim.get("/openapi.json").json()
    op = spec["paths"]["/v1/simulations"]["post"]
    assert CJK.search(op["summary"]) and {"201", "202", "422", "403"} <= set(op["responses"])
    examples = op["requestBody"]["content"]["application/json"]["examples"]
    for example in examples.values():
        r = _submit(sim, example["value"])
        assert r.status_code == 202, r.text

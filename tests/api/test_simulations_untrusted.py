"""POST /v1/simulations treats the reform as a user's input: hostile ids and oversized reforms are 422, nothing queued."""

from __future__ import annotations

import json
import re

import pytest
from http_helpers import auth
from simulation_helpers import POPULATION, ROOT, configured, make_populations

from api.app import create_app
from api.auth.keys import Role
from engine.batch.reform import MAX_PARAMETER_CHANGES, MAX_RULE_FILES

CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture(scope="module")
def populations(tmp_path_factory):
    return make_populations(tmp_path_factory.mktemp("populations"))


@pytest.fixture
def sim(sqlite_settings, populations, tmp_path, engine):
    from fastapi.testclient import TestClient  # lazily: see conftest.pytest_configure

    app = create_app(configured(sqlite_settings, populations, tmp_path), rules=engine)
    with TestClient(app) as c:
        c.key = app.state.repo.create_key("测试policy", Role.POLICY)[1]
        yield c


def _refused(sim, reform) -> list[dict]:
    r = sim.post("/v1/simulations", json={"population": POPULATION, "reform": reform}, headers=auth(sim.key))
    assert r.status_code == 422, r.text
    errors = r.json()["errors"]
    for e in errors:
        assert CJK.search(e["message_zh"]) and e["message_en"], e
    assert sim.get("/v1/simulations", headers=auth(sim.key)).json()["simulations"] == []
    return errors


def test_a_rule_file_with_a_hostile_let_name_is_422_naming_the_file_and_line(sim, tmp_path):
    marker = tmp_path / "marker"
    name = (
        "probe\n    [c for c in str.__base__.__subclasses__() if c.__name__ == '_wrap_close'][0]"
        f".__init__.__globals__['system']('touch {marker}')\n    #"
    )
    text = (ROOT / "rules" / "dibao.yaml").read_text(encoding="utf-8")
    text = text.replace("let:\n", f"let:\n  - name: {json.dumps(name)}\n    value: 1\n", 1)
    errors = _refused(sim, {"name": "探针", "rules": {"dibao.yaml": text}})
    (e,) = errors
    assert e["field"] == "reform.rules.dibao.yaml"
    assert "rules/dibao.yaml:14: let" in e["message_zh"] and "rules/dibao.yaml:14: let name" in e["message_en"]
    assert not marker.exists()


def test_a_fact_id_with_a_newline_in_a_replaced_household_file_is_422(sim):
    text = (ROOT / "rules" / "household.yaml").read_text(encoding="utf-8")
    text = text.replace("facts:\n", 'facts:\n  - id: "household.probe\\n    import os"\n    value: 1\n    citation: c\n', 1)
    (e,) = _refused(sim, {"name": "探针", "rules": {"household.yaml": text}})
    assert e["field"] == "reform.rules.household.yaml" and "rules/household.yaml:" in e["message_en"]


def test_an_alias_bomb_is_422_with_its_line(sim):
    text = "x0: &x0 [a, a, a, a, a, a, a, a, a, a]\nx1: &x1 [*x0, *x0, *x0, *x0]\n"
    text += (ROOT / "rules" / "dibao.yaml").read_text(encoding="utf-8")
    e = _refused(sim, {"name": "探针", "rules": {"dibao.yaml": text}})[0]  # then what lacks the unread dibao
    assert e["field"] == "reform.rules.dibao.yaml" and "rules/dibao.yaml:2:" in e["message_en"] and "alias" in e["message_en"]


def test_a_deeply_nested_expression_is_422_not_a_recursion_error(sim):
    text = (ROOT / "rules" / "dibao.yaml").read_text(encoding="utf-8")
    deep = "(" * 300 + "per_capita_income" + ")" * 300
    text = text.replace("when: per_capita_income < standard", f"when: {deep} < standard", 1)
    (e,) = _refused(sim, {"name": "探针", "rules": {"dibao.yaml": text}})
    assert e["field"] == "reform.rules.dibao.yaml" and "nested too deeply" in e["message_en"]


def test_too_many_parameter_changes_or_rule_files_are_422_naming_the_field(sim):
    change = {"key": "dibao.standard.urban", "scale": 1.01, "from": "2022-01-01"}
    (e,) = _refused(sim, {"name": "多", "parameters": [change] * (MAX_PARAMETER_CHANGES + 1)})
    assert e["field"] == "reform.parameters" and "too many parameter changes" in e["message_en"]
    edge = (ROOT / "rules" / "dibao_edge.yaml").read_text(encoding="utf-8")
    (e,) = _refused(sim, {"name": "多", "rules": {f"r{i}.yaml": edge for i in range(MAX_RULE_FILES + 1)}})
    assert e["field"] == "reform.rules" and "too many rule files" in e["message_en"]

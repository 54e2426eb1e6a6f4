"""Localities, parameters, programs and rules: what a caseworker browses to see why."""

from __future__ import annotations

import pytest
from http_helpers import auth


@pytest.fixture
def get(client, keys):
    h = auth(keys["window"])
    return lambda path: client.get(path, headers=h)


def test_localities_with_policy_files(get, engine):
    r = get("/v1/localities")
    assert r.status_code == 200
    codes = [x["code"] for x in r.json()]
    assert codes == sorted(engine.policies.files)
    liaoning = next(x for x in r.json() if x["code"] == "210000")
    assert liaoning["full_name"] == "辽宁省" and liaoning["level"] == "province"
    assert [c["code"] for c in liaoning["chain"]] == ["210000", "100000"]


def test_a_locality_has_its_name_and_inheritance_chain(get):
    r = get("/v1/localities/210102").json()
    assert r["full_name"] == "辽宁省沈阳市和平区"
    assert [a["code"] for a in r["ancestors"]] == ["210102", "210100", "210000", "100000"]
    assert [c["code"] for c in r["chain"]] == ["210000", "100000"]  # levels with a policy file
    assert r["has_policy_file"] is False
    assert get("/v1/localities/999999").status_code == 404
    bad = get("/v1/localities/21x")
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "code"


def test_parameters_resolve_for_the_date_with_unit_source_and_level(get, engine):
    r = get("/v1/localities/210102/parameters?date=2021-08-01")
    assert r.status_code == 200
    body = r.json()
    params = {p["key"]: p for p in body["parameters"]}
    assert set(params) == set(engine.policies.schema)
    std = params["dibao.standard.urban"]
    assert (std["value"], std["unit"], std["level"], std["level_name"]) == ("672.00", "元/人/月", "210000", "辽宁省")
    # the document, not the seed file (issue 15); the file and line stay in policies/210000.yaml
    assert "《辽宁省民政事业发展第十四个五年规划》第一章第一节" in std["source"]
    assert ".txt" not in std["source"]
    for p in body["parameters"]:
        assert p["configured"] == (p["value"] is not None)
        assert p["source"] or not p["configured"]


def test_the_date_matters(get):
    def limit(date):
        params = get(f"/v1/localities/210102/parameters?date={date}").json()["parameters"]
        return next(p["value"] for p in params if p["key"] == "tekun.minor_age_limit")

    assert (limit("2021-06-30"), limit("2021-07-01")) == (16, 18)


def test_unconfigured_parameters_say_so(get):
    params = get("/v1/localities/500152/parameters?date=2021-08-01").json()["parameters"]
    urban = next(p for p in params if p["key"] == "dibao.standard.urban")
    assert urban["configured"] is False and urban["value"] is None and urban["display"] == "未配置"


def test_a_bad_date_is_422(get):
    for date in ("2021-13-01", "yesterday", "20210801"):
        r = get(f"/v1/localities/210102/parameters?date={date}")
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "date"


def test_programs_and_their_rules_with_sentences_and_citations(get, engine):
    programs = get("/v1/programs").json()
    assert [p["code"] for p in programs] == [p.code for p in engine.book.programs]
    rules = get("/v1/programs/dibao/rules").json()
    assert rules["name"] == "最低生活保障"
    by_id = {r["id"]: r for r in rules["rules"]}
    income = by_id["dibao.income_below_standard"]
    assert income["text_pass"] == "家庭人均收入{per_capita_income}元低于低保标准{standard}元"
    assert income["citation"] == "《社会救助暂行办法》第九条"
    assert by_id["household.financial_assets"]["citation"]  # shared facts show their own citation
    # 低保 has a second eligible clause: paid for the members not granted 特困 (issue 15)
    assert [d["status"] for d in rules["decision"]] == ["eligible", "eligible", "gradual_exit", "ineligible"]
    facts = get("/v1/programs/household/rules").json()
    assert any(r["id"] == "household.per_capita_income" for r in facts["rules"])
    assert get("/v1/programs/nothing/rules").status_code == 404


def test_health_and_readiness_need_no_key(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"rules": "ok", "database": "ok", "writer": "ok"}


def test_readiness_fails_when_the_database_does_not_answer(client):
    client.app.state.db.dispose()
    bad = client.app.state.repo.engine
    from sqlalchemy import create_engine

    client.app.state.repo.engine = create_engine("sqlite:////nonexistent-dir/x.db")
    try:
        r = client.get("/readyz")
        assert r.status_code == 503 and r.json()["checks"]["database"].startswith("error")
    finally:
        client.app.state.repo.engine = bad


def test_unknown_paths_are_404_in_the_error_shape(client):
    r = client.get("/v1/nothing")
    assert r.status_code == 404 and r.json()["errors"][0]["code"] == "http_404"

"""预警、政策、模拟 pages through the app (API key header, as scripts open them), and the simulation files
opened with a workbench session instead of a key."""

from __future__ import annotations

import re
import time

import pytest
from simulation_helpers import POPULATION, configured, make_populations

from api.app import create_app
from api.auth.keys import Caller, Role, Scope
from api.web import deps
from engine.batch import briefing


def _h(key: str) -> dict:
    return {"X-API-Key": key}


@pytest.fixture(scope="module")
def populations(tmp_path_factory):
    return make_populations(tmp_path_factory.mktemp("populations"))


@pytest.fixture
def app(sqlite_settings, populations, tmp_path, engine):
    from fastapi.testclient import TestClient

    app = create_app(configured(sqlite_settings, populations, tmp_path), rules=engine)
    with TestClient(app) as c:
        repo = app.state.repo
        c.keys = {role.value: repo.create_key(f"测试{role.value}", role)[1] for role in Role}
        c.keys["caseworker_210102"] = repo.create_key("和平区经办", Role.CASEWORKER, Scope.of("210102"))[1]
        c.keys["caseworker_620722"] = repo.create_key("民乐县经办", Role.CASEWORKER, Scope.of("620722"))[1]
        c.keys["policy_620722"] = repo.create_key("民乐县政策", Role.POLICY, Scope.of("620722"))[1]
        yield c


# -- 政策 -----------------------------------------------------------------------------------------


def test_policy_page_shows_each_parameter_with_value_source_document_and_level(app):
    r = app.get("/policy?locality=210102&date=2021-08-01", headers=_h(app.keys["window"]))
    assert r.status_code == 200
    api = app.get("/v1/localities/210102/parameters?date=2021-08-01", headers=_h(app.keys["window"])).json()
    urban = next(p for p in api["parameters"] if p["key"] == "dibao.standard.urban")
    row = re.search(r'<tr id="param-dibao.standard.urban">(.*?)</tr>', r.text, re.S).group(1)
    assert urban["display"] in row  # the same value the API gives
    assert "《" in row and "》" in row  # a document title, not a file
    assert not re.search(r"\d{3}_[0-9a-f]{16}\.txt|\.yaml", r.text)  # never a seed file name or a file path
    assert "市级·辽宁省沈阳市" in row or "省级·辽宁省" in row or "县级" in row
    assert "/policy/parameters/dibao.standard.urban?locality=210102" in row


def test_a_locality_is_found_by_its_name_and_an_ambiguous_one_offers_candidates(app):
    h = _h(app.keys["window"])
    r = app.get("/policy", params={"locality": "辽宁省沈阳市和平区", "date": "2021-08-01"}, headers=h)
    assert "辽宁省沈阳市和平区 · 2021-08-01 适用的参数" in r.text
    r = app.get("/policy", params={"locality": "和平区"}, headers=h)
    assert "您要找的是" in r.text and "210102" in r.text and "120101" in r.text  # 沈阳 and 天津 both have one
    r = app.get("/policy", params={"locality": "火星"}, headers=h)
    assert "没有找到这个地区" in r.text


def test_a_parameters_history_lists_its_periods_with_their_sources(app):
    r = app.get("/policy/parameters/dibao.standard.urban?locality=210102", headers=_h(app.keys["window"]))
    assert r.status_code == 200
    periods = re.findall(r"<td class=\"date\">(\d{4}-\d{2}-\d{2}) 起", r.text)
    assert len(periods) >= 2 and periods == sorted(periods)
    assert "至今" in r.text and "《" in r.text
    assert app.get("/policy/parameters/no.such?locality=210102", headers=_h(app.keys["window"])).status_code == 404


def test_a_programs_rule_sentences_and_citations(app):
    api = app.get("/v1/programs/dibao/rules", headers=_h(app.keys["window"])).json()
    r = app.get("/policy/programs/dibao", headers=_h(app.keys["window"]))
    assert r.status_code == 200 and api["name"] in r.text
    first = next(x for x in api["rules"] if x["citation"])
    assert first["title"] in r.text and first["citation"].replace("“", "&#34;")[:10] in r.text.replace("“", "&#34;")


# -- 预警 -----------------------------------------------------------------------------------------


# 沈阳市和平区: one adult earning 1,400 a month and a child, as the monitoring tests' WORKER: registering
# them raises "may qualify for 低保边缘".
WORKER = {
    "locality": "210102",
    "area": "urban",
    "members": [
        {"id": "p1", "relation": "head", "birth_date": "1980-03-01", "hukou_locality": "210102", "supporters": "able",
         "employed": True, "incomes": [{"type": "wage", "monthly": "1400.00"}]},
        {"id": "p2", "relation": "child", "birth_date": "2012-06-01", "hukou_locality": "210102", "supporters": "able",
         "schooling": "compulsory"},
    ],
    "assets": {"financial": "2000.00", "vehicles": [], "properties": 1},
}


def _raise_alert(app, hid: str = "LN-W-1") -> dict:
    body = {"household_id": hid, "type": "register", "date": "2021-08-01", "household": WORKER}
    r = app.post("/v1/events", json=body, headers=_h(app.keys["caseworker"]))
    assert r.status_code == 200, r.text
    return r.json()["alerts"][0]


def test_alerts_in_scope_are_listed_acknowledged_and_closed_from_the_form(app):
    a = _raise_alert(app)
    h = _h(app.keys["caseworker_210102"])
    r = app.get("/alerts", headers=h)
    assert r.status_code == 200 and f'id="alert-{a["alert_id"]}"' in r.text and "待处理" in r.text
    assert f'href="/households/{a["household_id"]}"' in r.text
    assert f"/alerts/{a['alert_id']}/acknowledge" in r.text
    r = app.post(f"/alerts/{a['alert_id']}/acknowledge", data={"note": "已电话联系", "back": "/alerts?status=open"}, headers=h, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/alerts?status=open&done=acknowledge")
    stored = app.get(f"/v1/alerts/{a['alert_id']}", headers=h).json()
    assert stored["status"] == "acknowledged" and stored["notes"][-1]["note"] == "已电话联系"
    assert f'id="alert-{a["alert_id"]}"' not in app.get("/alerts?status=open", headers=h).text
    assert f'id="alert-{a["alert_id"]}"' in app.get("/alerts?status=acknowledged", headers=h).text
    # closing needs a note; then the alert is closed
    r = app.post(f"/alerts/{a['alert_id']}/close", data={"note": "  "}, headers=h, follow_redirects=False)
    assert "problem=note" in r.headers["location"]
    assert "须写明处置说明" in app.get(r.headers["location"], headers=h).text
    app.post(f"/alerts/{a['alert_id']}/close", data={"note": "已纳入低保边缘"}, headers=h)
    assert app.get(f"/v1/alerts/{a['alert_id']}", headers=h).json()["status"] == "closed"


def test_alerts_are_filtered_by_type_and_bounded_by_the_callers_locality(app):
    a = _raise_alert(app)
    h = _h(app.keys["caseworker_210102"])
    shown = f'id="alert-{a["alert_id"]}"'
    assert shown in app.get(f"/alerts?status=&type={a['rule']}", headers=h).text
    assert shown not in app.get("/alerts?status=&type=monitor.hospitalised_twice", headers=h).text
    far = _h(app.keys["caseworker_620722"])
    assert shown not in app.get("/alerts?status=", headers=far).text
    r = app.post(f"/alerts/{a['alert_id']}/acknowledge", data={}, headers=far, follow_redirects=False)
    assert "problem=not_found" in r.headers["location"]
    assert app.get(f"/v1/alerts/{a['alert_id']}", headers=h).json()["status"] == "open"
    # policy staff read alerts but may not act on them
    assert app.post(f"/alerts/{a['alert_id']}/acknowledge", data={}, headers=_h(app.keys["policy"])).status_code == 403


# -- 模拟 -----------------------------------------------------------------------------------------


def _wait_done(app, sim_id: str, h: dict, timeout: float = 90) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = app.get(f"/simulations/{sim_id}", headers=h)
        assert r.status_code == 200
        status = re.search(r'data-status="(\w+)"', r.text).group(1)
        if status in ("done", "failed"):
            return r.text
        assert 'http-equiv="refresh"' in r.text  # the page follows progress by refreshing
        time.sleep(0.2)
    raise AssertionError("simulation did not finish")


def _form(**extra) -> dict:
    return {
        "population": POPULATION,
        "as_of": "2022-06-01",
        "name": "低保标准提高20%",
        "key": ["dibao.standard.urban", "dibao.standard.rural", ""],
        "mode": ["scale", "scale", "scale"],
        "amount": ["1.2", "1.2", ""],
        "from": ["2022-01-01", "2022-01-01", ""],
        **extra,
    }


def test_a_reform_built_in_the_form_runs_and_its_briefing_reads_in_chinese(app):
    h = _h(app.keys["policy"])
    page = app.get("/simulations", headers=h)
    assert page.status_code == 200 and f'<option value="{POPULATION}"' in page.text and 'value="dibao.standard.urban"' in page.text
    r = app.post("/simulations", data=_form(), headers=h, follow_redirects=False)
    assert r.status_code == 303, r.text
    sim_id = r.headers["location"].rsplit("/", 1)[1]
    text = _wait_done(app, sim_id, h)
    api = app.get(f"/v1/simulations/{sim_id}", headers=h).json()
    assert api["status"] == "done" and api["reform"]["name"] == "低保标准提高20%"
    assert briefing.headline(api["result"]) in text
    assert re.search(r"新增最低生活保障 [\d,]+ 户，年增支 [\d,]+\.\d 万元", text)
    assert "符合" in text and "不符合" in text and ">eligible<" not in text
    assert "标准未配置" in text  # a program granted without an amount is flagged, not costed at 0
    assert "辽宁省沈阳市" in text  # the breakdown by prefecture
    assert f"/v1/simulations/{sim_id}/files/gains_losses.csv" in text
    assert app.get(f"/v1/simulations/{sim_id}/files/gains_losses.csv", headers=h).status_code == 200


def test_form_errors_are_named_beside_their_fields_and_nothing_is_queued(app):
    h = _h(app.keys["policy"])
    r = app.post("/simulations", data=_form(amount=["abc", "1.2", ""], name=""), headers=h)
    assert r.status_code == 422
    assert "请填写不小于0的数值" in r.text and "请填写方案名称" in r.text
    assert 'value="abc"' in r.text  # nothing typed is lost
    r = app.post("/simulations", data=_form(population="no-such"), headers=h)
    assert r.status_code == 422 and "未找到名为 no-such 的人口数据" in r.text
    assert app.get("/v1/simulations", headers=h).json()["simulations"] == []


def test_an_uploaded_reform_file_gets_the_apis_checks(app):
    h = _h(app.keys["policy"])
    bad = "name: x\nparameters:\n  - {key: no.such.parameter, value: 1, from: 2022-01-01}\n"
    r = app.post("/simulations", data={"population": POPULATION}, files={"reform_file": ("r.yaml", bad.encode(), "text/yaml")}, headers=h)
    assert r.status_code == 422 and "no.such.parameter" in r.text
    good = "name: 低保边缘2倍\nparameters:\n  - {key: dibao_edge.multiplier, value: 2, unit: 倍, from: 2022-01-01}\n"
    r = app.post("/simulations", data={"population": POPULATION}, files={"reform_file": ("r.yaml", good.encode(), "text/yaml")}, headers=h, follow_redirects=False)
    assert r.status_code == 303
    assert "低保边缘2倍" in app.get("/simulations", headers=h).text


def test_simulation_files_open_with_a_session_within_role_and_scope(app, monkeypatch):
    """A browser sends no key header: the files answer the signed-in person (401 before, for everyone)."""
    h = _h(app.keys["policy"])
    r = app.post("/simulations", data=_form(), headers=h, follow_redirects=False)
    sim_id = r.headers["location"].rsplit("/", 1)[1]
    _wait_done(app, sim_id, h)
    url = f"/v1/simulations/{sim_id}/files/gains_losses.csv"
    assert app.get(url).status_code == 401  # no key, no session
    people = {
        "policy": Caller("s1", "政策科", Role.POLICY, Scope()),
        "caseworker": Caller("s2", "经办", Role.CASEWORKER, Scope()),
        "far": Caller("s3", "民乐县政策", Role.POLICY, Scope.of("620722")),
    }

    async def session_caller(request):
        return people.get(request.cookies.get("who", ""))

    monkeypatch.setattr(deps, "session_caller", session_caller)
    app.cookies.set("who", "policy")
    r = app.get(url)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert app.get(f"/v1/simulations/{sim_id}/files/report.html").status_code == 200
    app.cookies.set("who", "caseworker")
    assert app.get(url).status_code == 403  # role
    app.cookies.set("who", "far")
    assert app.get(url).status_code == 404  # scope: another locality's simulation is not there
    app.cookies.clear()

"""新建评估, 评估结果, 打印 and 家庭档案 without a browser: the form's fields and errors, the record it
makes, what each role and scope may open. (tests/web/test_case_pages_browser.py drives the same pages
in Chromium.)"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest

from api.auth.keys import Role, Scope
from api.web import household_form as hf
from api.web.case_pages import compare
from engine.explain.report import NEXT_STEP, build_report
from engine.schema import vocab

FAMILY = json.loads((Path(__file__).resolve().parents[2] / "examples" / "liaoning_shenyang_family.json").read_text("utf-8"))

# examples/liaoning_shenyang_family.json as the form posts it
FORM = {
    "household_id": "LN-2021-0001",
    "locality": "210102",
    "as_of": "2021-08-01",
    "area": "urban",
    "members[0].relation": "head",
    "members[0].birth_date": "1956-05-01",
    "members[0].sex": "female",
    "members[0].id_number": "21010219560501123X",
    "members[0].hukou_locality": "210102",
    "members[0].disability.category": "limb",
    "members[0].disability.grade": "2",
    "members[0].self_care": "full",
    "members[0].schooling": "none",
    "members[0].supporters": "none",
    "members[0].incomes[0].type": "pension",
    "members[0].incomes[0].monthly": "300.00",
    "members[1].relation": "child",
    "members[1].birth_date": "2005-09-10",
    "members[1].sex": "male",
    "members[1].hukou_locality": "210102",
    "members[1].schooling": "high_school",
    "members[1].supporters": "able",
    "members[1].incomes[0].type": "scholarship",
    "members[1].incomes[0].monthly": "150.00",
    "members[2].relation": "child",
    "members[2].birth_date": "1988-02-14",
    "members[2].sex": "male",
    "members[2].hukou_locality": "210102",
    "members[2].status": "incarcerated",
    "assets.financial": "5000.00",
    "assets.properties": "1",
    "rigid_expenses[0].type": "medical",
    "rigid_expenses[0].monthly": "300.00",
    "current_benefits": "dibao",
}


def _key(client, role: Role, locality: str = "100000") -> dict:
    return {"X-API-Key": client.app.state.repo.create_key(f"测试{role.value}{locality}", role, Scope.of(locality))[1]}


def _errors_beside(html: str) -> dict[str, str]:
    return dict(re.findall(r'<div class="field-error" id="e-([^"]+)">(.*?)</div>', html))


def test_every_choice_is_the_engines_vocabulary_with_a_chinese_label():
    assert [c for c, _ in hf.CHOICES["relation"]] == list(vocab.RELATIONS)
    assert [c for c, _ in hf.CHOICES["incomes.type"]] == list(vocab.INCOME_TYPES)
    assert [c for c, _ in hf.CHOICES["events.type"]] == list(vocab.HOUSEHOLD_EVENT_TYPES)
    assert [c for c, _ in hf.CHOICES["current_benefits"]] == list(vocab.PROGRAM_CODES)
    for field, choices in hf.CHOICES.items():
        for code, zh in choices:
            assert zh != code and re.search(r"[\u4e00-\u9fff]", zh), (field, code)
        assert len({zh for _, zh in choices}) == len(choices), field  # no two choices read alike


def test_the_form_records_the_determination_the_api_gives(client):
    key = _key(client, Role.CASEWORKER, "210102")
    r = client.post("/evaluate", data=FORM, headers=key, follow_redirects=False)
    assert r.status_code == 303
    determination_id = r.headers["location"].rsplit("/", 1)[1]
    stored = client.get(f"/v1/determinations/{determination_id}", headers=key).json()
    api = client.post("/v1/evaluate", json=FAMILY, headers=key).json()
    del api["determination_id"], api["recorded_at"]
    assert stored["determination"] == api
    assert stored["input"]["members"][0]["id_number"] == "210102********123X"


def test_errors_land_beside_their_fields_and_blank_rows_do_not_shift_them(client):
    key = _key(client, Role.CASEWORKER)
    form = dict(FORM)
    # a blank income row before the bad one: the error must name the row the caseworker sees
    form["members[1].incomes[0].type"] = ""
    form["members[1].incomes[0].monthly"] = ""
    form["members[1].incomes[1].type"] = "wage"
    form["members[1].incomes[1].monthly"] = "12.345"
    form["members[2].birth_date"] = "1988-02-30"
    form["members[0].disability.grade"] = ""
    form["current_amounts[0].program"] = "dibao"
    form["current_amounts[0].monthly"] = "-1"
    before = client.app.state.repo.count_determinations()
    r = client.post("/evaluate", data=form, headers=key)
    assert r.status_code == 422
    beside = _errors_beside(r.text)
    assert "两位小数" in beside["f-members-1-incomes-0-monthly"]
    assert "2-30" in beside["f-members-2-birth_date"] or "不存在" in beside["f-members-2-birth_date"]
    assert "f-members-0-disability-grade" in beside  # a category without its grade
    assert "f-current_amounts-0-monthly" in beside  # current_amounts.dibao, shown at its row
    assert 'aria-invalid="true" aria-describedby="e-f-members-2-birth_date"' in r.text
    # what was typed is still there, in the renumbered row
    assert 'name="members[1].incomes[0].monthly" id="f-members-1-incomes-0-monthly" aria-invalid="true"' in r.text
    assert 'value="12.345"' in r.text and 'value="1988-02-30"' in r.text and 'value="21010219560501123X"' in r.text
    assert client.app.state.repo.count_determinations() == before  # nothing recorded


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("members[0].disability", "members[0].disability.category"),
        ("members[0].status[1]", "members[0].status"),
        ("members[0].parents[0].status", "members[0].parents[0].status"),
        ("members[0].incomes", "members[0].incomes"),
        ("assets.vehicles[3].exempt", "assets.vehicle_count"),
        ("assets", "assets.financial"),
        ("members", "members"),
        ("current_amounts.tekun", "current_amounts"),
        ("(root)", None),
        ("members[7].relation", "members"),  # no such row on the page: said at the members
    ],
)
def test_every_error_path_has_a_place(path, field):
    tree = hf.normalise(hf.tree_from_form({k: [v] for k, v in FORM.items()}))
    by_field, loose = hf.place_errors([{"field": path, "message_zh": "错"}], tree)
    if field is None:
        assert loose and not by_field
    else:
        assert by_field == {field: ["错"]}


def test_rows_are_added_and_removed_without_javascript_and_nothing_is_recorded(client):
    key = _key(client, Role.CASEWORKER)
    r = client.post("/evaluate", data={**FORM, "action": "add:members"}, headers=key)
    assert r.status_code == 200 and 'name="members[3].relation"' in r.text
    assert 'name="members[3].hukou_locality" id="f-members-3-hukou_locality" value="210102"' in r.text
    r = client.post("/evaluate", data={**FORM, "action": "add:members[1].incomes"}, headers=key)
    assert 'name="members[1].incomes[1].type"' in r.text and 'value="150.00"' in r.text
    r = client.post("/evaluate", data={**FORM, "action": "remove:members[1]"}, headers=key)
    assert 'name="members[2].relation"' not in r.text
    assert 'value="1988-02-14"' in r.text and 'value="2005-09-10"' not in r.text  # member 3 moved up
    assert client.app.state.repo.count_determinations() == 0


def test_vehicle_counts_are_the_forms_own_fields_and_checked_there(client):
    key = _key(client, Role.CASEWORKER)
    r = client.post("/evaluate", data={**FORM, "assets.vehicle_count": "1", "assets.vehicle_exempt": "2"}, headers=key)
    assert r.status_code == 422 and "不能多于" in _errors_beside(r.text)["f-assets-vehicle_exempt"]
    household, errors = hf.to_household(
        hf.normalise(
            hf.tree_from_form({"assets.financial": ["1"], "assets.vehicle_count": ["2"], "assets.vehicle_exempt": ["1"]})
        )
    )
    assert not errors and household["assets"]["vehicles"] == [{"exempt": True}, {"exempt": False}]


def test_the_result_answers_first_and_keeps_the_rules_collapsed(client):
    key = _key(client, Role.CASEWORKER, "210102")
    location = client.post("/evaluate", data=FORM, headers=key, follow_redirects=False).headers["location"]
    r = client.get(location, headers=key)
    assert r.status_code == 200
    text = r.text
    assert text.index('id="answers"') < text.index('<details class="rules"')
    assert '<details class="rules" id="rules">' in text  # no "open": collapsed by default
    assert "每月522.00元" in text and "每月现金 1395.60 元" in text and "依据：" in text
    assert "打印" in text and "复制链接" in text
    assert "21010219560501123X" not in text and "210102195605011" not in text


def test_the_print_sheet_has_signatures_and_the_appendix_only_when_asked(client):
    key = _key(client, Role.CASEWORKER, "210102")
    location = client.post("/evaluate", data=FORM, headers=key, follow_redirects=False).headers["location"]
    sheet = client.get(location + "/print", headers=key).text
    for words in (
        "辽宁省沈阳市和平区",
        "LN-2021-0001",
        "申请人（签字）",
        "经办人（签字）",
        "审核人（签字）",
        "打印日期",
        "规则版本",
        "不是审批决定",
    ):
        assert words in sheet
    assert '<table class="decisions">' in sheet and "审核附录" not in sheet
    assert "审核附录" in client.get(location + "/print?appendix=1", headers=key).text


def test_another_countys_caseworker_gets_404_as_from_the_api(client):
    ours = _key(client, Role.CASEWORKER, "210102")
    theirs = _key(client, Role.CASEWORKER, "620722")
    location = client.post("/evaluate", data=FORM, headers=ours, follow_redirects=False).headers["location"]
    determination_id = location.rsplit("/", 1)[1]
    assert client.get(f"/v1/determinations/{determination_id}", headers=theirs).status_code == 404
    for path in (location, location + "/print", "/households/LN-2021-0001"):
        r = client.get(path, headers=theirs)
        assert r.status_code == 404, path
        assert "1395.60" not in r.text
    assert "LN-2021-0001" not in client.get("/households", headers=theirs).text.split("最近评估的家庭")[1]
    assert "LN-2021-0001" in client.get("/households", headers=ours).text.split("最近评估的家庭")[1]
    # and it may not evaluate for our county: the API's refusal, beside the locality
    r = client.post("/evaluate", data=FORM, headers=theirs)
    assert r.status_code == 403 and "不在您的权限范围内" in _errors_beside(r.text)["f-locality"]
    codes = {d["code"] for d in client.get("/evaluate/localities.json", headers=theirs).json()}
    assert {"620000", "620700", "620722"} <= codes and "210102" not in codes


def test_a_window_reads_the_result_it_recorded_but_browses_no_records(client):
    window = _key(client, Role.WINDOW)
    other = _key(client, Role.WINDOW)
    location = client.post("/evaluate", data=FORM, headers=window, follow_redirects=False).headers["location"]
    r = client.get(location, headers=window)
    assert r.status_code == 200 and "/households/" not in r.text.split("<main", 1)[1]
    assert client.get(location, headers=other).status_code == 403
    assert client.get("/households", headers=window).status_code == 403


def test_history_compares_two_evaluations(client):
    key = _key(client, Role.CASEWORKER, "210102")
    household = copy.deepcopy(FAMILY)
    client.post("/v1/evaluate", json=household, headers=key)
    household["members"][0]["incomes"] = [{"type": "pension", "monthly": "2000.00"}]
    client.post("/v1/evaluate", json=household, headers=key)
    r = client.get("/households/LN-2021-0001", headers=key)
    assert r.status_code == 200
    changes = r.text.split('id="changes"', 1)[1].split("</section>", 1)[0]
    assert "1395.60 元 → <strong>0.00 元</strong>" in changes
    assert "dibao.income_below_standard" in changes and "tekun.own_income_below_standard" in changes
    assert (
        client.get("/households?q=LN-2021-0001", headers=key, follow_redirects=False).headers["location"]
        == "/households/LN-2021-0001"
    )


def test_compare_names_status_amount_and_rules_that_changed(engine):
    old = engine.evaluate(FAMILY)
    household = copy.deepcopy(FAMILY)
    household["members"][0]["incomes"] = [{"type": "pension", "monthly": "2000.00"}]
    new = engine.evaluate(household)
    changes = compare(old, new)
    dibao = next(p for p in changes["programs"] if p["name"] == "最低生活保障")
    assert (dibao["before"], dibao["amount_before"]) == ("符合", "522.00")
    assert dibao["after"] != "符合"
    assert {"rule": "dibao.income_below_standard", "before": "满足", "after": "不满足"}.items() <= next(
        r for r in changes["rules"] if r["rule"] == "dibao.income_below_standard"
    ).items()
    assert compare(old, old) == {**compare(old, old), "programs": [], "rules": []}


def test_the_report_splits_what_to_supply_from_what_the_bureau_has_not_configured(engine):
    household = copy.deepcopy(FAMILY)
    del household["assets"]  # facts the family can supply
    rep = build_report(engine.evaluate(household), household)
    assert rep.supply and all(s.startswith("请补充") for s in rep.supply)
    assert all(s.startswith("本地尚未配置") for s in rep.unconfigured)
    assert rep.next_steps == rep.supply + [f"（窗口）{s}" for s in rep.unconfigured] + [NEXT_STEP]


def test_the_result_says_what_the_family_should_supply_apart_from_the_answers(client):
    key = _key(client, Role.CASEWORKER, "210102")
    form = {k: v for k, v in FORM.items() if not k.startswith("assets.")}  # assets not known
    location = client.post("/evaluate", data=form, headers=key, follow_redirects=False).headers["location"]
    text = client.get(location, headers=key).text
    supply = text.split('<ul id="supply">', 1)[1].split("</ul>", 1)[0]
    assert "请补充" in supply and "家庭财产" in supply
    assert "需补充信息" in text.split('id="answers"', 1)[1].split("</ul>", 1)[0]

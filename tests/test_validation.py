"""Bad input is refused whole, naming each field, in Chinese and English."""

import copy
import datetime as dt
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from strategies import broken_households, households

from engine import InputError
from engine.expr import Missing
from engine.schema.model import Household, id_check_digit
from engine.schema.validate import parse

EXAMPLE = json.loads((Path(__file__).parent.parent / "examples" / "liaoning_shenyang_family.json").read_text(encoding="utf-8"))


def errors_of(data):
    with pytest.raises(InputError) as e:
        parse(data)
    return {err.field: err for err in e.value.errors}


def mutate(path, value):
    h = copy.deepcopy(EXAMPLE)
    target = h
    for k in path[:-1]:
        target = target[k]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return h


@pytest.mark.parametrize(
    "path, value, field, zh",
    [
        (("area",), "town", "area", "取值无效"),
        (("locality",), "219999", "locality", "未知的行政区划代码"),
        (("locality",), "21010", "locality", "6位数字"),
        (("locality",), 210102, "locality", "6位数字"),
        (("as_of",), "2021/08/01", "as_of", "YYYY-MM-DD"),
        (("as_of",), "2021-02-30", "as_of", "不存在"),
        (("members", 1, "birth_date"), "2030-01-01", "members[1].birth_date", "晚于评估日期"),
        (("members", 0, "incomes", 0, "monthly"), "-5", "members[0].incomes[0].monthly", "负数"),
        (("members", 0, "incomes", 0, "monthly"), "1.005", "members[0].incomes[0].monthly", "两位小数"),
        (("members", 0, "incomes", 0, "type"), "salary", "members[0].incomes[0].type", "取值无效"),
        (("members", 1, "id"), "p1", "members[1].id", "重复"),
        (("members", 0, "disability"), {"category": "limb", "grade": 5}, "members[0].disability.grade", "1到4"),
        (("members", 0, "serious_ilness"), True, "members[0].serious_ilness", "不允许的字段"),
        (("members", 0, "relation"), KeyError, "members[0].relation", "缺少必填字段"),
        (("members",), [], "members", "至少"),
        (("assets", "financial"), "abc", "assets.financial", "金额格式无效"),
        (("members", 0, "hukou_locality"), "999999", "members[0].hukou_locality", "未知"),
    ],
)
def test_each_bad_field_is_named(path, value, field, zh):
    errs = errors_of(mutate(path, value))
    assert field in errs, list(errs)
    assert zh in errs[field].message_zh
    assert errs[field].message_en
    assert field in errs[field].message


def test_id_number_check_digit_and_birth_date():
    good = "21010219560501" + "123"
    good += id_check_digit(good)
    wrong_digit = good[:-1] + ("0" if good[-1] != "0" else "1")
    assert "members[0].id_number" in errors_of(mutate(("members", 0, "id_number"), wrong_digit))
    ok = mutate(("members", 0, "id_number"), good)
    parse(ok)  # matching birth date: accepted
    other_birth = mutate(("members", 0, "id_number"), good)
    other_birth["members"][0]["birth_date"] = "1956-05-02"
    err = errors_of(other_birth)["members[0].id_number"]
    assert "出生日期" in err.message_zh


def test_all_errors_reported_together():
    h = mutate(("area",), "town")
    h["members"][0]["birth_date"] = "bad"
    assert {"area", "members[0].birth_date"} <= set(errors_of(h))


def test_not_an_object():
    assert "(root)" in errors_of([1, 2])
    with pytest.raises(InputError):
        parse(b"{not json")


# The hand-written validator and the pydantic models (which document the contract in the
# OpenAPI schema) must accept and refuse the same inputs.
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(households(), broken_households()))
def test_validator_agrees_with_the_pydantic_model(data):
    try:
        parse(copy.deepcopy(data))
        ours = None
    except InputError as e:
        ours = {err.field for err in e.errors}
    try:
        Household.model_validate(copy.deepcopy(data))
        theirs = None
    except ValidationError:
        theirs = "refused"
    assert (ours is None) == (theirs is None), (ours, data)


def _norm(v):
    """Comparable form of parsed values (two Missing values are equal when they name the same facts)."""
    if isinstance(v, Missing):
        return ("Missing", sorted(v.keys))
    if isinstance(v, dict):
        return {k: _norm(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_norm(x) for x in v]
    return v


def _outcome(data, previous=None):
    try:
        p = parse(data, previous)
    except InputError as e:
        return "refused", sorted((err.field, err.message) for err in e.errors)
    return "ok", _norm((p.h, p.members))


# The monitor validates each new record with the previous one at hand (members given again
# unchanged are not checked again): that must never change what is accepted or what comes out.
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(households(), st.one_of(households(), broken_households()), st.data())
def test_validating_with_the_previous_record_changes_nothing(first, other, data):
    previous = parse(copy.deepcopy(first))
    # the next record: the same household with some members taken from another (or broken) record,
    # as_of moved either way, benefits perhaps changed
    nxt = copy.deepcopy(first)
    others = other.get("members") if isinstance(other, dict) and isinstance(other.get("members"), list) else []
    for i in range(len(nxt["members"])):
        if others and data.draw(st.booleans()):
            nxt["members"][i] = copy.deepcopy(others[i % len(others)])
    if data.draw(st.booleans()):
        nxt["members"].reverse()  # the same members at other places (their records hold their index)
    if data.draw(st.booleans()):
        nxt["as_of"] = data.draw(st.dates(min_value=dt.date(2018, 1, 1), max_value=dt.date(2027, 12, 31))).isoformat()
    if data.draw(st.booleans()):
        nxt["current_benefits"] = data.draw(st.lists(st.sampled_from(["dibao", "tekun", "dibao_edge"]), unique=True))
    assert _outcome(copy.deepcopy(nxt)) == _outcome(nxt, previous)


def test_a_member_given_again_unchanged_reuses_its_record_but_not_the_same_dict():
    data = copy.deepcopy(EXAMPLE)
    first = parse(data)
    again = parse(copy.deepcopy(data), first)
    assert _norm(again.members) == _norm(first.members)
    assert all(a is not b for a, b in zip(again.members, first.members, strict=True))  # evaluators may write to them


def test_with_the_previous_record_a_birth_after_an_earlier_as_of_is_still_refused():
    data = copy.deepcopy(EXAMPLE)
    newest = max(m["birth_date"] for m in data["members"])
    first = parse(copy.deepcopy(data))
    earlier = copy.deepcopy(data)
    earlier["as_of"] = (dt.date.fromisoformat(newest) - dt.timedelta(days=1)).isoformat()
    assert _outcome(copy.deepcopy(earlier))[0] == "refused"
    assert _outcome(earlier, first) == _outcome(copy.deepcopy(earlier))


def test_a_previous_record_stored_without_id_numbers_gives_the_same_records():
    # the monitor keeps records without ID numbers: an ID number only refuses, it adds nothing to a record
    data = copy.deepcopy(EXAMPLE)
    assert any("id_number" in m for m in data["members"])
    first = parse(copy.deepcopy(data))
    first.raw = {**first.raw, "members": [{k: v for k, v in m.items() if k != "id_number"} for m in first.raw["members"]]}
    stripped = copy.deepcopy(first.raw)
    assert _outcome(stripped, first) == _outcome(copy.deepcopy(stripped))

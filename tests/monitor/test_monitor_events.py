"""Bad events are refused whole, naming the field in Chinese and English; nothing is half-applied."""

from __future__ import annotations

import pytest
from helpers import WORKER, Driver, household

from engine.monitor.events import EVENT_TYPES, parse_event, parse_events, vocabulary
from engine.schema.model import InputError


def _fields(e: InputError) -> dict[str, tuple[str, str]]:
    return {x.field: (x.message_zh, x.message_en) for x in e.errors}


def test_every_bad_field_is_named_in_both_languages():
    with pytest.raises(InputError) as e:
        parse_event({"household_id": "", "type": "hospitalisation", "date": "2021-02-30", "member": "p1", "cost": "-5", "colour": "red"})
    f = _fields(e.value)
    assert set(f) == {"household_id", "date", "cost", "colour"}
    assert f["date"] == ("日期 2021-02-30 不存在", "2021-02-30 is not a calendar date")
    assert f["cost"][0] == "金额不能为负数"
    assert "不允许此字段" in f["colour"][0] and "unknown field" in f["colour"][1]


def test_unknown_type_required_fields_and_enums():
    with pytest.raises(InputError) as e:
        parse_event({"household_id": "h", "type": "lottery_win", "date": "2021-01-01"})
    assert "lottery_win" in _fields(e.value)["type"][1]
    with pytest.raises(InputError) as e:
        parse_event({"household_id": "h", "type": "income_change", "date": "2021-01-01", "income_type": "salary"})
    f = _fields(e.value)
    assert set(f) == {"member", "monthly", "income_type"}
    assert f["member"] == ("事件类型 income_change 需要此字段", "required for an event of type income_change")


def test_future_events_are_refused_and_lists_name_their_index():
    with pytest.raises(InputError) as e:
        parse_events([{"household_id": "h", "type": "tick", "date": "2021-01-01"}, {"household_id": "h", "type": "tick", "date": "2999-01-01"}])
    assert list(_fields(e.value)) == ["events[1].date"]


def test_the_vocabulary_is_documented():
    types = {v["type"] for v in vocabulary()}
    for t in ("income_change", "job_found", "job_lost", "illness_diagnosed", "hospitalisation", "disability_certified",
              "disability_regraded", "disaster", "accident", "death", "birth", "school_enrolled", "school_left",
              "member_moved_in", "member_moved_out", "benefit_started", "benefit_stopped", "register"):
        assert t in types and EVENT_TYPES[t][0]


def test_an_unregistered_household_or_unknown_member_is_refused(monitor):
    d = Driver(monitor, "NEW-1")
    with pytest.raises(InputError) as e:
        d.send("job_lost", "2021-09-01", member="p1")
    assert _fields(e.value)["household_id"][0].startswith("家庭 NEW-1 尚未纳入监测")
    d.register("2021-08-01", household(WORKER))
    state = d.state
    with pytest.raises(InputError) as e:
        d.send("job_lost", "2021-09-01", member="p9")
    assert _fields(e.value)["member"] == ("成员 p9 不在家庭 NEW-1 的记录中", "member 'p9' is not in household 'NEW-1'")
    assert d.state is state  # nothing applied


def test_a_bad_record_is_refused_with_the_path_inside_the_event(monitor):
    d = Driver(monitor)
    bad = household(WORKER)
    bad["members"][1]["birth_date"] = "2030-01-01"
    with pytest.raises(InputError) as e:
        d.register("2021-08-01", bad)
    assert "household.members[1].birth_date" in _fields(e.value)
    d.register("2021-08-01", household(WORKER))
    with pytest.raises(InputError) as e:
        d.send("member_moved_in", "2021-09-01", member_record={"id": "p3", "relation": "cousin", "birth_date": "1990-01-01"})
    assert "member_record.relation" in _fields(e.value)
    with pytest.raises(InputError) as e:
        d.send("birth", "2021-09-01", member="p1")
    assert _fields(e.value)["member"][1] == "member id 'p1' already exists"


def test_resident_id_numbers_are_not_kept_in_the_record(monitor):
    d = Driver(monitor)
    rec = household(WORKER)
    rec["members"][0]["id_number"] = "210102198003010011"
    rec["members"][0]["id_number"] = rec["members"][0]["id_number"][:17] + _check("21010219800301001")
    d.register("2021-08-01", rec)
    assert all("id_number" not in m for m in d.state.record["members"])


def _check(first17: str) -> str:
    from engine.schema.model import id_check_digit

    return id_check_digit(first17)

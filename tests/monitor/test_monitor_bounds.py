"""Monitoring events are bounded like households, and impossible facts are refused naming the field."""

from __future__ import annotations

import pytest
from helpers import WORKER, Driver, household

from engine.monitor.events import parse_event
from engine.schema.model import InputError
from engine.schema.money import MAX_YUAN

HUGE = 18446744073709551615  # the income of the issue: 2**64 - 1

# every money field of every event type, with what else the type needs
MONEY_EVENTS = [
    ("income_change", "monthly", {"member": "p1", "income_type": "wage"}),
    ("job_found", "monthly", {"member": "p1"}),
    ("illness_diagnosed", "cost", {"member": "p1"}),
    ("hospitalisation", "cost", {"member": "p1"}),
    ("disaster", "loss", {}),
    ("accident", "loss", {}),
    ("benefit_started", "monthly", {"program": "dibao"}),
]


def _fields(e: InputError) -> dict:
    return {x.field: x for x in e.errors}


@pytest.mark.parametrize("kind, field, extra", MONEY_EVENTS)
@pytest.mark.parametrize("value", [HUGE, MAX_YUAN + 1, f"{MAX_YUAN + 1}.00", float(MAX_YUAN + 1)])
def test_money_above_the_bound_is_refused_in_every_event_and_form(kind, field, extra, value):
    with pytest.raises(InputError) as e:
        parse_event({"household_id": "H-1", "type": kind, "date": "2021-09-01", field: value, **extra})
    err = _fields(e.value)[field]
    assert "过大" in err.message_zh and "too large" in err.message_en


@pytest.mark.parametrize("kind, field, extra", MONEY_EVENTS)
def test_the_largest_amount_is_held_by_the_monitor_and_its_rules_engine(monitor, kind, field, extra):
    # The bound must be below what durable-rules holds: before, 2**64 - 1 passed validation and
    # failed inside durable-rules ("Integer exceeds 64-bit range").
    d = Driver(monitor, f"MAX-{kind}")
    d.register("2021-08-01", household(WORKER))
    d.send(kind, "2021-09-01", **{field: f"{MAX_YUAN}.99", **extra})
    assert d.state.seq == 2


@pytest.mark.parametrize(
    "field, value",
    [
        ("household_id", "H\x001"),
        ("household_id", "H/1"),
        ("household_id", "H 1"),
        ("member", "p\x001"),
        ("member", "p/1"),
        ("event_id", "e#1"),
        ("event_id", "e\x001"),
    ],
)
def test_ids_outside_the_character_set_are_refused(field, value):
    ev = {"household_id": "H-1", "type": "job_lost", "date": "2021-09-01", "member": "p1", "event_id": "e-1", field: value}
    with pytest.raises(InputError) as e:
        parse_event(ev)
    assert "汉字" in _fields(e.value)[field].message_zh


@pytest.mark.parametrize("note", ["a\x00b", "a\x1bb", "a\u2028b", "a\u202eb", "a\x85b"])
def test_a_note_with_control_characters_is_refused(note):
    with pytest.raises(InputError) as e:
        parse_event({"household_id": "H-1", "type": "tick", "date": "2021-09-01", "note": note})
    assert "控制字符" in _fields(e.value)["note"].message_zh
    parse_event({"household_id": "H-1", "type": "tick", "date": "2021-09-01", "note": "第一行\n第二行\t完"})


def test_a_registered_household_with_an_unknown_event_type_is_refused(monitor):
    d = Driver(monitor, "EV-1")
    rec = household(WORKER, events=[{"type": "Fire", "date": "2021-07-01", "loss": "50000.00"}])
    with pytest.raises(InputError) as e:
        d.register("2021-08-01", rec)
    assert "fire（火灾）" in _fields(e.value)["household.events[0].type"].message_zh


def test_a_birth_before_a_parents_birth_is_refused(monitor):
    # the head (p1) was born 1980-03-01; a child cannot be born before, a parent not after
    older_child = household(WORKER)
    older_child["members"][1]["birth_date"] = "1979-01-01"
    with pytest.raises(InputError) as e:
        Driver(monitor, "B-0").register("2021-08-01", older_child)
    err = _fields(e.value)["household.members[1].birth_date"]
    assert "户主 p1" in err.message_zh and err.code == "impossible_date"
    d = Driver(monitor, "B-1")
    d.register("2021-08-01", household(WORKER))
    for rec in (
        {"id": "p3", "relation": "child", "birth_date": "1979-01-01"},
        {"id": "p3", "relation": "parent", "birth_date": "1990-01-01"},
    ):
        with pytest.raises(InputError) as e:
            d.send("member_moved_in", "2021-09-01", member_record=rec)
        assert _fields(e.value)["member_record.birth_date"].code == "impossible_date"
    with pytest.raises(InputError) as e:
        d.send("birth", "1979-01-01", member="p3")  # also before the household's registration
    assert "date" in _fields(e.value)
    d.send("birth", "2021-09-01", member="p3")
    d.send("member_moved_in", "2021-09-02", member_record={"id": "p4", "relation": "parent", "birth_date": "1950-01-01"})
    assert [m["id"] for m in d.state.record["members"]] == ["p1", "p2", "p3", "p4"]


def test_an_event_dated_before_registration_is_refused(monitor):
    d = Driver(monitor, "R-1")
    d.register("2021-08-01", household(WORKER))
    with pytest.raises(InputError) as e:
        d.send("job_lost", "2021-07-31", member="p1")
    assert "2021-08-01" in _fields(e.value)["date"].message_zh
    with pytest.raises(InputError):
        d.register("2021-07-01", household(WORKER))
    d.send("job_lost", "2021-08-01", member="p1")  # on the day of registration: recorded
    assert d.state.seq == 2


def test_the_death_of_a_member_already_deceased_is_refused(monitor):
    d = Driver(monitor, "D-1")
    d.register("2021-08-01", household(WORKER))
    d.send("death", "2021-09-01", member="p1")
    with pytest.raises(InputError) as e:
        d.send("death", "2021-10-01", member="p1")
    assert _fields(e.value)["member"].code == "already_deceased"
    assert d.state.seq == 2


def test_a_clock_tick_before_registration_is_not_refused(monitor):
    # `jiuzhu monitor tick --date D` visits every household, also those registered after D
    d = Driver(monitor, "T-0")
    d.register("2021-08-01", household(WORKER))
    d.send("tick", "2021-07-01")
    assert d.state.seq == 2

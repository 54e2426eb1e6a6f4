"""Every value a household may carry is bounded by what every store and component can hold.

Money has one bound in every form (text, JSON integer, JSON number); identifiers come from one
documented character set; free text holds no control characters; a household event's type comes
from a closed vocabulary, named in the refusal. The hand-written validator and the pydantic model
refuse the same inputs (both are checked here).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from engine import InputError
from engine.schema.model import Household
from engine.schema.money import MAX_FEN, MAX_YUAN, MoneyError, parse_money
from engine.schema.validate import parse
from engine.schema.vocab import HOUSEHOLD_EVENT_TYPES

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = json.loads((ROOT / "examples" / "liaoning_shenyang_family.json").read_text(encoding="utf-8"))
HUGE = 18446744073709551615  # the income of the issue: 2**64 - 1


def _with(path: tuple, value) -> dict:
    h = copy.deepcopy(EXAMPLE)
    target = h
    for k in path[:-1]:
        target = target[k]
    target[path[-1]] = value
    return h


def refused(data) -> dict:
    """The fields the validator names; the pydantic model must refuse the same input."""
    with pytest.raises(InputError) as e:
        parse(copy.deepcopy(data))
    with pytest.raises(ValidationError):
        Household.model_validate(copy.deepcopy(data))
    return {err.field: err for err in e.value.errors}


def accepted(data) -> None:
    parse(copy.deepcopy(data))
    Household.model_validate(copy.deepcopy(data))


# -- money: one bound in every form --------------------------------------------------------------


def test_the_money_bound_fits_a_signed_64_bit_integer_in_fen_summed_over_a_whole_household():
    # 50 members x 50 incomes, each at the bound, still fits what SQLite, PostgreSQL's bigint,
    # orjson and durable-rules hold
    assert MAX_FEN * 50 * 50 < 2**63 - 1
    assert parse_money(MAX_YUAN) == parse_money(f"{MAX_YUAN}") == parse_money(float(MAX_YUAN))
    assert parse_money(f"{MAX_YUAN}.99") * 100 == MAX_FEN


@pytest.mark.parametrize("value", [HUGE, MAX_YUAN + 1, f"{MAX_YUAN + 1}", f"{MAX_YUAN + 1}.00", float(MAX_YUAN + 1), 1e20, str(HUGE)])
def test_money_above_the_bound_is_refused_in_every_form(value):
    with pytest.raises(MoneyError) as e:
        parse_money(value)
    assert "过大" in e.value.zh and "too large" in e.value.en


@pytest.mark.parametrize(
    "path, field",
    [
        (("members", 0, "incomes", 0, "monthly"), "members[0].incomes[0].monthly"),  # the validator's fast path
        (("assets", "financial"), "assets.financial"),
        (("rigid_expenses", 0, "monthly"), "rigid_expenses[0].monthly"),
        (("current_amounts", "dibao"), "current_amounts.dibao"),
        (("events", 0, "loss"), "events[0].loss"),
    ],
)
def test_a_huge_json_integer_is_refused_wherever_money_goes(path, field):
    base = copy.deepcopy(EXAMPLE)
    base["rigid_expenses"] = [{"type": "medical", "monthly": "1.00"}]
    base["current_amounts"] = {"dibao": "1.00"}
    base["events"] = [{"type": "fire", "date": "2021-07-01", "loss": "1.00"}]
    accepted(base)
    target = base
    for k in path[:-1]:
        target = target[k]
    target[path[-1]] = HUGE
    errs = refused(base)
    assert field in errs, list(errs)
    assert "过大" in errs[field].message_zh


def test_the_largest_amount_is_accepted_as_integer_and_as_text():
    accepted(_with(("members", 0, "incomes", 0, "monthly"), MAX_YUAN))
    accepted(_with(("members", 0, "incomes", 0, "monthly"), f"{MAX_YUAN}.99"))


# -- identifiers -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    ["LN\x00001", "LN/2021/1", "a?b", "a#b", "50%", "LN 0001", " LN", "LN\t1", "LN\u20281", "..", ".hidden", "-x", "LN\u202e1", "ＬＮ１"],
)
def test_household_and_member_ids_outside_the_character_set_are_refused(bad):
    errs = refused(_with(("household_id",), bad))
    assert "household_id" in errs and "汉字" in errs["household_id"].message_zh
    errs = refused(_with(("members", 1, "id"), bad))
    assert "members[1].id" in errs


@pytest.mark.parametrize("good", ["LN-2021-0001", "和平区-0001", "21010219800301123X", "0042", "h_1.2", "㐀家"])
def test_numeric_lettered_chinese_and_id_number_shaped_ids_are_accepted(good):
    accepted(_with(("household_id",), good))
    accepted(_with(("members", 1, "id"), good))


# -- household events: a closed vocabulary, bounded extras ---------------------------------------------


@pytest.mark.parametrize("kind", ["Fire", "火灾", "fire ", "disaster", ""])
def test_an_unknown_household_event_type_is_refused_with_the_vocabulary(kind):
    errs = refused(_with(("events",), [{"type": kind, "date": "2021-07-01", "loss": "50000.00"}]))
    err = errs["events[0].type"]
    assert "fire（火灾）" in err.message_zh and "natural_disaster" in err.message_zh
    assert "fire" in err.message_en and repr(kind) in err.message_en


def test_every_emergency_a_locality_may_recognise_is_in_the_vocabulary():
    params = yaml.safe_load((ROOT / "policies" / "parameters.yaml").read_text(encoding="utf-8"))
    assert set(params["temporary.event_types"]["values"]) <= set(HOUSEHOLD_EVENT_TYPES)
    for kind in HOUSEHOLD_EVENT_TYPES:
        accepted(_with(("events",), [{"type": kind, "date": "2021-07-01", "loss": "1.00"}]))


@pytest.mark.parametrize(
    "extra, ok",
    [
        ({"about": "户主说明"}, True),
        ({"about": None, "n": 3, "x": 1.5, "flag": True}, True),
        ({"about": "a\x00b"}, False),
        ({"about": "x" * 501}, False),
        ({"n": HUGE}, False),
        ({"nested": {"a": 1}}, False),
        ({"list": [1, 2]}, False),
        ({f"k{i}": i for i in range(21)}, False),
    ],
)
def test_extra_fields_of_a_household_event_are_bounded(extra, ok):
    h = _with(("events",), [{"type": "fire", "date": "2021-07-01", "loss": "1.00", **extra}])
    if ok:
        accepted(h)
    else:
        assert any(f.startswith("events[0]") for f in refused(h))

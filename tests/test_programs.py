"""The programs beyond 低保/特困, their exclusions and the household summary.

Checked against oracles written here, independently of the rule files: every parent-status
combination for a child, the age boundaries, and properties over generated households.
"""

from __future__ import annotations

import copy
import datetime as dt
import itertools
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import PARENT_STATUSES, TAGS, households, money

from engine import InputError
from engine.explain.render import render_report

LOST = {"deceased", "declared_dead", "declared_missing"}
UNABLE = {"severe_disability", "serious_illness", "incarcerated", "compulsory_rehab", "restricted", "unreachable"}
GRANTED = {"eligible", "gradual_exit"}


def child_household(parents: list[str], birth_date: str = "2011-03-01", locality: str = "620722") -> dict:
    """A working grandparent (able to support, so no 特困) and one child with the given parents."""
    return {
        "household_id": "CHILD",
        "locality": locality,
        "as_of": "2021-08-01",
        "area": "rural",
        "assets": {"financial": "0", "vehicles": [], "properties": 1},
        "members": [
            {"id": "g1", "relation": "grandparent", "birth_date": "1960-01-01", "hukou_locality": locality,
             "supporters": "able", "incomes": [{"type": "wage", "monthly": "2500.00"}]},
            {"id": "c1", "relation": "grandchild", "birth_date": birth_date, "hukou_locality": locality,
             "supporters": "able", "parents": [{"status": s} for s in parents]},
        ],
    }  # fmt: skip


def expected_child_statuses(parents: list[str]) -> tuple[str, str]:
    """(orphan, unattended_child) by 国办发〔2010〕54号 and 民发〔2019〕62号, for a child under 18."""
    lost = sum(p in LOST for p in parents)
    unable = sum(p in UNABLE for p in parents)
    if len(parents) == 2:
        orphan = "eligible" if lost == 2 else "ineligible"
        unattended = "eligible" if unable == 2 or (lost == 1 and unable == 1) else "ineligible"
    elif len(parents) == 1:
        orphan = "needs_info" if lost == 1 else "ineligible"
        unattended = "needs_info" if lost + unable == 1 else "ineligible"
    else:
        orphan = unattended = "ineligible"
    return orphan, unattended


PARENT_COMBINATIONS = [[]] + [[s] for s in PARENT_STATUSES] + [list(p) for p in itertools.product(PARENT_STATUSES, repeat=2)]


@pytest.mark.parametrize("parents", PARENT_COMBINATIONS, ids=lambda p: "+".join(p) or "none")
def test_every_parent_status_combination(engine, parents):
    det = engine.evaluate(child_household(parents))
    orphan, unattended = det.program("orphan", "c1"), det.program("unattended_child", "c1")
    assert (orphan["status"], unattended["status"]) == expected_child_statuses(parents)
    assert not (orphan["status"] == "eligible" and unattended["status"] == "eligible")
    for p in (orphan, unattended):
        if p["status"] == "eligible":
            assert p["monthly_amount"] == "1320.00"  # 民乐 L39; 事实无人抚养 follows the orphan standard
        if p["status"] == "needs_info":
            assert p["missing"] == ["members[1].parents"]
            assert p["monthly_amount"] is None


@pytest.mark.parametrize(
    "birth_date, minor", [("2003-08-02", True), ("2003-08-01", False), ("2004-02-29", True), ("2000-01-01", False)]
)
def test_child_programs_end_on_the_18th_birthday(engine, birth_date, minor):
    det = engine.evaluate(child_household(["deceased", "deceased"], birth_date))
    assert det.status("orphan", "c1") == ("eligible" if minor else "ineligible")
    det = engine.evaluate(child_household(["incarcerated", "unreachable"], birth_date))
    assert det.status("unattended_child", "c1") == ("eligible" if minor else "ineligible")


def test_orphan_education_starts_on_the_18th_birthday_in_quanzhou_only(engine):
    for birth, want in (("2003-08-02", "ineligible"), ("2003-08-01", "eligible")):
        h = child_household(["deceased", "declared_missing"], birth, "350502")
        h["members"][1]["schooling"] = "college"
        p = engine.evaluate(h).program("orphan_education", "c1")
        assert p["status"] == want
        assert p["monthly_amount"] is None
        assert p.get("annual_amount") == ("10000.00" if want == "eligible" else None)
    h = child_household(["deceased", "deceased"], "2000-01-01")  # 民乐: no 孤儿助学
    h["members"][1]["schooling"] = "college"
    assert engine.evaluate(h).program("orphan_education", "c1") is None


def elder(birth_date: str, **extra) -> dict:
    return {"id": "a1", "relation": "head", "birth_date": birth_date, "hukou_locality": "350502", "supporters": "able",
            "self_care": "full", **extra}  # fmt: skip


@pytest.mark.parametrize(
    "birth_date, home_care, subsidy",
    [
        ("1962-08-02", None, None),  # 59: neither program checks
        ("1961-08-01", "eligible", "ineligible"),  # 60, 低保: one of the seven groups; not 80, self-caring
        ("1941-08-02", "eligible", "ineligible"),  # 79
        ("1941-08-01", "eligible", "eligible"),  # 80: 高龄
    ],
)
def test_elderly_age_boundaries_in_a_dibao_household(engine, birth_date, home_care, subsidy):
    h = {"household_id": "E", "locality": "350502", "as_of": "2021-08-01", "area": "urban",
         "assets": {"financial": "0", "vehicles": [], "properties": 1}, "members": [elder(birth_date)]}  # fmt: skip
    det = engine.evaluate(h)
    assert det.status("dibao") == "eligible"
    assert det.status("home_care_service", "a1") == home_care
    assert det.status("elderly_subsidy", "a1") == subsidy


def test_home_care_for_80_year_olds_does_not_depend_on_income(engine):
    for birth, want in (("1941-08-01", "eligible"), ("1941-08-02", "ineligible")):
        h = {"household_id": "E", "locality": "350502", "as_of": "2021-08-01", "area": "urban",
             "assets": {"financial": "900000", "vehicles": [], "properties": 3},
             "members": [elder(birth, incomes=[{"type": "pension", "monthly": "9000.00"}])]}  # fmt: skip
        p = engine.evaluate(h).program("home_care_service", "a1")
        assert p["status"] == want
        if want == "eligible":
            assert p["monthly_service_value"] == "20.00" and p["monthly_amount"] is None


def test_tekun_child_gets_the_higher_of_tekun_and_orphan(engine):
    h = child_household(["deceased", "deceased"])
    h["members"][0]["incomes"] = []
    h["members"][0]["birth_date"] = "1950-01-01"
    h["members"][1]["supporters"] = "unable"
    det = engine.evaluate(h)
    tekun, orphan = det.program("tekun", "c1"), det.program("orphan", "c1")
    assert tekun["status"] == orphan["status"] == "eligible"
    assert tekun["paid"] is False and tekun["excluded_by"] == "orphan"
    assert "paid" not in orphan
    why = [r for r in tekun["reasons"] if r["kind"] == "interaction"]
    assert why and "就高" in why[0]["text"] and "项目默认值" in why[0]["text"]
    assert [p["program"] for p in det["summary"]["paid"] if p["members"] == ["c1"]] == ["orphan"]


def test_summary_report_section(engine):
    h = child_household(["deceased", "deceased"])
    det = engine.evaluate(h)
    report = render_report(det)
    assert "救助金额合计" in report and det["summary"]["monthly_total"] in report


def test_event_locality_must_be_a_known_code(engine):
    h = child_household([])
    h["events"] = [{"type": "fire", "date": "2021-07-01", "loss": "100.00", "locality": "999999"}]
    with pytest.raises(InputError) as e:
        engine.evaluate(h)
    assert [err.field for err in e.value.errors] == ["events[0].locality"]


def test_null_for_a_list_is_refused_by_name(engine):
    h = child_household([])
    h["members"][1]["parents"] = None
    with pytest.raises(InputError) as e:
        engine.evaluate(h)
    assert [err.field for err in e.value.errors] == ["members[1].parents"]


# -- properties over generated households --------------------------------------------------------

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
AMOUNT_FIELD = {"monthly": "monthly_amount", "annual": "annual_amount", "one_off": "one_off_amount"}


def _paid(p: dict) -> bool:
    return p["status"] in GRANTED and p.get("paid", True) is not False


@st.composite
def needy_households(draw):
    """Poor households with children, elders and disabled members, where programs overlap."""
    locality = draw(st.sampled_from(["620722", "210102", "350502"]))
    as_of = draw(st.dates(min_value=dt.date(2021, 7, 1), max_value=dt.date(2023, 12, 31)))
    members = []
    for i in range(draw(st.integers(1, 4))):
        child = draw(st.booleans())
        years = draw(st.integers(0, 19) if child else st.integers(19, 95))
        birth = as_of.replace(year=as_of.year - years, day=min(as_of.day, 28)) - dt.timedelta(days=draw(st.integers(0, 364)))
        m = {
            "id": f"m{i}",
            "relation": "head" if i == 0 else draw(st.sampled_from(["spouse", "child", "grandchild", "parent"])),
            "birth_date": birth.isoformat(),
            "hukou_locality": locality,
            "supporters": draw(st.sampled_from(["none", "unable", "able"])),
            "self_care": draw(st.sampled_from(["full", "partial", "none"])),
            "incomes": draw(st.lists(st.fixed_dictionaries({"type": st.just("wage"), "monthly": money}), max_size=1)),
            "schooling": draw(st.sampled_from(["none", "compulsory", "vocational", "college"])),
        }
        if child:
            m["parents"] = draw(st.lists(st.fixed_dictionaries({"status": st.sampled_from(PARENT_STATUSES)}), max_size=2))
        if draw(st.integers(0, 3)) == 0:
            m["disability"] = {
                "category": draw(st.sampled_from(["limb", "intellectual", "mental"])),
                "grade": draw(st.integers(1, 4)),
            }
        if draw(st.integers(0, 4)) == 0:
            m["status"] = ["deceased"]
        m["tags"] = draw(st.lists(st.sampled_from(TAGS), max_size=2, unique=True))
        members.append(m)
    h = {
        "household_id": "NEEDY",
        "locality": locality,
        "as_of": as_of.isoformat(),
        "area": draw(st.sampled_from(["urban", "rural"])),
        "members": members,
        "assets": {"financial": draw(money), "vehicles": [], "properties": 1},
    }
    if draw(st.booleans()):
        h["events"] = [
            {"type": "fire", "date": (as_of - dt.timedelta(days=draw(st.integers(0, 120)))).isoformat(), "loss": draw(money)}
        ]
    if draw(st.booleans()):
        h["rigid_expenses"] = [{"type": "medical", "monthly": draw(money)}]
    return h


@SETTINGS
@given(st.one_of(households(), needy_households()))
def test_exclusions_and_the_household_summary(engine, h):
    det = engine.evaluate(copy.deepcopy(h))
    programs = det["programs"]
    s = det["summary"]

    # no one is paid two programs that exclude each other
    for mid in {p["members"][0] for p in programs if p["scope"] == "member"}:
        paid = {p["program"] for p in programs if p["scope"] == "member" and p["members"] == [mid] and _paid(p)}
        assert not {"orphan", "unattended_child"} <= paid
        assert len(paid & {"tekun", "orphan", "unattended_child"}) <= 1
        assert not (det.status("orphan", mid) == "eligible" and det.status("unattended_child", mid) == "eligible")
    assert not (det.status("dibao") in GRANTED and det.status("dibao_edge") in GRANTED)
    if det.program("dibao") and _paid(det.program("dibao")):
        for mid in det.program("dibao")["members"]:
            assert not (det.program("dibao_single", mid) and _paid(det.program("dibao_single", mid)))

    # a program not paid because of another one says why, and names a paid program
    for p in programs:
        if p.get("paid") is False:
            assert p["status"] in GRANTED
            assert any(r["kind"] == "interaction" and r["passed"] is False for r in p["reasons"])
            assert p["excluded_by"] in {q["program"] for q in programs if _paid(q)}

    # every granted or undecided program is listed exactly once, and only those
    listed = [(x["program"], tuple(x["members"])) for key in ("paid", "not_paid", "non_cash") for x in s[key]]
    expected = [(p["program"], tuple(p["members"])) for p in programs if p["status"] in GRANTED | {"needs_info"}]
    assert sorted(listed) == sorted(expected)
    for x in s["paid"]:
        p = next(q for q in programs if q["program"] == x["program"] and q["members"] == x["members"])
        assert _paid(p)

    # totals are the sums of the amounts listed as paid, per kind; nothing is counted twice
    for kind, field in AMOUNT_FIELD.items():
        items = [Decimal(x[field]) for x in s["paid"] if field in x]
        assert Decimal(s[f"{kind}_total"]) == sum(items, Decimal(0))
        assert all(v >= 0 for v in items)
    for x in s["paid"]:
        assert sum(f in x for f in AMOUNT_FIELD.values()) == 1
    assert s["complete"] == (not any(x["reason"] in ("needs_info", "amount_unknown") for x in s["not_paid"]) and not s["review"])

    # 临时救助 never suggests more than the hardship it answers
    t = det.program("temporary")
    if t and t.get("one_off_amount") and t["details"]["hardship"]:
        assert Decimal(t["one_off_amount"]) <= Decimal(t["details"]["hardship"])

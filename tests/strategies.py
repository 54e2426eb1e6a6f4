"""Hypothesis strategies for households in the contract's space (valid ones and broken ones)."""

from __future__ import annotations

import datetime as dt

from hypothesis import strategies as st

from engine.schema import vocab
from engine.schema.model import id_check_digit

LOCALITIES = ["210102", "210000", "620722", "500152", "350502", "350500", "110101", "100000", "441900"]
INCOME_TYPES = list(vocab.INCOME_TYPES)
STATUSES = list(vocab.MEMBER_STATUSES)
PARENT_STATUSES = list(vocab.PARENT_STATUSES)
PROGRAMS = ["dibao", "dibao_single", "tekun", "dibao_edge", "orphan", "unattended_child", "disability_living"]
TAGS = ["left_behind", "priority_veteran", "family_planning_special", "poverty_registered", "needs_long_term_care"]
EVENT_TYPES = ["fire", "flood", "traffic_accident", "serious_illness", "epidemic", "income_drop"]

money = st.integers(min_value=0, max_value=600_000).map(lambda c: f"{c // 100}.{c % 100:02d}")
dates = st.dates(min_value=dt.date(2019, 1, 1), max_value=dt.date(2026, 12, 31))


@st.composite
def incomes(draw):
    return draw(st.lists(st.fixed_dictionaries({"type": st.sampled_from(INCOME_TYPES), "monthly": money}), max_size=3))


@st.composite
def member(draw, index: int, as_of: dt.date, locality: str):
    birth = draw(st.dates(min_value=dt.date(1925, 1, 1), max_value=as_of))
    m = {
        "id": f"p{index + 1}",
        "relation": "head"
        if index == 0
        else draw(st.sampled_from(["spouse", "child", "parent", "grandparent", "grandchild", "sibling", "other"])),
        "birth_date": birth.isoformat(),
        "incomes": draw(incomes()),
    }
    if draw(st.booleans()):
        m["hukou_locality"] = draw(st.sampled_from([locality, locality, "110101", "620702"]))
    if draw(st.integers(0, 4)) == 0:
        m["disability"] = {
            "category": draw(st.sampled_from(["visual", "hearing", "speech", "limb", "intellectual", "mental", "multiple"])),
            "grade": draw(st.integers(1, 4)),
        }
    m["serious_illness"] = draw(st.booleans())
    if draw(st.booleans()):
        m["self_care"] = draw(st.sampled_from(["full", "partial", "none"]))
    m["schooling"] = draw(
        st.sampled_from(["none", "preschool", "compulsory", "high_school", "vocational", "college", "graduate"])
    )
    m["employed"] = draw(st.booleans())
    if draw(st.integers(0, 5)) == 0:
        m["status"] = draw(st.lists(st.sampled_from(STATUSES), max_size=2, unique=True))
    if draw(st.integers(0, 4)) > 0:
        m["supporters"] = draw(st.sampled_from(["none", "unable", "able"]))
    if draw(st.integers(0, 2)) == 0:
        m["parents"] = draw(st.lists(st.fixed_dictionaries({"status": st.sampled_from(PARENT_STATUSES)}), max_size=2))
    if draw(st.integers(0, 3)) == 0:
        m["tags"] = draw(st.lists(st.sampled_from(TAGS), max_size=2, unique=True))
    if draw(st.integers(0, 5)) == 0:
        m["current_benefits"] = draw(st.lists(st.sampled_from(PROGRAMS), max_size=2, unique=True))
    if draw(st.integers(0, 3)) == 0:
        first17 = "210102" + birth.strftime("%Y%m%d") + f"{draw(st.integers(0, 999)):03d}"
        m["id_number"] = first17 + id_check_digit(first17)
    return m


@st.composite
def event(draw, as_of: dt.date, locality: str):
    e = {
        "type": draw(st.sampled_from(EVENT_TYPES)),
        "date": draw(st.dates(min_value=as_of - dt.timedelta(days=200), max_value=as_of)).isoformat(),
    }
    if draw(st.integers(0, 5)) > 0:
        e["loss"] = draw(money)
    if draw(st.booleans()):
        e["locality"] = draw(st.sampled_from([locality, "110101"]))
    return e


@st.composite
def households(draw, with_current_amounts: bool = True):
    locality = draw(st.sampled_from(LOCALITIES))
    as_of = draw(dates)
    n = draw(st.integers(1, 6))
    h = {
        "household_id": f"H-{draw(st.integers(0, 10**6))}",
        "locality": locality,
        "as_of": as_of.isoformat(),
        "area": draw(st.sampled_from(["urban", "rural"])),
        "members": [draw(member(i, as_of, locality)) for i in range(n)],
    }
    if draw(st.integers(0, 5)) > 0:
        h["assets"] = {
            "financial": draw(st.one_of(money, st.integers(0, 60_000).map(str))),
            "vehicles": draw(st.lists(st.fixed_dictionaries({"exempt": st.booleans()}), max_size=2)),
            "properties": draw(st.integers(0, 2)),
        }
    if draw(st.booleans()):
        h["rigid_expenses"] = draw(
            st.lists(
                st.fixed_dictionaries(
                    {
                        "type": st.sampled_from(["medical", "rehabilitation", "care", "education", "housing", "other"]),
                        "monthly": money,
                    }
                ),
                max_size=3,
            )
        )
    if draw(st.integers(0, 2)) == 0:
        h["events"] = draw(st.lists(event(as_of, locality), max_size=2))
    if draw(st.booleans()):
        h["current_benefits"] = draw(st.lists(st.sampled_from(PROGRAMS), max_size=3, unique=True))
        if with_current_amounts and draw(st.booleans()):
            h["current_amounts"] = {"dibao": draw(money)}
    return h


json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["2021-02-30", "urban", "wage", "-1", "1e5", "210102", "", "X"]),
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(st.text(max_size=8), children, max_size=4)),
    max_leaves=12,
)


def _paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, (*prefix, i))


@st.composite
def broken_households(draw):
    """A valid household with one value somewhere replaced, removed or added at random."""
    h = draw(households())
    paths = [p for p in _paths(h) if p]
    path = draw(st.sampled_from(paths))
    parent = h
    for k in path[:-1]:
        parent = parent[k]
    action = draw(st.sampled_from(["replace", "delete", "add"]))
    if action == "replace":
        parent[path[-1]] = draw(json_values)
    elif action == "delete":
        if isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent.pop(path[-1])
    elif isinstance(parent, dict):
        parent[draw(st.text(min_size=1, max_size=8))] = draw(json_values)
    return h

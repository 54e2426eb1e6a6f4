"""The columnar backend follows any rule file, not only today's four programs.

Two fixture programs (tests/batch/generic_rules) use constructs the core rules do not:
events with unknown losses, parents, nested comprehensions (incomes of a filtered list
of members; members seen from a member program), dates (days, months, add_months,
date literals), ``none`` in comparisons and if/else, gates, applies_if, parts with an
unconfigured optional part, a decision clause after a non-final ineligible one, and
results of earlier programs. Batch and single evaluator must agree household by
household.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
from batch_helpers import compare_parsed, compare_tables, unique_ids
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import households

from engine import Engine, load_rulebook

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent / "generic_rules"


@pytest.fixture(scope="module")
def generic_engine(tmp_path_factory):
    home = tmp_path_factory.mktemp("generic")
    shutil.copytree(ROOT / "rules", home / "rules")
    shutil.copytree(ROOT / "policies", home / "policies")
    for f in FIXTURES.glob("*.yaml"):
        shutil.copy(f, home / "rules" / f.name)
    book = load_rulebook(home)
    assert not book.errors, book.errors
    assert {"temporary", "elderly_subsidy"} <= {p.code for p in book.programs}
    return Engine(book)


@st.composite
def with_events(draw):
    h = draw(households())
    as_of = dt.date.fromisoformat(h["as_of"])
    events = []
    for _ in range(draw(st.integers(0, 3))):
        e = {
            "type": draw(st.sampled_from(["fire", "flood", "serious_illness"])),
            "date": (as_of - dt.timedelta(days=draw(st.integers(0, 200)))).isoformat(),
        }
        if draw(st.booleans()):
            e["loss"] = f"{draw(st.integers(0, 5_000_000)) / 100:.2f}"
        events.append(e)
    if events:
        h["events"] = events
    for m in h["members"]:
        if draw(st.integers(0, 3)) == 0:
            m["tags"] = ["left_behind"]
    return h


SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@SETTINGS
@given(st.lists(with_events(), min_size=1, max_size=30).map(unique_ids))
def test_generic_programs_match_the_single_evaluator(generic_engine, pop):
    assert compare_parsed(generic_engine, pop) == []


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(with_events(), min_size=1, max_size=30).map(unique_ids))
def test_generic_programs_through_tables_with_an_events_table(generic_engine, pop):
    assert compare_tables(generic_engine, pop, "parquet") == []

"""Exact columnar arithmetic: rounding, division, dates, overflow falls back instead of wrapping."""

from __future__ import annotations

import datetime as dt

import numpy as np
from batch_helpers import compare_parsed
from gmpy2 import mpq
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.batch.run import BatchEvaluator
from engine.columnar import values as X
from engine.columnar.columns import from_parsed
from engine.expr import runtime
from engine.schema.money import to_cents
from engine.schema.validate import parse


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(-(10**12), 10**12), min_size=1, max_size=20), st.integers(1, 10**5))
def test_to_cents_rounds_half_up_like_the_single_evaluator(nums, den):
    n = np.array(nums, dtype=np.int64)
    got = X.to_cents(X.Num(n, den, int(np.abs(n).max())))
    assert got.tolist() == [to_cents(mpq(v, den)) for v in nums]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 10**9), min_size=1, max_size=12), st.lists(st.integers(0, 8), min_size=1, max_size=12))
def test_division_by_a_count_stays_exact(nums, counts):
    k = min(len(nums), len(counts))
    a = np.array(nums[:k], dtype=np.int64)
    c = np.array(counts[:k], dtype=np.int64)
    q = X.div(X.Num(a, 100, int(a.max())), X.Num(c, 1, 8))
    for i in range(k):
        if c[i]:
            assert mpq(int(q.n[i]), q.d) == mpq(int(a[i]), 100) / int(c[i])


@settings(max_examples=300, deadline=None)
@given(
    st.dates(dt.date(1900, 1, 1), dt.date(2100, 12, 31)),
    st.dates(dt.date(1900, 1, 1), dt.date(2100, 12, 31)),
    st.integers(-40, 40),
)
def test_date_functions_match_the_runtime(a, b, months):
    ya, yb = np.array([X.ymd(a)]), np.array([X.ymd(b)])
    assert int(X.years_between(ya, yb)[0]) == runtime.years_between(a, b)
    assert int(X.months_between(ya, yb)[0]) == runtime.months_between(a, b)
    assert int(X.days_between(ya, yb)[0]) == (b - a).days
    d = runtime.add_months(a, months)
    assert int(X.add_months(ya, months)[0]) == X.ymd(d)


def test_select_blends_masks_and_numbers():
    c = np.array([True, False, True])
    assert X.select(c, np.array([1, 2, 3]), np.array([7, 8, 9])).tolist() == [1, 8, 3]
    assert X.select(c, 5, 0).tolist() == [5, 0, 5]
    assert X.select(c, np.array([True, True, False]), False).tolist() == [True, False, False]
    assert X.select(True, 1, 2) == 1 and X.select(False, 1, 2) == 2


def test_int32_widens_before_it_could_overflow():
    a = X.Num(np.array([2_000_000_000], dtype=np.int32), 1, 2_000_000_000)
    s = X.add(a, a)
    assert s.n.dtype == np.int64 and int(s.n[0]) == 4_000_000_000


def test_chunks_that_could_overflow_are_evaluated_by_the_single_evaluator(engine, monkeypatch):
    """When a proven bound exceeds the int64 budget the chunk falls back, and results stay equal."""
    import json
    from pathlib import Path

    from engine.columnar.verify import batch_outcomes, single_outcomes

    monkeypatch.setattr(X, "LIMIT", 10**6)  # every realistic amount now "could overflow"
    hs = [json.loads(p.read_text()) for p in sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.json"))]
    be = BatchEvaluator(engine, threads=1)
    part = from_parsed([parse(h) for h in hs], be.I, be.need_h, be.need_m)
    res = be.evaluate_part(part)
    assert res.fallback >= len(hs) - 1  # (Tongnan, with no standard configured, stays small)
    for i, h in enumerate(hs):
        assert batch_outcomes(res, part, be.plan, i) == single_outcomes(engine.evaluate(h))


def test_a_household_exactly_at_the_standard_is_judged_exactly(engine):
    """Minle's 6934/12 standard: one fen either side of the exact per-capita threshold."""

    def hh(hid, wage):
        return {
            "household_id": hid,
            "locality": "620722",
            "as_of": "2021-08-01",
            "area": "urban",
            "members": [
                {
                    "id": "p1",
                    "relation": "head",
                    "birth_date": "1980-01-01",
                    "hukou_locality": "620722",
                    "supporters": "able",
                    "incomes": [{"type": "wage", "monthly": wage}],
                },
                {"id": "p2", "relation": "spouse", "birth_date": "1980-01-01", "hukou_locality": "620722", "supporters": "able"},
            ],
            "assets": {"financial": "0", "properties": 1},
        }

    # 2 × 6934/12 = 1155.666…: 1155.66 is below, 1155.67 above
    pop = [hh("A", "1155.66"), hh("B", "1155.67"), hh("C", "577.83")]
    assert compare_parsed(engine, pop) == []

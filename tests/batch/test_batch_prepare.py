"""Between the columns and the results: grouping, chunks laid out through one permutation per part,
results put back in input order, and the member programs' per-household totals."""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest

from engine.batch import run as run_module
from engine.batch import synth
from engine.batch.run import BatchEvaluator, _dense
from engine.batch.tables import Source, build_part
from engine.columnar.vectorize import is_granted
from engine.columnar.verify import batch_outcomes, single_outcomes


@pytest.fixture(scope="module")
def population(tmp_path_factory):
    d = tmp_path_factory.mktemp("pop")
    synth.write(d, "210000", 1200, seed=11)
    return d


def _evaluate(engine, population, target: int, threads: int):
    old = run_module.TARGET_ELEMENTS
    run_module.TARGET_ELEMENTS = target
    try:
        be = BatchEvaluator(engine, threads=threads)
        part = build_part(next(Source(population).parts()), be.I, be.need_h, be.need_m, None)
        res = be.evaluate_part(part)
        res.assemble()
        return part, res, be
    finally:
        run_module.TARGET_ELEMENTS = old


def test_results_do_not_depend_on_how_groups_are_cut_into_chunks(engine, population):
    _part, whole, _be = _evaluate(engine, population, 1 << 19, 1)
    _part, cut, _be = _evaluate(engine, population, 16, 2)
    assert cut.chunks > 3 * cut.groups and whole.chunks == whole.groups
    for name in ("household", "member", "member_totals"):
        a, b = getattr(whole, name), getattr(cut, name)
        assert a.keys() == b.keys()
        for key in a:
            assert a[key].dtype == b[key].dtype and np.array_equal(a[key], b[key]), (name, key)
    for key, (vals, null) in whole.facts.items():
        assert np.array_equal(vals, cut.facts[key][0]) and np.array_equal(null, cut.facts[key][1]), key


def test_member_totals_are_sums_over_each_households_members(engine, population):
    part, res, be = _evaluate(engine, population, 16, 2)
    starts = part.offsets[:-1]
    totals = res.member_totals
    members = [p for p in be.plan.programs if p.member]
    assert set(totals) == {f"{p.code}.{k}" for p in members for k in ("granted_members", "paid_cents")}
    for p in members:
        mm = res.member
        granted = np.add.reduceat(is_granted(mm[p.code + ".status"]).astype(np.int64), starts)
        paid = np.add.reduceat(np.where(mm[p.code + ".paid"] & ~mm[p.code + ".null"], mm[p.code + ".cents"], 0), starts)
        assert totals[p.code + ".granted_members"].dtype == np.int64
        assert np.array_equal(totals[p.code + ".granted_members"], granted), p.code
        assert np.array_equal(totals[p.code + ".paid_cents"], paid), p.code
    # not vacuous: households with several granted members, and money paid to members
    assert max(int(totals[p.code + ".granted_members"].max()) for p in members) > 1
    assert sum(int(totals[p.code + ".paid_cents"].sum()) for p in members) > 0


def test_results_come_back_in_input_order(engine, population):
    """Each household's and member's result sits at its own row, whatever group it was evaluated in."""
    part, res, be = _evaluate(engine, population, 16, 2)
    sizes = part.sizes()
    # one household of every size, from the end of the part (last in input order, rarely first in a group)
    rows = [int(np.flatnonzero(sizes == n)[-1]) for n in np.unique(sizes)]
    assert len(rows) > 3
    for i in rows:
        assert batch_outcomes(res, part, be.plan, i) == single_outcomes(engine.evaluate(part.contract(i)))


@pytest.mark.parametrize(
    "values",
    [
        np.array([7, 3, 7, 7, 12, 3], dtype=np.int32),
        np.array([20210801] * 5, dtype=np.int64),
        np.array([5, -(1 << 40), 5, 1 << 40], dtype=np.int64),  # range too wide for a table
        np.broadcast_to(np.int64(4), (3,)),
        np.zeros(0, dtype=np.int32),
    ],
)
def test_dense_codes_are_np_unique(values):
    got, inv = _dense(values)
    want, want_inv = np.unique(values, return_inverse=True)
    assert got.tolist() == want.tolist() and inv.tolist() == want_inv.tolist()


def test_prepared_order_is_input_order_through_the_permutations(engine, population):
    part, res, be = _evaluate(engine, population, 16, 2)
    assert sorted(res.hperm.tolist()) == list(range(part.H)) and sorted(res.mperm.tolist()) == list(range(part.M))
    assert set(res.member) == {f"{p.code}.{f}" for p in be.plan.programs if p.member for f, _d, _fill in run_module.FIELDS}
    for key in [*res.household, *res.member]:
        perm = res.mperm if key in res.member else res.hperm
        got = res.prepared(key)
        want = (res.member if key in res.member else res.household)[key]
        assert got.dtype == want.dtype and np.array_equal(got, want[perm]), key
    with pytest.raises(KeyError):
        res.member["dibao.status"]  # a household program


def test_a_part_result_is_freed_as_soon_as_its_last_reference_goes(engine, population):
    """Results are not kept until the next garbage collection: a streamed run holds few parts at once."""
    _part, res, _be = _evaluate(engine, population, 1 << 19, 1)
    assert len(res.member) and len(res.household) and res.facts and res.member_totals
    ref = weakref.ref(res)
    gc.disable()
    try:
        del res
        assert ref() is None
    finally:
        gc.enable()


def test_asking_whether_a_result_exists_does_not_make_it(engine, population):
    _part, res, _be = _evaluate(engine, population, 1 << 19, 1)
    res._made.clear()
    assert "tekun.status" in res.member and "tekun.status" not in res.household and "nope" not in res.member
    assert not res._made

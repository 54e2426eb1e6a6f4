"""The long member results carry the same information as the wide members table, for every member."""

from __future__ import annotations

import dataclasses
import json
from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_batch_tables import _csv_population

from engine.batch import synth
from engine.batch.build import _LazyStrings
from engine.batch.job import evaluate_population, result_tables, run_batch
from engine.batch.results import AMOUNT_COLUMN
from engine.batch.tables import PopulationError


@pytest.fixture(scope="module")
def outputs(engine, tmp_path_factory):
    root = tmp_path_factory.mktemp("outputs")
    synth.write(root / "pop", "210000", 3000, seed=7)
    # small parts: several row groups, each with its own dictionaries
    run_batch(engine, root / "pop", root / "long", part_size=700)
    run_batch(engine, root / "pop", root / "wide", part_size=700, members="wide")
    return root


def test_the_wide_members_table_is_rebuilt_from_the_long_one(outputs):
    wide = pq.read_table(outputs / "wide" / "members.parquet")
    long = pq.read_table(outputs / "long" / "member_programs.parquet")
    assert not (outputs / "long" / "members.parquet").exists()
    pays = json.loads(long.schema.metadata[b"jiuzhu.pays"])
    omitted = json.loads(long.schema.metadata[b"jiuzhu.omitted"])
    assert any(o["status"] == "ineligible" for o in omitted.values())  # the plain ineligible pairs are left out too
    programs = [c[: -len("_status")] for c in wide.column_names if c.endswith("_status")]
    assert sorted(programs) == sorted(pays)
    rebuilt: dict[tuple[str, str], dict] = {}
    for r in long.to_pylist():
        key = (r["household_id"], r["member_id"])
        row = rebuilt.setdefault(key, {})
        c = r["program"]
        assert f"{c}_status" not in row, "a member × program pair written twice"
        row[f"{c}_status"] = r["status"]
        if AMOUNT_COLUMN.get(pays[c]):
            row[f"{c}_{AMOUNT_COLUMN[pays[c]]}"] = r["amount"]
        else:
            assert r["amount"] is None
        row[f"{c}_paid"] = r["paid"]
        row[f"{c}_first_failed"] = r["first_failed"]
    written = 0
    for w in wide.to_pylist():
        got = rebuilt.pop((w["household_id"], w["member_id"]), {})
        expected = {k: v for k, v in w.items() if k not in ("household_id", "member_id")}
        full = dict(got)
        for c in programs:
            if f"{c}_status" not in got:  # a pair not written has the program's omitted outcome and no amount
                written_before = len(full)
                full[f"{c}_status"] = omitted[c]["status"]
                full[f"{c}_first_failed"] = omitted[c]["first_failed"]
                full[f"{c}_paid"] = None
                if AMOUNT_COLUMN.get(pays[c]):
                    full[f"{c}_{AMOUNT_COLUMN[pays[c]]}"] = None
                assert len(full) > written_before
        assert full == expected, w["member_id"]
        written += len(got)
    assert not rebuilt, "the long table names members the wide table does not"
    assert written and long.num_rows < wide.num_rows * len(programs)


def test_households_are_the_same_whichever_member_shape(outputs):
    a = pq.read_table(outputs / "long" / "households.parquet")
    b = pq.read_table(outputs / "wide" / "households.parquet")
    assert a.equals(b)


def test_a_population_refused_in_a_later_part_leaves_no_results(engine, tmp_path):
    """Parts are written while the next is read: a bad row in the last part still leaves nothing."""
    pop = _csv_population(tmp_path, lambda h, m: (h, [*m[:-1], {**m[-1], "relation": "x"}]))
    out = tmp_path / "out"
    out.mkdir()
    for members in ("long", "wide"):
        with pytest.raises(PopulationError) as e:
            run_batch(engine, pop, out, part_size=1, members=members)
        assert any(err.column == "relation" for err in e.value.errors)
        assert list(out.iterdir()) == []


def test_the_household_summaries_of_member_programs_add_up_the_member_rows(outputs):
    """``<code>_eligible_members`` and the member programs' totals per household are the members' own rows
    counted and added up again (every household, with its members in several parts)."""
    hh = pq.read_table(outputs / "wide" / "households.parquet").to_pylist()
    members = pq.read_table(outputs / "wide" / "members.parquet").to_pylist()
    programs = [c[: -len("_eligible_members")] for c in hh[0] if c.endswith("_eligible_members")]
    assert programs
    count: dict[tuple[str, str], int] = {}
    paid: dict[tuple[str, str], Decimal] = {}
    for m in members:
        for c in programs:
            key = (m["household_id"], c)
            granted = m[f"{c}_paid"] is not None  # `paid` is given exactly where the program is granted
            count[key] = count.get(key, 0) + granted
            amount = next((m[f"{c}_{col}"] for col in AMOUNT_COLUMN.values() if f"{c}_{col}" in m), None)
            if m[f"{c}_paid"] and amount is not None:
                paid[key] = paid.get(key, Decimal(0)) + amount
    nonzero = 0
    for h in hh:
        for c in programs:
            key = (h["household_id"], c)
            assert h[f"{c}_eligible_members"] == count.get(key, 0), key
            column = next((f"{c}_{col}" for col in AMOUNT_COLUMN.values() if f"{c}_{col}" in h), None)
            if column:
                assert h[column] == paid.get(key, Decimal(0)), key
                nonzero += h[column] != 0
    assert nonzero and any(count.values())


def _decoded(t: pa.Table) -> pa.Table:
    return pa.table([c.cast(c.type.value_type) if pa.types.is_dictionary(c.type) else c for c in t.columns], names=t.column_names)


def test_ids_read_as_dictionaries_make_the_same_tables(engine, outputs):
    """A reader may keep the ids' dictionary codes (Parquet dictionary columns): the result tables hold the same ids."""
    ev = next(evaluate_population(engine, outputs / "pop", part_size=500))
    plain = {shape: result_tables(ev, None, shape, []) for shape in ("long", "wide")}
    ev.part = dataclasses.replace(
        ev.part,
        household_ids=_LazyStrings(ev.part.household_ids.arrow().dictionary_encode()),
        member_ids=_LazyStrings(ev.part.member_ids.arrow().dictionary_encode()),
    )
    assert len(ev.part.member_ids.arrow().dictionary) < ev.part.M  # member ids repeat across households
    for shape in ("long", "wide"):
        coded = result_tables(ev, None, shape, [])
        for name, table in plain[shape].items():
            assert _decoded(coded[name]).equals(_decoded(table)), (shape, name)

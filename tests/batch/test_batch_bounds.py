"""A population file is bounded like a household: amounts whatever the column's type, event types from the vocabulary."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest

from engine.batch.job import run_batch
from engine.batch.tables import PopulationError, from_contract, write_tables

ROOT = Path(__file__).resolve().parents[2]
# yuan whose fen wrap around int64 to 84 fen: before, read as an income of 0.84 yuan
WRAPS = 2**64 // 100 + 1


@pytest.mark.parametrize("values", [pa.array([WRAPS], pa.int64()), pa.array([1e18], pa.float64()), pa.array([float("inf")], pa.float64())])
def test_an_amount_beyond_the_bound_is_refused_in_an_integer_or_float_column(engine, tmp_path, values):
    households = [json.loads(p.read_text()) for p in sorted((ROOT / "examples").glob("*.json"))]
    hh, mem, ev = from_contract(households)
    i = mem.schema.get_field_index("income_wage")
    first = values.cast(values.type)
    rest = pa.array([0] * (mem.num_rows - 1), values.type)
    mem = mem.set_column(i, pa.field("income_wage", values.type), pa.concat_arrays([first, rest]))
    write_tables(tmp_path / "pop", hh, mem, ev)
    with pytest.raises(PopulationError) as e:
        run_batch(engine, tmp_path / "pop", tmp_path / "out")
    assert any(err.column == "income_wage" and "过大" in err.zh for err in e.value.errors), e.value.errors


def test_an_unknown_event_type_in_the_events_table_is_refused(engine, tmp_path):
    households = [json.loads(p.read_text()) for p in sorted((ROOT / "examples").glob("*.json"))]
    hh, mem, ev = from_contract(households)
    assert ev is not None and ev.num_rows
    i = ev.schema.get_field_index("type")
    ev = ev.set_column(i, "type", pa.array(["Fire", *ev.column("type").to_pylist()[1:]]))
    write_tables(tmp_path / "pop", hh, mem, ev)
    with pytest.raises(PopulationError) as e:
        run_batch(engine, tmp_path / "pop", tmp_path / "out")
    assert any(err.column == "type" and "fire" in err.zh for err in e.value.errors), e.value.errors


@pytest.mark.parametrize("column, table", [("household_id", "households"), ("member_id", "members")])
def test_an_id_outside_the_character_set_is_refused(engine, tmp_path, column, table):
    households = [json.loads(p.read_text()) for p in sorted((ROOT / "examples").glob("*.json"))]
    tables = dict(zip(("households", "members", "events"), from_contract(households), strict=True))
    t = tables[table]
    values = t.column(column).to_pylist()
    bad = values[0] + "/x"
    t = t.set_column(t.schema.get_field_index(column), column, pa.array([v if v != values[0] else bad for v in values]))
    tables[table] = t
    if column == "household_id":  # the household's members and events follow it
        for other in ("members", "events"):
            o = tables[other]
            ids = [bad if v == values[0] else v for v in o.column("household_id").to_pylist()]
            tables[other] = o.set_column(o.schema.get_field_index("household_id"), "household_id", pa.array(ids))
    write_tables(tmp_path / "pop", tables["households"], tables["members"], tables["events"])
    with pytest.raises(PopulationError) as e:
        run_batch(engine, tmp_path / "pop", tmp_path / "out")
    assert any(err.column == column and "汉字" in err.zh for err in e.value.errors), e.value.errors

"""The batch tables check identifiers against the lengths declared in engine.schema.record."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest

from engine.batch import schema as S
from engine.batch.tables import PopulationError, Source, build_part, from_contract, write_tables
from engine.columnar.values import Interner

ROOT = Path(__file__).resolve().parents[2]


def _build(tmp_path: Path, table: str, column: str, value: str) -> None:
    households = [json.loads(p.read_text()) for p in sorted((ROOT / "examples").glob("*.json"))[:1]]
    hh, mem, ev = from_contract(households)
    t = hh if table == S.HOUSEHOLDS else mem
    i = t.schema.get_field_index(column)
    t = t.set_column(i, column, pa.array([value, *t.column(column).to_pylist()[1:]], pa.string()))
    if table == S.HOUSEHOLDS:
        hh = t
        mem = mem.set_column(0, "household_id", pa.array([value] * mem.num_rows, pa.string()))
    else:
        mem = t
    write_tables(tmp_path / "pop", hh, mem, ev.set_column(0, "household_id", pa.array([hh.column("household_id")[0].as_py()] * ev.num_rows)) if ev is not None else None)
    for raw in Source(tmp_path / "pop").parts():
        build_part(raw, Interner(), {"household_id"}, set(), None)


@pytest.mark.parametrize(("table", "column"), [(S.HOUSEHOLDS, "household_id"), (S.MEMBERS, "member_id")])
def test_an_identifier_is_bounded_by_its_declared_length(tmp_path, table, column):
    hi = S.BY_TABLE[table][column].hi
    assert hi in (64, 128)
    _build(tmp_path / "ok", table, column, "a" * hi)
    with pytest.raises(PopulationError) as e:
        _build(tmp_path / "long", table, column, "a" * (hi + 1))
    assert [(err.column, err.row) for err in e.value.errors] == [(column, 1)], e.value.errors

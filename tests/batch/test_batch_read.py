"""Reading table populations: dates, ID numbers and member alignment, checked as the single evaluator checks them."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from engine.batch.job import run_batch
from engine.batch.run import BatchEvaluator
from engine.batch.tables import PopulationError, Source, build_part, from_contract, write_tables

ROOT = Path(__file__).resolve().parents[2]


def examples() -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((ROOT / "examples").glob("*.json"))]


def _tables():
    return from_contract(examples())


def _with(t: pa.Table, column: str, values: pa.Array) -> pa.Table:
    i = t.schema.get_field_index(column)
    if i < 0:
        return t.append_column(column, values)
    return t.set_column(i, column, values)


def _refused(engine, tmp_path: Path, hh, mem, ev, fmt: str = "parquet") -> list:
    write_tables(tmp_path / "pop", hh, mem, ev, fmt=fmt)
    with pytest.raises(PopulationError) as e:
        run_batch(engine, tmp_path / "pop", tmp_path / "out")
    assert not (tmp_path / "out" / "households.parquet").exists()
    return e.value.errors


@pytest.mark.parametrize("days", [-800_000, 3_000_000])  # before 0001-01-01, after 9999-12-31
def test_a_date_outside_the_calendar_is_refused(engine, tmp_path, days):
    hh, mem, ev = _tables()
    births = mem.column("birth_date").cast(pa.int32()).to_pylist()
    births[0] = days
    mem = _with(mem, "birth_date", pa.array(births, pa.int32()).cast(pa.date32()))
    errors = _refused(engine, tmp_path, hh, mem, ev)
    assert any(e.column == "birth_date" and e.row == 1 and "范围" in e.zh for e in errors), errors


def test_the_year_zero_in_text_is_refused(engine, tmp_path):
    hh, mem, ev = _tables()
    births = [d.isoformat() for d in mem.column("birth_date").to_pylist()]
    births[0] = "0000-03-01"
    mem = _with(mem, "birth_date", pa.array(births))
    errors = _refused(engine, tmp_path, hh, mem, ev, fmt="csv")
    assert any(e.column == "birth_date" and e.row == 1 and "有效日期" in e.zh for e in errors), errors


def test_dates_are_read_as_yyyymmdd(engine, tmp_path):
    hh, mem, ev = _tables()
    mem = mem.drop_columns(["id_number"])  # their birth dates are the ones replaced
    days = np.array([-719162, -1, 0, 59, 11016, 2932896], np.int32)  # 0001-01-01 ... 9999-12-31
    births = mem.column("birth_date").cast(pa.int32()).to_numpy().copy()
    births[: len(days)] = days
    mem = _with(mem, "birth_date", pa.array(births, pa.int32()).cast(pa.date32()))
    hh = _with(hh, "as_of", pa.array([dt.date(9999, 12, 31)] * hh.num_rows, pa.date32()))
    write_tables(tmp_path / "pop", hh, mem, ev)
    be = BatchEvaluator(engine)
    (raw,) = list(Source(tmp_path / "pop").parts())
    part = build_part(raw, be.I, be.need_h, be.need_m, None)
    want = [int((dt.date(1970, 1, 1) + dt.timedelta(days=int(d))).strftime("%Y%m%d")) for d in days]
    assert part.mcols["birth_date"].v[: len(days)].tolist() == want

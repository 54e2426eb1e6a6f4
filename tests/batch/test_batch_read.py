"""Reading table populations: dates, ID numbers and member alignment, checked as the single evaluator checks them."""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from engine.batch.errors import Errors
from engine.batch.job import run_batch
from engine.batch.rowcheck import check_id_numbers, dup_members, increasing
from engine.batch.run import BatchEvaluator
from engine.batch.tables import PopulationError, Source, build_part, from_contract, write_tables
from engine.schema.masking import check_digit

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


def test_members_out_of_order_after_the_first_part_are_read_once(engine, tmp_path):
    # the first part's members are grouped in order, a later part's are not: before, the first part was
    # yielded, then every part again from the re-sorted tables, and the run refused its own households
    # as duplicates
    hh, mem, ev = _tables()
    hids = hh.column("household_id").to_pylist()
    mh = mem.column("household_id").to_pylist()
    first = [i for i, h in enumerate(mh) if h == hids[0]]
    rest = [i for i, h in enumerate(mh) if h != hids[0]]
    write_tables(tmp_path / "sorted", hh, mem, ev)
    write_tables(tmp_path / "mixed", hh, mem.take(pa.array(first + rest[::-1])), ev)
    a = run_batch(engine, tmp_path / "sorted", tmp_path / "ra", part_size=1)
    b = run_batch(engine, tmp_path / "mixed", tmp_path / "rb", part_size=1)
    assert b.households == a.households == len(hids)
    assert a.counts == b.counts and a.monthly_cents == b.monthly_cents


def _id_number(first17: str) -> str:
    return first17 + check_digit(first17)


def _old_rule(v: str | None, birth: int) -> bool:
    """The per-row check the vectorised one replaced (the single evaluator's pattern)."""
    if v is None:
        return True
    return bool(re.match(r"^\d{17}[\dX]$", v)) and check_digit(v[:17]) == v[17] and int(v[6:14]) == birth


def test_id_numbers_are_checked_like_the_row_by_row_rule():
    good = _id_number("21010219800301123")
    fullwidth = "".join(chr(ord(c) + 0xFEE0) if c.isdigit() else c for c in good)
    values = [
        good,
        None,
        good[:17] + ("0" if good[17] != "0" else "1"),  # wrong check character
        _id_number("21010219800302123"),  # another birth date
        good[:17],
        good + "1",
        good + "\n",  # Python's $ matches before a final newline
        good.lower(),
        next(v for i in range(1000) if (v := _id_number(f"21010219800301{i:03d}")).endswith("X")),
        fullwidth,  # \d is any Unicode digit in Python's pattern
        "２" + good[1:],
        "",
        "21010219800301123x",
        "A1010219800301123" + "5",
        "210102198003011２3",
    ]
    births = np.full(len(values), 19800301, np.int32)
    errs = Errors()
    check_id_numbers(pa.array(values, pa.string()), births, "members.csv", 0, errs)
    refused = {e.row - 1 for e in errs.items}
    assert refused == {i for i, v in enumerate(values) if not _old_rule(v, 19800301)}
    assert 0 not in refused and 6 not in refused and 2 in refused and 3 in refused


def test_a_population_with_id_numbers_is_read(engine, tmp_path):
    hh, mem, ev = _tables()
    births = [d.strftime("%Y%m%d") for d in mem.column("birth_date").to_pylist()]
    ids = [_id_number("210102" + b + f"{i % 1000:03d}") for i, b in enumerate(births)]
    write_tables(tmp_path / "ok", hh, _with(mem, "id_number", pa.array(ids)), ev)
    run_batch(engine, tmp_path / "ok", tmp_path / "ok_out")
    ids[1] = ids[1][:-1] + ("1" if ids[1][-1] != "1" else "2")
    errors = _refused(engine, tmp_path, hh, _with(mem, "id_number", pa.array(ids)), ev)
    assert [(e.row, e.column) for e in errors] == [(2, "id_number")]


def test_duplicate_members_found_by_neighbours_as_by_sorting():
    rng = np.random.default_rng(7)
    sizes = rng.integers(1, 9, 2000)
    hh_of = np.repeat(np.arange(len(sizes)), sizes)
    mid = rng.integers(0, 6, len(hh_of)).astype(np.int32)
    by_neighbours, by_sorting = Errors(), Errors()
    dup_members(mid, hh_of, "m", 0, by_neighbours, int(sizes.max()))
    dup_members(mid, hh_of, "m", 0, by_sorting)
    assert by_neighbours.total == by_sorting.total > 0
    assert [e.row for e in by_neighbours.items] == [e.row for e in by_sorting.items]


def test_ids_in_increasing_order_are_known_unique_without_hashing():
    assert increasing(pa.array(["A-1", "A-2", "B-1"])) and increasing(pa.array(["x"]))
    assert not increasing(pa.array(["b", "a", "c"])) and not increasing(pa.array(["a", "a"]))
    assert not increasing(pa.array(["a", None, "b"]))


@pytest.mark.parametrize(("scale", "yuan"), [(0, "100000000000000000"), (1, "99999999999999999.9")])
def test_a_decimal_amount_too_large_for_fen_is_refused_not_wrapped(engine, tmp_path, scale, yuan):
    # 10^17 yuan is 10^19 fen, beyond int64: it wrapped around (to an amount within the bound, or negative)
    hh, mem, ev = _tables()
    wages = [None] * mem.num_rows
    wages[0] = Decimal(yuan)
    mem = _with(mem, "income_wage", pa.array(wages, pa.decimal128(18, scale)))
    errors = _refused(engine, tmp_path, hh, mem, ev)
    assert any(e.column == "income_wage" and e.row == 1 and "过大" in e.zh for e in errors), errors

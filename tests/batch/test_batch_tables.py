"""Population files: every column documented, bad values refused by row and column, nothing half-written."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pcsv
import pytest

from engine.batch import schema
from engine.batch.job import run_batch
from engine.batch.tables import PopulationError, Source, find_households, from_contract, write_tables

ROOT = Path(__file__).resolve().parents[2]


def examples() -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((ROOT / "examples").glob("*.json"))]


def test_every_column_is_documented_in_docs_batch():
    doc = (ROOT / "docs" / "batch.md").read_text(encoding="utf-8")
    for c in schema.COLUMNS:
        assert f"`{c.name}`" in doc, c.name


def _rows(path: Path) -> list[dict]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def _write_rows(path: Path, rows: list[dict]) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def _same_member_id(m: list[dict]) -> list[dict]:
    """Give the second member of the first household with two members the first one's id."""
    for i in range(1, len(m)):
        if m[i]["household_id"] == m[i - 1]["household_id"]:
            m[i] = {**m[i], "member_id": m[i - 1]["member_id"]}
            return m
    raise AssertionError("no household with two members")


def _csv_population(tmp_path: Path, edit=None) -> Path:
    """The examples as CSV tables, optionally edited cell by cell (as text, as a person would)."""
    hh, mem, ev = from_contract(examples())
    pop = tmp_path / "pop"
    write_tables(pop, hh, mem, ev, fmt="csv")
    if edit:
        h, m = edit(_rows(pop / "households.csv"), _rows(pop / "members.csv"))
        _write_rows(pop / "households.csv", h)
        _write_rows(pop / "members.csv", m)
    return pop


@pytest.mark.parametrize(
    ("edit", "column", "zh"),
    [
        (lambda h, m: (h, [{**r, "relation": "cousin"} if i == 1 else r for i, r in enumerate(m)]), "relation", "取值无效"),
        (lambda h, m: (h, [{**r, "income_wage": "-3.00"} if i == 0 else r for i, r in enumerate(m)]), "income_wage", "金额"),
        (lambda h, m: (h, [{**r, "income_wage": "3.005"} if i == 0 else r for i, r in enumerate(m)]), "income_wage", "金额"),
        (lambda h, m: (h, [{**r, "birth_date": "2030-01-01"} if i == 0 else r for i, r in enumerate(m)]), "birth_date", "晚于"),
        (lambda h, m: (h, [{**r, "birth_date": "2021-02-30"} if i == 0 else r for i, r in enumerate(m)]), "birth_date", "日期"),
        (lambda h, m: ([{**r, "locality": "999999"} if i == 0 else r for i, r in enumerate(h)], m), "locality", "未知"),
        (lambda h, m: (h, _same_member_id(m)), "member_id", "重复"),
        (
            lambda h, m: (
                h,
                [{**r, "disability_category": "limb", "disability_grade": "7"} if i == 0 else r for i, r in enumerate(m)],
            ),
            "disability_grade",
            "之间",
        ),
        (
            lambda h, m: ([{**r, "household_id": h[0]["household_id"]} if i == 1 else r for i, r in enumerate(h)], m),
            "household_id",
            "重复",
        ),
    ],
)
def test_bad_values_are_refused_naming_row_and_column(engine, tmp_path, edit, column, zh):
    pop = _csv_population(tmp_path, edit)
    out = tmp_path / "out"
    with pytest.raises(PopulationError) as e:
        run_batch(engine, pop, out)
    assert any(err.column == column and zh in err.zh for err in e.value.errors), e.value.errors
    assert not list(out.glob("*")) or not (out / "households.parquet").exists()


def test_unknown_and_missing_columns_are_refused(engine, tmp_path):
    hh, mem, _ = from_contract(examples())
    write_tables(tmp_path / "p", hh.append_column("incomes", pa.array(["x"] * hh.num_rows)), mem.drop(["birth_date"]), fmt="csv")
    with pytest.raises(PopulationError) as e:
        list(Source(tmp_path / "p").parts())
    cols = {err.column for err in e.value.errors}
    assert "incomes" in cols


def test_members_in_another_order_are_read_and_matched_to_their_households(engine, tmp_path):
    hh, mem, ev = from_contract(examples())
    write_tables(tmp_path / "sorted", hh, mem, ev)
    write_tables(tmp_path / "shuffled", hh, mem.take(pa.array(list(reversed(range(mem.num_rows))))), ev)
    a = run_batch(engine, tmp_path / "sorted", tmp_path / "ra")
    b = run_batch(engine, tmp_path / "shuffled", tmp_path / "rb")
    assert a.counts == b.counts and a.monthly_cents == b.monthly_cents


def test_a_failed_run_leaves_no_results(engine, tmp_path):
    pop = _csv_population(tmp_path, lambda h, m: (h, [{**r, "relation": "x"} for r in m]))
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(PopulationError):
        run_batch(engine, pop, out, fmt="csv")
    assert list(out.iterdir()) == []


def test_csv_results_and_export_round_trip(engine, tmp_path):
    pop = _csv_population(tmp_path)
    s = run_batch(engine, pop, tmp_path / "out", fmt="csv")
    table = pcsv.read_csv(tmp_path / "out" / "households.csv")
    assert table.num_rows == len(examples()) == s.households
    assert {"dibao_status", "dibao_amount", "dibao_first_failed", "per_capita_income"} <= set(table.column_names)
    hid = examples()[0]["household_id"]
    (found,) = find_households(Source(pop), [hid])
    det = engine.evaluate(found)
    row = table.filter(pa.compute.equal(table.column("household_id"), hid)).to_pylist()[0]
    assert row["dibao_status"] == det.status("dibao")


def test_jsonl_population_is_validated_like_the_api(engine, tmp_path):
    path = tmp_path / "households.jsonl"
    bad = dict(examples()[0], area="suburb")
    path.write_text("\n".join(json.dumps(h, ensure_ascii=False) for h in [*examples(), bad]), encoding="utf-8")
    with pytest.raises(PopulationError) as e:
        run_batch(engine, path, tmp_path / "out")
    assert e.value.errors[0].row == len(examples()) + 1 and e.value.errors[0].column == "area"

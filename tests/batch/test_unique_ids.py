"""Household ids unique across parts (engine/batch/unique.py): fingerprints, then the ids themselves."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from engine.batch import job
from engine.batch.errors import PopulationError
from engine.batch.unique import fingerprints, in_order, may_repeat


def test_distinct_ids_have_distinct_fingerprints_and_equal_ids_equal_ones():
    ids = [f"SYN-210000-{i:07d}" for i in range(200_000)] + ["户-一", "户-二", "a", "ab", "ba", "x" * 128, "家" * 128]
    fp = fingerprints(pa.array(ids))
    assert len(np.unique(fp)) == len(ids)
    sliced = pa.array(["zz", *ids]).slice(1)  # an array with an offset, as a part of a column is
    assert (fingerprints(sliced) == fp).all()
    assert (fingerprints(pa.array(ids).dictionary_encode()) == fp).all()
    assert may_repeat([fp[:10], fingerprints(pa.array([ids[3]]))])
    assert not may_repeat([fp[:10], fp[10:]])


def test_a_repeated_id_in_another_part_is_refused_naming_it(engine, tmp_path):
    pop = tmp_path / "pop.jsonl"
    row = (
        '{{"household_id": "H{}", "locality": "210102", "area": "urban", "as_of": "2024-06-01", '
        '"members": [{{"id": "m1", "relation": "head", "birth_date": "1980-01-01"}}]}}'
    )
    lines = [row.format(i % 7 if i == 9 else i) for i in range(10)]
    pop.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(PopulationError) as e:
        list(job.evaluate_population(engine, pop, part_size=4))
    assert any("户编号重复：H2" in err.zh for err in e.value.errors)


def _jsonl(path, ids):
    row = (
        '{{"household_id": "{}", "locality": "210102", "area": "urban", "as_of": "2024-06-01", '
        '"members": [{{"id": "m1", "relation": "head", "birth_date": "1980-01-01"}}]}}'
    )
    path.write_text("\n".join(row.format(i) for i in ids) + "\n", encoding="utf-8")
    return path


def test_parts_in_id_order_are_not_read_again(engine, tmp_path, monkeypatch):
    pop = _jsonl(tmp_path / "pop.jsonl", [f"H{i:02d}" for i in range(10)])
    monkeypatch.setattr(job, "_id_batches", lambda src: (_ for _ in ()).throw(AssertionError("read again")))
    assert sum(ev.part.H for ev in job.evaluate_population(engine, pop, part_size=4)) == 10
    assert not in_order([("H00", "H03"), ("H03", "H07")]) and in_order([("H00", "H03"), ("H04", "H07")])


def test_unique_ids_out_of_order_pass_after_fingerprinting(engine, tmp_path):
    pop = _jsonl(tmp_path / "pop.jsonl", ["H9", "H1", "H8", "H2", "H7", "H3", "H6", "H4", "H5"])
    assert sum(ev.part.H for ev in job.evaluate_population(engine, pop, part_size=2)) == 9

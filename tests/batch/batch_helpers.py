"""Shared helpers: run the batch evaluator on contract households, compare with the single evaluator."""

from __future__ import annotations

import tempfile
from pathlib import Path

from engine.batch.run import BatchEvaluator
from engine.batch.tables import Source, build_part, from_contract, write_tables
from engine.columnar.columns import from_parsed
from engine.columnar.verify import batch_outcomes, household_facts, single_facts, single_outcomes
from engine.schema.validate import parse


def unique_ids(households: list[dict]) -> list[dict]:
    for i, h in enumerate(households):
        h["household_id"] = f"H{i}"
    return households


def compare_parsed(engine, households: list[dict], evaluator: BatchEvaluator | None = None) -> list[str]:
    """Batch (lossless JSON path) against the single evaluator; returns a description of every difference."""
    be = evaluator or BatchEvaluator(engine, threads=1)
    part = from_parsed([parse(h) for h in households], be.I, be.need_h, be.need_m)
    res = be.evaluate_part(part)
    assert res.fallback == 0, "the columnar backend fell back to the single evaluator"
    return _diffs(engine, be, part, res, households)


def compare_tables(engine, households: list[dict], fmt: str = "parquet", part_size: int = 1_000_000) -> list[str]:
    """Batch through the two-table files against the single evaluator on the same (table) households."""
    be = BatchEvaluator(engine, threads=1)
    out: list[str] = []
    with tempfile.TemporaryDirectory() as d:
        write_tables(Path(d), *from_contract(households), fmt=fmt)
        for raw in Source(Path(d)).parts(part_size):
            part = build_part(raw, be.I, be.need_h, be.need_m, None)
            res = be.evaluate_part(part)
            assert res.fallback == 0
            out += _diffs(engine, be, part, res, [part.contract(i) for i in range(part.H)])
    return out


def _diffs(engine, be, part, res, households) -> list[str]:
    out = []
    for i, h in enumerate(households):
        det = engine.evaluate(h)
        a, b = batch_outcomes(res, part, be.plan, i), single_outcomes(det, {p.code for p in be.plan.programs})
        fa, fb = household_facts(res, i), single_facts(det, be.plan.reported)
        if a != b or fa != fb:
            keys = sorted({*a, *b}, key=str)
            detail = "; ".join(f"{k}: batch {a.get(k)} single {b.get(k)}" for k in keys if a.get(k) != b.get(k))
            out.append(f"{h['household_id']}: {detail} {'' if fa == fb else f'facts {fa} vs {fb}'}")
    return out

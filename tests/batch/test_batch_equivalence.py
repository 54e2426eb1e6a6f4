"""The columnar evaluator gives the single-household evaluator's results, household by household.

Statuses, amounts (to the fen) and the first failed rule of every program, and the
household facts of the determination, over generated populations (hypothesis), the
YAML cases and the examples, through both input paths (JSON lines and tables).
"""

from __future__ import annotations

import json
from pathlib import Path

from batch_helpers import compare_parsed, compare_tables, unique_ids
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import households

from engine.book.cases import load_cases

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
populations = st.lists(households(), min_size=1, max_size=40).map(unique_ids)


@SETTINGS
@given(populations)
def test_generated_populations_match_the_single_evaluator(engine, pop):
    assert compare_parsed(engine, pop) == []


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(populations)
def test_generated_populations_through_parquet_tables(engine, pop):
    assert compare_tables(engine, pop, "parquet", part_size=7) == []


def test_every_yaml_case_and_example_matches(engine):
    hs = [c.household for c in load_cases(ROOT / "tests" / "cases") if "error" not in c.expect]
    hs += [json.loads(p.read_text()) for p in sorted((ROOT / "examples").glob("*.json"))]
    assert len(hs) > 40
    assert compare_parsed(engine, unique_ids(hs)) == []
    assert compare_tables(engine, hs, "csv") == []


def test_synthetic_population_matches_and_reaches_every_status(engine, tmp_path, monkeypatch):
    """A realistic (synthetic) population: every household agrees, and the comparison is not vacuous.

    Chunks are made tiny so every group is cut into many chunks run on two threads."""
    from engine.batch import run as run_module
    from engine.batch import synth
    from engine.batch.run import BatchEvaluator

    monkeypatch.setattr(run_module, "TARGET_ELEMENTS", 32)
    from engine.batch.tables import Source, build_part
    from engine.columnar.verify import batch_outcomes, single_outcomes

    synth.write(tmp_path, "210000", 1500, seed=5)
    be = BatchEvaluator(engine, threads=2)
    raw = next(Source(tmp_path).parts())
    part = build_part(raw, be.I, be.need_h, be.need_m, None)
    res = be.evaluate_part(part)
    assert res.fallback == 0 and res.chunks > 3 * res.groups
    for i in range(part.H):
        assert batch_outcomes(res, part, be.plan, i) == single_outcomes(engine.evaluate(part.contract(i)))
    assert set(res.household["dibao.status"].tolist()) == {0, 1, 2, 3}
    assert {0, 1, 3} <= set(res.member["tekun.status"].tolist())

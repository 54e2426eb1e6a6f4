"""Both executors take their exclusion choices from the one lowered plan (``book.interactions``).

A plan whose keep rule and rank order are changed must change the single evaluator and the
columnar ``Plan`` alike: neither keeps a copy of the choices of ``rules/interactions.yaml``.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from batch_helpers import compare_parsed, unique_ids

from engine.batch.run import BatchEvaluator
from engine.book.cases import load_cases
from engine.book.interactions import Exclusion, ExclusionPlan, lower
from engine.columnar.verify import single_outcomes

ROOT = Path(__file__).resolve().parents[2]


def _households() -> list[dict]:
    hs = [c.household for c in load_cases(ROOT / "tests" / "cases") if "error" not in c.expect]
    hs += [json.loads(p.read_text()) for p in sorted((ROOT / "examples").glob("*.json"))]
    return unique_ids(hs)


def _changed(book, step: Exclusion) -> Exclusion:
    """The same group with its rank order reversed and the other keep rule (where the scopes allow it)."""
    scopes = {p.code: p.scope for p in book.programs}
    keep = {"first": "higher_amount", "higher_amount": "first"}[step.keep] if step.kind != "mixed" else step.keep
    return lower(
        step.id, step.title, list(reversed(step.programs)), keep, step.citation, step.project_default,
        step.file, step.line, scopes, step.household_amount,
    )  # fmt: skip


def test_plan_is_frozen_and_lowered_once(engine):
    plan = engine.book.interactions
    assert isinstance(plan, ExclusionPlan) and len(plan) >= 5
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.steps[0].keep = "higher_amount"  # type: ignore[misc]
    mixed = next(s for s in plan if s.id == "interactions.tekun_not_dibao")
    assert (mixed.kind, mixed.household, mixed.members_before, mixed.members_after) == ("mixed", "dibao", ("tekun",), ())
    assert BatchEvaluator(engine, threads=1).plan.exclusions is plan


def test_a_changed_plan_changes_both_executors(engine, monkeypatch):
    hs = _households()
    before = {h["household_id"]: single_outcomes(engine.evaluate(h)) for h in hs}
    changed = ExclusionPlan(tuple(_changed(engine.book, s) for s in engine.book.interactions))
    monkeypatch.setattr(engine.book, "interactions", changed)
    be = BatchEvaluator(engine, threads=1)
    assert be.plan.exclusions is changed
    after = {h["household_id"]: single_outcomes(engine.evaluate(h)) for h in hs}
    moved = [k for k in before if before[k] != after[k]]
    assert moved, "the changed plan should change who is paid in some household"
    # the batch executor follows the changed plan: it still matches the single one everywhere
    assert compare_parsed(engine, hs, be) == []


def test_each_executor_reads_the_plan_fields_not_the_list_order(engine, monkeypatch):
    """Only the fields change (keep rule; which member programs outrank the household one), not the order."""

    def field_change(s: Exclusion) -> Exclusion:
        if s.kind == "mixed":
            return dataclasses.replace(s, members_before=s.members_after, members_after=s.members_before)
        return dataclasses.replace(s, keep={"first": "higher_amount", "higher_amount": "first"}[s.keep])

    hs = _households()
    before = {h["household_id"]: single_outcomes(engine.evaluate(h)) for h in hs}
    changed = ExclusionPlan(tuple(field_change(s) for s in engine.book.interactions))
    monkeypatch.setattr(engine.book, "interactions", changed)
    after = {h["household_id"]: single_outcomes(engine.evaluate(h)) for h in hs}
    moved = {k for k in before if before[k] != after[k]}
    assert moved
    # the mixed step alone moves some household (tekun no longer outranks dibao)
    assert any(
        before[k].get(("dibao", None), (0, 0, 0, None))[3] != after[k].get(("dibao", None), (0, 0, 0, None))[3] for k in moved
    )
    assert compare_parsed(engine, hs, BatchEvaluator(engine, threads=1)) == []

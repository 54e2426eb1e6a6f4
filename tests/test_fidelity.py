"""Domain fidelity (issue 15): dated readings of the regulations and the labels their explanations carry."""

from __future__ import annotations

import pytest


def _pension_household(as_of: str) -> dict:
    return {
        "household_id": "PENSION",
        "locality": "210102",
        "as_of": as_of,
        "area": "urban",
        "assets": {"financial": "0", "vehicles": [], "properties": 1},
        "members": [
            {
                "id": "p1",
                "relation": "head",
                "birth_date": "1950-01-01",
                "hukou_locality": "210102",
                "supporters": "able",
                "incomes": [{"type": "resident_pension_base", "monthly": "150.00"}, {"type": "pension", "monthly": "100.00"}],
            }
        ],
    }


def _income_reason(det: dict) -> dict:
    return next(r for r in det["household"]["reasons"] if r["rule"] == "household.counted_income")


@pytest.mark.parametrize(("as_of", "default"), [("2025-12-31", False), ("2026-01-01", True)])
def test_pension_base_exclusion_after_the_14th_plan_is_a_labelled_project_default(engine, as_of, default):
    det = engine.evaluate(_pension_household(as_of))
    reason = _income_reason(det)
    assert det["household"]["monthly_income"] == "100.00"
    assert ("项目默认值" in reason["text"]) is default
    assert "民发〔2021〕57号" in reason["citation"]


def test_the_pension_exclusion_is_read_only_when_such_an_income_exists(engine):
    h = _pension_household("2026-01-01")
    h["members"][0]["incomes"] = [{"type": "pension", "monthly": "100.00"}]
    assert "项目默认值" not in _income_reason(engine.evaluate(h))["text"]


def test_age_citation_glosses_article_1259_as_including_the_number(engine):
    step = next(s for s in engine.book.facts.steps if s.id == "household.age")
    assert "包括本数" in step.citation
    assert "周岁按日历计算" not in step.citation

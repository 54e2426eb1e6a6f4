"""The YAML cases under tests/cases, one pytest item each (the same ones `jiuzhu test` runs)."""

from pathlib import Path

import pytest

from engine.book.cases import case_errors, check_case, load_cases

CASES = load_cases(Path(__file__).parent / "cases")


@pytest.mark.parametrize("case", CASES, ids=[f"{Path(c.file).stem}:{c.line}" for c in CASES])
def test_case(engine, case):
    result = check_case(engine, case)
    assert result.passed, "\n".join(result.failures)


def test_every_seed_locality_has_cases():
    files = {Path(c.file).stem.split("_")[0] for c in CASES}
    assert {"210000", "620722", "500152", "350500"} <= files


def test_the_shipped_cases_name_only_known_statuses_programs_and_rules(engine):
    assert case_errors(engine.book, CASES) == []

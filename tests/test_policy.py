"""Policy parameters: chain lookup, dated values, formulas, unconfigured values, file errors."""

import datetime as dt
from pathlib import Path

import pytest

from engine.expr import Missing
from engine.policies.parameters import PolicyStore
from engine.schema.money import fmt_money

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def store():
    s = PolicyStore(ROOT / "policies")
    assert not s.errors, s.errors
    return s


def value(store, code, on, key):
    return store.resolve(code, dt.date.fromisoformat(on)).values[key]


def test_chain_skips_levels_without_files(store):
    assert store.chain("210102") == ("210000", "100000")
    assert store.chain("620722") == ("620722", "100000")
    assert store.chain("500152") == ("500152", "100000")
    assert store.chain("350502") == ("350500", "100000")
    assert store.chain("110101") == ("100000",)


def test_annual_values_are_converted_exactly(store):
    v = value(store, "620722", "2021-08-01", "dibao.standard.urban")
    assert v * 12 == 6934
    assert fmt_money(v) == "577.83"


def test_minor_age_limit_changes_on_2021_07_01(store):
    for code in ("210102", "620722", "500152", "350502", "110101"):
        assert value(store, code, "2021-06-30", "tekun.minor_age_limit") == 16
        assert value(store, code, "2021-07-01", "tekun.minor_age_limit") == 18


def test_formula_uses_the_local_standard(store):
    assert (
        value(store, "210102", "2021-08-01", "tekun.standard.urban")
        == value(store, "210102", "2021-08-01", "dibao.standard.urban") * 13 / 10
    )
    # Minle and Quanzhou give their own 特困 standards instead of the formula
    assert value(store, "620722", "2021-08-01", "tekun.standard.urban") * 12 == 9012


def test_unconfigured_is_missing_with_the_parameter_name(store):
    v = value(store, "500152", "2021-08-01", "dibao.standard.urban")
    assert isinstance(v, Missing)
    assert any(k == "dibao.standard.urban" for k, _ in v.keys)
    rural = value(store, "500152", "2021-08-01", "dibao.standard.rural")
    assert isinstance(rural, Missing)  # ratio x unconfigured urban


def test_tongnan_ratio_is_dated(store):
    assert value(store, "500152", "2024-12-31", "dibao.rural_ratio") * 100 == 80
    assert value(store, "500152", "2025-01-01", "dibao.rural_ratio") * 100 == 85


def test_before_any_value_is_unconfigured(store):
    assert isinstance(value(store, "210102", "2019-12-31", "dibao.standard.urban"), Missing)


def test_every_parameter_cites_a_source(store):
    ps = store.resolve("350502", dt.date(2021, 8, 1))
    for key, info in ps.info.items():
        if info.level is not None:
            assert info.source, key
        if info.project_default:
            assert info.note, key


def test_quanzhou_multiplier_and_deduction(store):
    assert value(store, "350502", "2021-08-01", "dibao_edge.multiplier") == 2
    assert value(store, "350502", "2021-08-01", "dibao.rigid_expense_deduction.enabled") is True
    assert value(store, "210102", "2021-08-01", "dibao.rigid_expense_deduction.enabled") is False


def _broken(tmp_path, text: str) -> list[str]:
    (tmp_path / "parameters.yaml").write_text(
        (ROOT / "policies" / "parameters.yaml").read_text(encoding="utf-8"), encoding="utf-8"
    )
    (tmp_path / "100000.yaml").write_text(text, encoding="utf-8")
    return [str(e) for e in PolicyStore(tmp_path).errors]


@pytest.mark.parametrize(
    "body, fragment",
    [
        ("dibao.nope:\n    - {from: 2020-01-01, value: 1, unit: 倍, source: x}", "未在 parameters.yaml 中声明"),
        ("dibao.edge_x: []", "未在 parameters.yaml"),
        ("dibao_edge.multiplier:\n    - {from: 2020-01-01, value: 1.5, unit: 倍}", "缺少 source"),
        ("dibao_edge.multiplier:\n    - {from: 2020-01-01, value: 1.5, unit: 元/人/月, source: x}", "不兼容"),
        ("dibao.standard.urban:\n    - {from: 2020-01-01, value: 600, unit: 倍, source: x}", "不兼容"),
        ("dibao.standard.urban:\n    - {from: 2020-01-01, formula: 1.3 * nope, unit: 元/人/月, source: x}", "公式错误"),
        ("dibao_edge.multiplier:\n    - {from: 2020-01-01, value: 1.5, unit: 倍, source: x, project_default: true}", "note"),
        ("tekun.minor_age_limit:\n    - {from: 2020-01-01, value: 16.5, unit: 岁, source: x}", "整数"),
    ],
)
def test_bad_policy_files_are_refused_with_file_and_line(tmp_path, body, fragment):
    errors = _broken(tmp_path, f'locality: "100000"\nname: 全国\nparameters:\n  {body}\n')
    assert errors, "expected an error"
    assert any(fragment in e for e in errors), errors
    assert all("100000.yaml:" in e for e in errors)

import pytest

from engine.expr.runtime import within
from engine.policies.localities import LocalityError, ancestors, covers, division, full_name, scope_prefix


@pytest.mark.parametrize(
    "code, chain",
    [
        ("620722", ["620722", "620700", "620000", "100000"]),
        ("500152", ["500152", "500100", "500000", "100000"]),
        ("210000", ["210000", "100000"]),
        ("350500", ["350500", "350000", "100000"]),
        ("100000", ["100000"]),
    ],
)
def test_chain(code, chain):
    assert ancestors(code) == chain


@pytest.mark.parametrize("code", ["219999", "000000", "62072", "abcdef", "6207221", 620722, None])
def test_unknown_or_malformed_codes_are_refused(code):
    with pytest.raises(LocalityError):
        division(code)


def test_names():
    assert full_name("210102") == "辽宁省沈阳市和平区"
    assert full_name("500152") == "重庆市潼南区"


def test_within():
    assert within("210102", "210000")
    assert within("210102", "210100")
    assert not within("210102", "210200")
    assert within("350502", "350500")
    assert not within(None, "350500")
    assert within("110101", "100000")


@pytest.mark.parametrize(
    "scope, code, expected",
    [
        ("210102", "210102", True),
        ("210102", "210103", False),
        ("210102", "210100", False),  # a district does not cover its city
        ("210100", "210102", True),
        ("210100", "210202", False),
        ("210000", "210202", True),
        ("210000", "210000", True),
        ("210000", "620722", False),
        ("620722", "210102", False),
        ("100000", "620722", True),
        ("100000", "100000", True),
        ("210000", "100000", False),  # a province does not cover the nation
        ("210000", "21", False),  # malformed: covered by no scope but the national one
        ("210000", None, False),
        ("210000", "21010x", False),
    ],
)
def test_covers(scope, code, expected):
    assert covers(scope, code) is expected


def test_scope_prefix():
    assert [scope_prefix(c) for c in ("100000", "210000", "210100", "210102")] == ["", "21", "2101", "210102"]

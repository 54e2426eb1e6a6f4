import pytest

from engine.expr.runtime import within
from engine.localities import LocalityError, ancestors, division, full_name


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

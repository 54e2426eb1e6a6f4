"""engine.schema.masking: which texts hold a resident ID number, how it is masked, keyed hashes and pseudonyms."""

from __future__ import annotations

import pytest

from engine.schema.masking import find_id_numbers, id_key, is_id_number, mask_id_number, pseudonym, scrub, scrub_json
from engine.schema.text import is_id

A, B = "21010219560501123X", "21010219300101123X"  # both valid, both mask to 210102********123X
DIGIT = "110105194912310003"  # valid, ends in a digit


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        (A, "210102********123X"),
        (A.lower(), "210102********123X"),
        ("abc" + A, "abc210102********123X"),
        ("abc" + A.lower() + "def", "abc210102********123Xdef"),
        ("身份证" + DIGIT + "号", "身份证110105********0003号"),
        ("ID:" + DIGIT + "abc", "ID:110105********0003abc"),
        (A + DIGIT, "210102********123X110105********0003"),
        ("9" + DIGIT, "9" + DIGIT),  # 19 digits: no ID number
        (DIGIT + "7", DIGIT + "7"),
        ("21010219560501123Y", "21010219560501123Y"),
        ("210102195605011230", "210102195605011230"),  # wrong check digit
    ],
)
def test_scrub_masks_every_valid_id_number_wherever_it_stands(text, masked):
    from api.evaluation.records import scrub as api_scrub

    assert scrub(text) == masked
    assert api_scrub(text) == masked  # the service's name for it is the same function


def test_detector_and_display_form():
    assert is_id_number(A) and is_id_number(A.lower()) and not is_id_number("x" + A)
    assert mask_id_number(A.lower()) == "210102********123X"
    assert find_id_numbers(f"a{A}b {DIGIT}") == [A, DIGIT]


def test_scrub_json_masks_keys_and_nested_values():
    value = {A: [DIGIT, {"note": "见" + A.lower()}], "n": 3, "ok": None}
    assert scrub_json(value) == {"210102********123X": ["110105********0003", {"note": "见210102********123X"}], "n": 3, "ok": None}


def test_keyed_hashes_tell_apart_ids_that_mask_alike_and_are_one_for_x_and_lower_x():
    s = b"secret"
    assert mask_id_number(A) == mask_id_number(B)
    assert id_key(A, s) != id_key(B, s) and id_key(A, s) == id_key(A.lower(), s)
    assert id_key(A, s) != id_key(A, b"another deployment") and len(id_key(A, s)) == 64
    assert id_key("LN-" + A, s) != id_key(A, s)


def test_pseudonyms_are_masked_distinct_stable_and_bounded():
    s = b"secret"
    pa, pb = pseudonym("LN" + A, s), pseudonym("LN" + B, s)
    assert pa.startswith("LN210102********123X-") and pa != pb and pa == pseudonym("LN" + A.lower(), s)
    assert is_id(pa) and is_id(pb)  # a pseudonym is itself a valid id: the monitor validates records holding them
    assert pseudonym(pa, s) == pa  # already masked: unchanged
    assert pseudonym("p1", s) == "p1"
    long = "x" * 110 + A
    cut = pseudonym(long, s, 128)
    assert len(cut) == 128 and not find_id_numbers(cut) and cut != pseudonym("y" * 110 + A, s, 128)


def test_digits_of_other_scripts_are_found_too():
    full = A.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    assert scrub("号码" + full) == "号码２１０１０２********１２３X"

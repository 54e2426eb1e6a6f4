"""Row checks that look across cells or rows: the tables' columns, household ids, member ids, ID numbers."""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from engine.schema.model import id_check_digit
from engine.schema.text import ID_EN, ID_RE, ID_ZH

from . import schema as S
from .convert import null_mask, string_bytes
from .errors import Errors


def check_columns(table: str, names: list[str], file: str) -> None:
    known = S.BY_TABLE[table]
    errs = Errors()
    for n in names:
        if n not in known:
            errs.add(
                file,
                0,
                n,
                "未知的列（请检查拼写，列说明见 docs/batch.md 或 jiuzhu batch-columns）",
                "unknown column (check the spelling; see docs/batch.md or jiuzhu batch-columns)",
            )
    for c in known.values():
        if c.required and c.name not in names and c.name != "as_of":
            errs.add(file, 0, c.name, "缺少必需的列", "required column missing")
    errs.raise_if_any()


_ASCII_ID = np.zeros(256, bool)  # the identifier character set's ASCII part (ID_RE), and its first character
for _c in b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz":
    _ASCII_ID[_c] = True
_ASCII_FIRST = _ASCII_ID.copy()
for _c in b"_.*-":
    _ASCII_ID[_c] = True


def _plain_ascii_ids(ids: pa.Array, lo: int, hi: int) -> bool:
    """Whether every id is ASCII of ``lo``..``hi`` characters from the identifier set: one pass over the bytes
    (the usual case; anything else is looked at row by row below)."""
    if not pa.types.is_string(ids.type) or ids.null_count:
        return False
    n = len(ids)
    if not n:
        return True
    offsets, data = string_bytes(ids)
    lens = np.diff(offsets)
    if lens.min() < max(lo, 1) or lens.max() > hi:
        return False
    data = data[offsets[0] : offsets[-1]]
    return bool(_ASCII_ID[data].all() and _ASCII_FIRST[data[offsets[:-1] - offsets[0]]].all())


def increasing(ids: pa.Array) -> bool:
    """Whether the ids are in strictly increasing order, so unique: one comparison of neighbours, where
    hashing them all takes ten times as long (an export sorted by household, ``jiuzhu synth``)."""
    n = len(ids)
    if ids.null_count:
        return False
    return n < 2 or bool(pc.all(pc.less(ids.slice(0, n - 1), ids.slice(1))).as_py())


def check_household_ids(ids: pa.Array, file: str, base: int, errs: Errors) -> None:
    if isinstance(ids, pa.DictionaryArray):
        ids = ids.dictionary_decode()
    col = S.BY_TABLE[S.HOUSEHOLDS]["household_id"]
    if _plain_ascii_ids(ids, col.lo, col.hi):
        if not increasing(ids) and len(pc.unique(ids)) != len(ids):
            _duplicates(ids, file, base, errs)
        return
    lens = pc.utf8_length(ids.cast(pa.string())).to_numpy(zero_copy_only=False)
    bad = (lens < col.lo) | (lens > col.hi)
    if bad.any():
        errs.rows(file, base, bad, "household_id", "应为1到128个字符的文本", "must be 1 to 128 characters")
    chars = ~pc.fill_null(pc.match_substring_regex(ids.cast(pa.string()), f"^(?:{ID_RE.pattern})$"), True).to_numpy(
        zero_copy_only=False
    )
    if (chars & ~bad).any():
        errs.rows(file, base, chars & ~bad, "household_id", ID_ZH, ID_EN)
    if not increasing(ids) and len(pc.unique(ids)) != len(ids):
        _duplicates(ids, file, base, errs)


def _duplicates(ids: pa.Array, file: str, base: int, errs: Errors) -> None:
    vc = pc.value_counts(ids)
    dups = {d["values"] for d in vc.to_pylist() if d["counts"] > 1}
    mask = pc.is_in(ids, value_set=pa.array(sorted(dups))).to_numpy(zero_copy_only=False)
    errs.rows(file, base, mask, "household_id", "户编号重复", "duplicate household_id")


def dup_members(mid: np.ndarray, hh_of: np.ndarray, file: str, base: int, errs: Errors, largest: int | None = None) -> None:
    """Members whose id an earlier member of the same household has. Households are runs of ``hh_of``: with
    ``largest`` members at most, comparing each member with the ``largest - 1`` before it finds them all."""
    if largest is not None and largest <= 16:
        dup = np.zeros(len(mid), bool)
        for lag in range(1, largest):
            dup[lag:] |= (mid[lag:] == mid[:-lag]) & (hh_of[lag:] == hh_of[:-lag])
    else:
        key = hh_of.astype(np.int64) * (1 << 32) + mid
        order = np.argsort(key, kind="stable")
        sk = key[order]
        dup = np.zeros(len(key), bool)
        same = sk[1:] == sk[:-1]
        dup[order[1:][same]] = True
    if dup.any():
        errs.rows(file, base, dup, "member_id", "成员编号在户内重复", "duplicate member id in the household")


_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2], np.int64)
_CHECK = np.frombuffer(b"10X98765432", np.uint8)


def _id_number_ok(v: str, birth: int) -> bool:
    """One ID number as the single evaluator's pattern reads it (``\\d`` is any Unicode digit, ``$`` allows a final newline)."""
    return bool(re.match(r"^\d{17}[\dX]$", v)) and id_check_digit(v[:17]) == v[17] and int(v[6:14]) == int(birth)


def check_id_numbers(a: pa.Array, birth: np.ndarray, file: str, base: int, errs: Errors) -> None:
    """18 characters, 17 digits and a digit or X, the GB 11643 check character, the birth date of ``birth_date``:
    decided on the UTF-8 bytes for ASCII values; the rare others (non-ASCII digits, a final newline) row by row."""
    if isinstance(a, pa.DictionaryArray):
        a = a.dictionary_decode()
    if not pa.types.is_string(a.type):
        a = a.cast(pa.string())
    n = len(a)
    valid = ~null_mask(a)
    offsets, data = string_bytes(a)
    lens = np.diff(offsets)
    ok = np.zeros(n, bool)
    rows = np.flatnonzero(valid & (lens == 18))
    if len(rows):
        if len(rows) * 18 == offsets[-1] - offsets[0]:  # every value 18 bytes (or null): one block, no gather
            b = data[offsets[0] : offsets[-1]].reshape(-1, 18)
        else:
            b = data[offsets[rows, None] + np.arange(18)]
        total = np.zeros(len(rows), np.int64)
        born = np.zeros(len(rows), np.int64)
        digits = np.ones(len(rows), bool)
        for j in range(17):
            d = b[:, j] - np.uint8(48)  # bytes below "0" wrap around past 9
            digits &= d <= 9
            total += d.astype(np.int64) * _WEIGHTS[j]
            if 6 <= j < 14:
                born = born * 10 + d
        last = b[:, 17]
        digits &= ((last >= 48) & (last <= 57)) | (last == 88)
        ok[rows] = digits & (_CHECK[total % 11] == last) & (born == birth[rows])
    # a value with a byte beyond ASCII, or of 19 bytes ending in a newline, is read as Python's pattern reads it
    odd = valid & ~ok & (lens >= 18)
    if odd.any():
        for i in np.flatnonzero(odd).tolist():
            raw = data[offsets[i] : offsets[i + 1]]
            if (raw >= 128).any() or (len(raw) == 19 and raw[-1] == 10):
                ok[i] = _id_number_ok(bytes(raw).decode(), birth[i])
    bad = valid & ~ok
    if bad.any():
        errs.rows(
            file,
            base,
            bad,
            "id_number",
            "身份证号码格式、校验位或出生日期有误",
            "ID number malformed, wrong check digit or birth date",
        )

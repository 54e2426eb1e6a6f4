"""Row checks that look across cells or rows: the tables' columns, household ids, member ids, ID numbers."""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from engine.schema.model import id_check_digit
from engine.schema.text import ID_EN, ID_RE, ID_ZH

from . import schema as S
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


def check_household_ids(ids: pa.Array, file: str, base: int, errs: Errors) -> None:
    if isinstance(ids, pa.DictionaryArray):
        ids = ids.dictionary_decode()
    lens = pc.utf8_length(ids.cast(pa.string())).to_numpy(zero_copy_only=False)
    col = S.BY_TABLE[S.HOUSEHOLDS]["household_id"]
    bad = (lens < col.lo) | (lens > col.hi)
    if bad.any():
        errs.rows(file, base, bad, "household_id", "应为1到128个字符的文本", "must be 1 to 128 characters")
    chars = ~pc.fill_null(pc.match_substring_regex(ids.cast(pa.string()), f"^(?:{ID_RE.pattern})$"), True).to_numpy(
        zero_copy_only=False
    )
    if (chars & ~bad).any():
        errs.rows(file, base, chars & ~bad, "household_id", ID_ZH, ID_EN)
    if len(pc.unique(ids)) != len(ids):
        vc = pc.value_counts(ids)
        dups = {d["values"] for d in vc.to_pylist() if d["counts"] > 1}
        mask = pc.is_in(ids, value_set=pa.array(sorted(dups))).to_numpy(zero_copy_only=False)
        errs.rows(file, base, mask, "household_id", "户编号重复", "duplicate household_id")


def dup_members(mid: np.ndarray, hh_of: np.ndarray, file: str, base: int, errs: Errors) -> None:
    key = hh_of.astype(np.int64) * (1 << 32) + mid
    order = np.argsort(key, kind="stable")
    sk = key[order]
    dup = np.zeros(len(key), bool)
    same = sk[1:] == sk[:-1]
    if same.any():
        dup[order[1:][same]] = True
        errs.rows(file, base, dup, "member_id", "成员编号在户内重复", "duplicate member id in the household")


_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2], np.int64)
_CHECK = np.frombuffer(b"10X98765432", np.uint8)
_PLACES = 10 ** np.arange(7, -1, -1, dtype=np.int64)  # the 8 birth-date digits as one yyyymmdd number


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
    valid = ~_nulls(a)
    offsets = np.frombuffer(a.buffers()[1], np.int32)[a.offset : a.offset + n + 1].astype(np.int64)
    data = np.frombuffer(a.buffers()[2], np.uint8) if a.buffers()[2] is not None else np.zeros(0, np.uint8)
    lens = np.diff(offsets)
    ok = np.zeros(n, bool)
    rows = np.flatnonzero(valid & (lens == 18))
    if len(rows):
        b = data[offsets[rows, None] + np.arange(18)]
        d = b[:, :17].astype(np.int64) - 48
        digits = ((d >= 0) & (d <= 9)).all(axis=1) & (((b[:, 17] >= 48) & (b[:, 17] <= 57)) | (b[:, 17] == 88))
        check = _CHECK[(np.where(digits[:, None], d, 0) @ _WEIGHTS) % 11] == b[:, 17]
        born = d[:, 6:14] @ _PLACES == birth[rows]
        ok[rows] = digits & check & born
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


def _nulls(a: pa.Array) -> np.ndarray:
    return a.is_null().to_numpy(zero_copy_only=False) if a.null_count else np.zeros(len(a), bool)

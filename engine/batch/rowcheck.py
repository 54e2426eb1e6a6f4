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
            errs.add(file, 0, n, "未知的列（请检查拼写，列说明见 docs/batch.md 或 jiuzhu batch-columns）", "unknown column (check the spelling; see docs/batch.md or jiuzhu batch-columns)")
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
    chars = ~pc.fill_null(pc.match_substring_regex(ids.cast(pa.string()), f"^(?:{ID_RE.pattern})$"), True).to_numpy(zero_copy_only=False)
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


def check_id_numbers(a: pa.Array, birth: np.ndarray, file: str, base: int, errs: Errors) -> None:
    vals = a.cast(pa.string()).to_pylist() if not isinstance(a, pa.DictionaryArray) else a.dictionary_decode().to_pylist()
    bad = np.zeros(len(vals), bool)
    for i, v in enumerate(vals):
        if v is None:
            continue
        ok = bool(re.match(r"^\d{17}[\dX]$", v)) and id_check_digit(v[:17]) == v[17]
        if ok:
            ok = int(v[6:14]) == int(birth[i])
        bad[i] = not ok
    if bad.any():
        errs.rows(
            file,
            base,
            bad,
            "id_number",
            "身份证号码格式、校验位或出生日期有误",
            "ID number malformed, wrong check digit or birth date",
        )

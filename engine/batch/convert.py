"""Cell conversion: one Arrow column of a part into numpy values, refusing bad cells row by row."""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from engine.columnar.columns import FEN
from engine.columnar.values import Interner
from engine.policies import localities
from engine.schema.money import MAX_FEN, MAX_YUAN, MONEY_DIGITS
from engine.schema.record import TAG_PATTERN
from engine.schema.text import ID_EN, ID_ZH, is_id

from . import schema as S
from .errors import Errors

_MONEY_RE = rf"^\d{{1,{MONEY_DIGITS}}}(\.\d{{1,2}})?$"
_TAG_RE = re.compile(TAG_PATTERN)


def array_of(t: pa.Table, name: str) -> pa.Array | None:
    if name not in t.column_names:
        return None
    col = t.column(name)
    return col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col


def _null(a: pa.Array) -> np.ndarray:
    return a.is_null().to_numpy(zero_copy_only=False)


def _texts(a: pa.Array) -> tuple[np.ndarray, list[str | None]]:
    """Dictionary indices (-1 for null) and the dictionary."""
    if not isinstance(a, pa.DictionaryArray):
        if not pa.types.is_string(a.type) and not pa.types.is_large_string(a.type):
            a = a.cast(pa.string())
        a = pc.dictionary_encode(a)
    idx = pc.fill_null(a.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64)
    dictionary = a.dictionary
    if not pa.types.is_string(dictionary.type):
        dictionary = dictionary.cast(pa.string())
    return idx, dictionary.to_pylist()


class Conv:
    """Converts and validates the columns of one part."""

    def __init__(self, errs: Errors, interner: Interner):
        self.errs = errs
        self.I = interner

    def codes(self, a: pa.Array, file: str, base: int, col: S.Column) -> tuple[np.ndarray, np.ndarray]:
        """Interned codes (0 for null) and the null mask, checking enum values and codes."""
        idx, dictionary = _texts(a)
        bad_entries = []
        table = np.zeros(len(dictionary) + 1, dtype=np.int32)
        for j, s in enumerate(dictionary):
            ok = True
            if col.kind == "enum" and s not in col.values:
                ok = False
                msg = (f"取值无效，可选值：{'、'.join(col.values)}", f"invalid value {s!r}, expected one of {list(col.values)}")
            elif col.kind == "locality":
                try:
                    localities.division(s)
                except localities.LocalityError as e:
                    ok = False
                    msg = (e.zh, e.en)
            elif col.kind == "text" and not col.lo <= len(s) <= col.hi:
                ok = False
                msg = ("应为1到128个字符的文本", "must be 1 to 128 characters")
            elif col.name == "member_id" and not is_id(s):
                ok = False
                msg = (ID_ZH, ID_EN)
            if not ok:
                bad_entries.append((j, msg))
            table[j] = self.I.id(s)
        for j, (zh, en) in bad_entries:
            self.errs.rows(file, base, idx == j, col.name, zh, en)
        return table[idx], idx < 0

    def money(self, a: pa.Array, file: str, base: int, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Fen (int64) and the null mask."""
        null = _null(a)
        t = a.type
        if pa.types.is_string(t) or pa.types.is_large_string(t):
            a = pc.utf8_trim_whitespace(a)
            ok = pc.match_substring_regex(a, _MONEY_RE)
            bad = ~pc.fill_null(ok, True).to_numpy(zero_copy_only=False)
            if bad.any():
                self.errs.rows(
                    file,
                    base,
                    bad,
                    name,
                    '金额格式无效，应为不超过两位小数的非负数，如 "1200.50"',
                    "malformed amount: a non-negative number with at most 2 decimals",
                )
                a = pc.if_else(pa.array(bad), pa.scalar(None, a.type), a)
            a = a.cast(pa.decimal128(18, 2))
            t = a.type
        if pa.types.is_decimal(t):
            if t.scale > 2:
                try:
                    a = a.cast(pa.decimal128(38, 2))
                except pa.ArrowInvalid:
                    self.errs.rows(file, base, np.ones(len(a), bool) & ~null, name, "金额最多保留两位小数", "at most 2 decimals")
                    return np.zeros(len(a), np.int64), null
                t = a.type
            if t.bit_width == 256 or t.precision > 18:
                a = a.cast(pa.decimal128(18, t.scale))
                t = a.type
            raw = np.frombuffer(a.buffers()[1], dtype=np.int64)[2 * a.offset : 2 * (a.offset + len(a))].reshape(-1, 2)
            fen = raw[:, 0] * (10 ** (2 - t.scale))
        elif pa.types.is_integer(t):
            # bounded before scaling to fen, which would wrap around in int64 for a huge value
            y = pc.fill_null(a, 0).to_numpy(zero_copy_only=False)
            fen = np.where(y > MAX_YUAN, MAX_FEN + 1, np.clip(y, -MAX_YUAN, MAX_YUAN).astype(np.int64) * FEN)
        elif pa.types.is_floating(t):
            x = pc.fill_null(a, 0).to_numpy(zero_copy_only=False)
            x = np.where(np.isfinite(x), x, MAX_YUAN + 1)
            fen = np.round(np.clip(x, -(MAX_YUAN + 1), MAX_YUAN + 1) * FEN).astype(np.int64)
            off = np.abs(x * FEN - fen) > 1e-6 * np.maximum(1, np.abs(x * FEN))
            if off.any():
                self.errs.rows(file, base, off & ~null, name, "金额最多保留两位小数", "at most 2 decimals")
        else:
            self.errs.rows(file, base, ~null, name, "金额应为数字或数字文本", "amount must be a number")
            return np.zeros(len(a), np.int64), null
        fen = np.where(null, 0, fen)
        neg = fen < 0
        if neg.any():
            self.errs.rows(file, base, neg, name, "金额不能为负数", "amount must not be negative")
        big = fen > MAX_FEN
        if big.any():
            self.errs.rows(file, base, big, name, f"金额过大（最多{MAX_YUAN}.99元）", f"amount is too large (at most {MAX_YUAN}.99 yuan)")
        return fen, null

    def ints(self, a: pa.Array, file: str, base: int, col: S.Column) -> tuple[np.ndarray, np.ndarray]:
        null = _null(a)
        if not pa.types.is_integer(a.type):
            try:
                a = a.cast(pa.int64())
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                self.errs.rows(file, base, ~null, col.name, "应为整数", "must be an integer")
                return np.zeros(len(a), np.int64), null
        v = pc.fill_null(a, col.lo).to_numpy(zero_copy_only=False).astype(np.int64)
        out = (v < col.lo) | (v > col.hi)
        if out.any():
            self.errs.rows(
                file, base, out & ~null, col.name, f"应在{col.lo}到{col.hi}之间", f"must be between {col.lo} and {col.hi}"
            )
        return v, null

    def bools(self, a: pa.Array, file: str, base: int, name: str) -> np.ndarray:
        if not pa.types.is_boolean(a.type):
            try:
                a = a.cast(pa.bool_())
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                self.errs.rows(file, base, ~_null(a), name, "应为 true 或 false", "must be true or false")
                return np.zeros(len(a), bool)
        return pc.fill_null(a, False).to_numpy(zero_copy_only=False).astype(bool)

    def dates(self, a: pa.Array, file: str, base: int, name: str) -> tuple[np.ndarray, np.ndarray]:
        """``yyyymmdd`` integers and the null mask."""
        null = _null(a)
        t = a.type
        if pa.types.is_string(t) or pa.types.is_large_string(t) or isinstance(a, pa.DictionaryArray):
            if isinstance(a, pa.DictionaryArray):
                a = a.dictionary_decode()
            a = pc.utf8_trim_whitespace(a)
            ok = pc.fill_null(pc.match_substring_regex(a, r"^\d{4}-\d{2}-\d{2}$"), True).to_numpy(zero_copy_only=False)
            parsed = []
            bad = ~ok
            for i, s in enumerate(a.to_pylist()):
                if s is None or bad[i]:
                    parsed.append(None)
                    continue
                try:
                    parsed.append(dt.date.fromisoformat(s))
                except ValueError:
                    bad[i] = True
                    parsed.append(None)
            if bad.any():
                self.errs.rows(file, base, bad, name, "日期格式应为 YYYY-MM-DD 且为有效日期", "date must be a valid YYYY-MM-DD")
            a = pa.array(parsed, pa.date32())
        elif pa.types.is_timestamp(t) or pa.types.is_date64(t):
            a = a.cast(pa.date32())
        elif not pa.types.is_date32(t):
            self.errs.rows(file, base, ~null, name, "应为日期", "must be a date")
            return np.zeros(len(a), np.int64), null
        days = pc.fill_null(a, 0).cast(pa.int32()).to_numpy(zero_copy_only=False).astype("datetime64[D]")
        months = days.astype("datetime64[M]")
        years = months.astype("datetime64[Y]")
        y = years.astype(np.int64) + 1970
        m = (months - years.astype("datetime64[M]")).astype(np.int64) + 1
        d = (days - months.astype("datetime64[D]")).astype(np.int64) + 1
        return y * 10000 + m * 100 + d, null

    def lists(self, a: pa.Array, file: str, base: int, col: S.Column) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(row index, interned code) of every element of a list column, and the column's null mask."""
        null = _null(a)
        empty = np.zeros(0, np.int64)
        if a.null_count == len(a):
            return empty, empty, null
        if isinstance(a, pa.DictionaryArray):
            a = a.dictionary_decode()
        if pa.types.is_string(a.type) or pa.types.is_large_string(a.type):
            a = pc.split_pattern(a, ",")
        if not (pa.types.is_list(a.type) or pa.types.is_large_list(a.type)):
            self.errs.rows(
                file, base, ~null, col.name, "应为逗号分隔的文本或字符串列表", "must be comma-separated text or a list"
            )
            return empty, empty, null
        rows = pc.list_parent_indices(a).to_numpy(zero_copy_only=False).astype(np.int64)
        flat = pc.utf8_trim_whitespace(pc.list_flatten(a).cast(pa.string()))
        idx, dictionary = _texts(flat)
        keep = idx >= 0
        codes = np.zeros(len(dictionary) + 1, np.int64)
        bad_entries = []
        for j, v in enumerate(dictionary):
            if not v:
                keep &= idx != j  # "a,,b" or a trailing comma: no element
                continue
            if (col.values and v not in col.values) or (col.name == "tags" and not _TAG_RE.match(v)):
                bad_entries.append(j)
            codes[j] = self.I.id(v)
        if bad_entries:
            bad = np.zeros(len(a), bool)
            bad[rows[np.isin(idx, bad_entries)]] = True
            allowed = "、".join(col.values) if col.values else "小写英文字母、数字和下划线"
            self.errs.rows(file, base, bad, col.name, f"取值无效（可选：{allowed}）", "invalid value in list")
        return rows[keep], codes[idx[keep]], null

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


def array_of(t: pa.Table, name: str, chunked: bool = False) -> pa.Array | pa.ChunkedArray | None:
    """A column as one array (``chunked``: as it is, for a reader that takes it chunk by chunk)."""
    if name not in t.column_names:
        return None
    col = t.column(name)
    if not isinstance(col, pa.ChunkedArray):
        return col
    if col.num_chunks == 1:
        return col.chunk(0)
    return col if chunked else col.combine_chunks()


def null_mask(a: pa.Array) -> np.ndarray:
    """The null mask, unpacked from the validity bitmap (no mask to build when there are no nulls)."""
    n = len(a)
    if a.null_count == 0:
        return np.zeros(n, bool)
    if a.null_count == n:
        return np.ones(n, bool)
    own = a.indices if isinstance(a, pa.DictionaryArray) else a
    bits = own.buffers()[0]
    if bits is None:  # pragma: no cover - a null count without a bitmap (union types): let Arrow say
        return a.is_null().to_numpy(zero_copy_only=False)
    valid = np.unpackbits(np.frombuffer(bits, np.uint8), count=own.offset + n, bitorder="little")[own.offset :]
    return valid == 0


def string_bytes(a: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """A string array's offsets (int64, ``len(a) + 1`` of them, into the data buffer) and its UTF-8 data
    buffer, as numpy without copying the data: for checks that look at every id's bytes at once."""
    n = len(a)
    offsets = np.frombuffer(a.buffers()[1], np.int32)[a.offset : a.offset + n + 1].astype(np.int64)
    data = np.frombuffer(a.buffers()[2], np.uint8) if a.buffers()[2] is not None else np.zeros(0, np.uint8)
    return offsets, data


def _values(a: pa.Array, dtype) -> np.ndarray:
    """The value buffer of a fixed-width array as numpy, without copying (null slots hold anything)."""
    return np.frombuffer(a.buffers()[1], dtype=dtype)[a.offset : a.offset + len(a)]


def _texts(a: pa.Array) -> tuple[np.ndarray, list[str | None]]:
    """Dictionary indices (int32, -1 for null) and the dictionary."""
    if not isinstance(a, pa.DictionaryArray):
        if not pa.types.is_string(a.type) and not pa.types.is_large_string(a.type):
            a = a.cast(pa.string())
        a = pc.dictionary_encode(a)
    ind = a.indices
    if not pa.types.is_int32(ind.type):
        ind = ind.cast(pa.int32())
    idx = _values(ind, np.int32)
    if ind.null_count:
        idx = np.where(null_mask(ind), np.int32(-1), idx)
    dictionary = a.dictionary
    if not pa.types.is_string(dictionary.type):
        dictionary = dictionary.cast(pa.string())
    return idx, dictionary.to_pylist()


_DAY_MIN = (dt.date(1, 1, 1) - dt.date(1970, 1, 1)).days
_DAY_MAX = (dt.date(9999, 12, 31) - dt.date(1970, 1, 1)).days


def ymd_of_days(days: np.ndarray) -> np.ndarray:
    """``yyyymmdd`` (int32) of day numbers since 1970-01-01 in 0001-01-01..9999-12-31."""
    if not len(days):
        return np.zeros(0, np.int32)
    lo, hi = int(days.min()), int(days.max())
    if hi - lo < len(days):  # births and as_of dates span decades: convert each day once, then look up
        return _civil(np.arange(lo, hi + 1, dtype=np.int32))[days - lo]
    return _civil(days.astype(np.int32, copy=False))


def _civil(days: np.ndarray) -> np.ndarray:
    # civil-from-days (H. Hinnant), in integers: years of 400 (146097 days) starting on 1 March
    z = days + np.int32(719468)
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = np.where(mp < 10, mp + 3, mp - 9)
    y = yoe + era * 400 + (m <= 2)
    return (y * 10000 + m * 100 + d).astype(np.int32, copy=False)


def _to_fen(units: np.ndarray, scale: int) -> None:
    """Decimal units of ``scale`` (at most 2) as fen, in place; bounded first, so that an amount too large
    stays too large rather than wrapping around int64 (10^17 yuan is 10^19 fen)."""
    if scale != 2:
        m = 10 ** (2 - scale)
        np.clip(units, -(MAX_FEN // m) - 1, MAX_FEN // m + 1, out=units)
        units *= m


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

    def money(self, a: pa.Array, file: str, base: int, name: str, out: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Fen (int64, in ``out`` when given) and the null mask."""
        if isinstance(a, pa.ChunkedArray):
            t = a.type
            if pa.types.is_decimal128(t) and t.scale <= 2 and t.precision <= 18:
                return self._decimal_chunks(a, file, base, name, out)
            a = a.combine_chunks()
        null = null_mask(a)
        null_count = a.null_count
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
        if pa.types.is_decimal(t) and t.scale > 2:
            try:
                a = a.cast(pa.decimal128(38, 2))
                t = a.type
            except pa.ArrowInvalid:
                self.errs.rows(file, base, np.ones(len(a), bool) & ~null, name, "金额最多保留两位小数", "at most 2 decimals")
                t = pa.null()  # no amount: zeros below
        if pa.types.is_null(t):
            fen = np.zeros(len(a), np.int64)
        elif pa.types.is_decimal(t):
            if t.bit_width == 256 or t.precision > 18:
                a = a.cast(pa.decimal128(18, t.scale))
                t = a.type
            raw = np.frombuffer(a.buffers()[1], dtype=np.int64)[2 * a.offset : 2 * (a.offset + len(a))].reshape(-1, 2)
            # the low words (< 10^18), zero where null, in one pass
            fen = np.multiply(raw[:, 0], ~null if null_count else 1, out=out)
            _to_fen(fen, t.scale)
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
            fen = np.zeros(len(a), np.int64)
        if out is not None and fen is not out:
            out[:] = fen
            fen = out
        if null_count and not pa.types.is_decimal(t):
            np.multiply(fen, ~null, out=fen)  # a boolean assignment (fen[null] = 0) takes four times as long
        return self._bounded(fen, null, file, base, name)

    def _decimal_chunks(self, a: pa.ChunkedArray, file: str, base: int, name: str, out: np.ndarray | None):
        """``money`` of a decimal column in several chunks, each written into its rows (the column is
        never combined: decimals are 16 bytes a row, most of a part's bytes)."""
        fen = out if out is not None else np.empty(len(a), np.int64)
        nulls = []
        at = 0
        for c in a.chunks:
            n = len(c)
            null = null_mask(c)
            nulls.append(null)
            if n:
                raw = np.frombuffer(c.buffers()[1], dtype=np.int64)[2 * c.offset : 2 * (c.offset + n)].reshape(-1, 2)
                np.multiply(raw[:, 0], ~null if c.null_count else 1, out=fen[at : at + n])
            at += n
        _to_fen(fen, a.type.scale)
        return self._bounded(fen, np.concatenate(nulls) if nulls else np.zeros(0, bool), file, base, name)

    def _bounded(self, fen: np.ndarray, null: np.ndarray, file: str, base: int, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Amounts refused below zero or beyond the bound."""
        if not len(fen):
            return fen, null
        if fen.min() < 0:
            self.errs.rows(file, base, fen < 0, name, "金额不能为负数", "amount must not be negative")
        if fen.max() > MAX_FEN:
            self.errs.rows(
                file,
                base,
                fen > MAX_FEN,
                name,
                f"金额过大（最多{MAX_YUAN}.99元）",
                f"amount is too large (at most {MAX_YUAN}.99 yuan)",
            )
        return fen, null

    def ints(self, a: pa.Array, file: str, base: int, col: S.Column) -> tuple[np.ndarray, np.ndarray]:
        null = null_mask(a)
        if not pa.types.is_integer(a.type):
            try:
                a = a.cast(pa.int64())
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                self.errs.rows(file, base, ~null, col.name, "应为整数", "must be an integer")
                return np.zeros(len(a), np.int64), null
        if pa.types.is_int64(a.type):
            v = _values(a, np.int64)  # Arrow's memory, read-only: the columns get their own copy
            v = np.where(null, np.int64(col.lo), v) if a.null_count else v.copy()
        else:
            v = np.asarray(pc.fill_null(a, col.lo).to_numpy(zero_copy_only=False), dtype=np.int64)
        if len(v) and (v.min() < col.lo or v.max() > col.hi):
            out = (v < col.lo) | (v > col.hi)
            self.errs.rows(
                file, base, out & ~null, col.name, f"应在{col.lo}到{col.hi}之间", f"must be between {col.lo} and {col.hi}"
            )
        return v, null

    def bools(self, a: pa.Array, file: str, base: int, name: str) -> np.ndarray:
        if not pa.types.is_boolean(a.type):
            try:
                a = a.cast(pa.bool_())
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                self.errs.rows(file, base, ~null_mask(a), name, "应为 true 或 false", "must be true or false")
                return np.zeros(len(a), bool)
        n = len(a)
        if a.buffers()[1] is None:
            return np.zeros(n, bool)
        values = np.unpackbits(np.frombuffer(a.buffers()[1], np.uint8), count=a.offset + n, bitorder="little")[a.offset :]
        v = values.view(bool)
        if a.null_count:
            v &= ~null_mask(a)  # false where null
        return v

    def dates(self, a: pa.Array, file: str, base: int, name: str) -> tuple[np.ndarray, np.ndarray]:
        """``yyyymmdd`` integers (int32; 19700101 where null) and the null mask."""
        null = null_mask(a)
        t = a.type
        if pa.types.is_string(t) or pa.types.is_large_string(t) or isinstance(a, pa.DictionaryArray):
            a = self._parse_dates(a, null, file, base, name)
        elif pa.types.is_timestamp(t) or pa.types.is_date64(t):
            a = a.cast(pa.date32())
        elif not pa.types.is_date32(t):
            self.errs.rows(file, base, ~null, name, "应为日期", "must be a date")
            return np.zeros(len(a), np.int32), null
        days = _values(a, np.int32)
        if a.null_count:
            days = np.where(null, np.int32(0), days)
        if len(days) and (days.min() < _DAY_MIN or days.max() > _DAY_MAX):
            far = (days < _DAY_MIN) | (days > _DAY_MAX)
            self.errs.rows(
                file, base, far, name, "日期超出范围（0001-01-01 至 9999-12-31）", "date out of range (0001-01-01 to 9999-12-31)"
            )
            days = np.where(far, np.int32(0), days)
        return ymd_of_days(days), null

    def _parse_dates(self, a: pa.Array, null: np.ndarray, file: str, base: int, name: str) -> pa.Array:
        """Text ``YYYY-MM-DD`` dates as date32 (null where refused)."""
        if isinstance(a, pa.DictionaryArray):
            a = a.dictionary_decode()
        a = pc.utf8_trim_whitespace(a)
        bad = ~pc.fill_null(pc.match_substring_regex(a, r"^\d{4}-\d{2}-\d{2}$"), True).to_numpy(zero_copy_only=False)
        if bad.any():
            a = pc.if_else(pa.array(bad), pa.scalar(None, a.type), a)
        try:
            days = a.cast(pa.date32())
        except pa.ArrowInvalid:  # a day that does not exist (2021-02-30): find which, row by row
            parsed = []
            for i, v in enumerate(a.to_pylist()):
                try:
                    parsed.append(None if v is None else dt.date.fromisoformat(v))
                except ValueError:
                    bad[i] = True
                    parsed.append(None)
            days = pa.array(parsed, pa.date32())
        year0 = pc.fill_null(pc.less(days, pa.scalar(_DAY_MIN, pa.int32()).cast(pa.date32())), False)
        bad |= year0.to_numpy(zero_copy_only=False)  # 0000-01-01: Arrow reads it, a calendar date it is not
        if bad.any():
            self.errs.rows(file, base, bad, name, "日期格式应为 YYYY-MM-DD 且为有效日期", "date must be a valid YYYY-MM-DD")
            days = pc.if_else(pa.array(bad), pa.scalar(None, pa.date32()), days)
        return days

    def lists(self, a: pa.Array, file: str, base: int, col: S.Column) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(row index, interned code) of every element of a list column, and the column's null mask."""
        null = null_mask(a)
        empty = np.zeros(0, np.int64)
        if a.null_count == len(a):
            return empty, empty, null
        if isinstance(a, pa.DictionaryArray) and pa.types.is_string(a.dictionary.type):
            return (*self._dictionary_lists(a, file, base, col), null)
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

    def _dictionary_lists(self, a: pa.DictionaryArray, file: str, base: int, col: S.Column) -> tuple[np.ndarray, np.ndarray]:
        """``lists`` of comma-separated text read as a dictionary: each distinct text is split once."""
        idx, dictionary = _texts(a)
        counts = np.zeros(len(dictionary) + 1, np.int64)  # elements of each text; the last entry stands for null
        flat: list[int] = []
        bad_entries = []
        lists = pc.split_pattern(pa.array(dictionary, pa.string()), ",")
        split = pc.utf8_trim_whitespace(pc.list_flatten(lists)).to_pylist()
        ends = np.cumsum(pc.fill_null(pc.list_value_length(lists), 0).to_numpy(zero_copy_only=False)).tolist()
        for j in range(len(dictionary)):
            elements = [v for v in split[ends[j - 1] if j else 0 : ends[j]] if v]  # "a,,b" or a trailing comma: no element
            if any((col.values and v not in col.values) or (col.name == "tags" and not _TAG_RE.match(v)) for v in elements):
                bad_entries.append(j)
            flat.extend(self.I.id(v) for v in elements)
            counts[j] = len(elements)
        if bad_entries:
            allowed = "、".join(col.values) if col.values else "小写英文字母、数字和下划线"
            self.errs.rows(
                file, base, np.isin(idx, bad_entries), col.name, f"取值无效（可选：{allowed}）", "invalid value in list"
            )
        per_row = counts[idx]
        rows = np.repeat(np.arange(len(idx), dtype=np.int64), per_row)
        if not len(rows):
            return rows, np.zeros(0, np.int64)
        starts = np.zeros(len(counts), np.int64)
        np.cumsum(counts[:-1], out=starts[1:])
        first = np.cumsum(per_row) - per_row  # where each row's elements begin in the output
        at = starts[idx][rows] + np.arange(len(rows)) - first[rows]
        return rows, np.array(flat, np.int64)[at]

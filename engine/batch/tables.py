"""Reading populations from files: Parquet or CSV tables, or JSON lines.

Tables (``schema.COLUMNS``) are read in parts of a bounded number of households, so a
population of any size is evaluated within a fixed memory budget: households in
order, and for each part the members that follow it in the members table (members
are grouped by household, in the households' order, as ``jiuzhu synth`` and a
database export sorted by household write them; other orders are read whole and
sorted). Every value is validated as ``engine.schema.validate`` validates a household: an
unknown enum, negative or 3-decimal money, a bad code or date, duplicate ids, a
birth after ``as_of``... is refused, naming the file, the row and the column, and
nothing is evaluated or written.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from engine.columnar.columns import FEN, Part, from_parsed
from engine.columnar.values import Bool, Date, Interner, List, Num, Set, Str, V
from engine.policies import localities
from engine.schema.facts import HOUSEHOLD_FACTS, MEMBER_FIELDS
from engine.schema.jsonlines import looks_like_plain_json
from engine.schema.model import PROGRAM_CODES, InputError, id_check_digit
from engine.schema.money import MAX_FEN, MAX_YUAN, MONEY_DIGITS, MoneyError, fmt_money, parse_money
from engine.schema.text import ID_EN, ID_RE, ID_ZH, is_id
from engine.schema.validate import MAX_MEMBERS, parse

from . import schema as S

DEFAULT_PART = 100_000  # households per part: one part is written while the next is read; 5M households peak at 1.52 GB
MAX_ERRORS = 50
_MONEY_RE = rf"^\d{{1,{MONEY_DIGITS}}}(\.\d{{1,2}})?$"
_TAG_RE = re.compile(r"^[a-z][a-z0-9_]{0,47}$")


# -- errors -------------------------------------------------------------------------


@dataclass
class RowError:
    file: str
    row: int  # 1-based data row in the file
    column: str
    zh: str
    en: str

    def __str__(self) -> str:
        return f"{self.file} 第{self.row}行 {self.column}: {self.zh} ({self.en})"


class PopulationError(ValueError):
    """The population files are malformed; nothing was evaluated or written."""

    def __init__(self, errors: list[RowError], total: int | None = None):
        self.errors = errors
        self.total = total if total is not None else len(errors)
        super().__init__("\n".join(str(e) for e in errors[:MAX_ERRORS]))


class _Errors:
    def __init__(self) -> None:
        self.items: list[RowError] = []
        self.total = 0

    def add(self, file: str, row: int, column: str, zh: str, en: str) -> None:
        self.total += 1
        if len(self.items) < MAX_ERRORS:
            self.items.append(RowError(file, row, column, zh, en))

    def rows(self, file: str, base: int, mask: np.ndarray, column: str, zh: str, en: str) -> None:
        """Report every row of a part where ``mask`` holds."""
        bad = np.flatnonzero(mask)
        self.total += len(bad)
        for i in bad[: max(0, MAX_ERRORS - len(self.items))].tolist():
            self.items.append(RowError(file, base + i + 1, column, zh, en))

    def raise_if_any(self) -> None:
        if self.total:
            raise PopulationError(self.items, self.total)


# -- sources -------------------------------------------------------------------------


@dataclass
class RawPart:
    """One part of a table population, as read: Arrow tables, members aligned to households."""

    hh: pa.Table
    mem: pa.Table
    ev: pa.Table | None
    sizes: np.ndarray
    h_base: int  # rows of the households file before this part
    m_base: int
    files: tuple[str, str, str]
    offsets: np.ndarray | None = None


class Source:
    """A population on disk: ``DIR/{households,members}[.parquet|.csv]`` (+ events), or a ``.jsonl`` file."""

    def __init__(self, path: Path):
        path = Path(path)
        self.path = path
        self.format = ""
        self.files: dict[str, Path] = {}
        if path.is_file() and path.suffix in (".jsonl", ".ndjson", ".json"):
            self.format = "jsonl"
            self.files["households"] = path
            return
        if not path.is_dir():
            raise FileNotFoundError(f"找不到人口数据 {path} / population not found: {path}")
        for fmt in ("parquet", "csv"):
            h, m = path / f"households.{fmt}", path / f"members.{fmt}"
            if h.exists() and m.exists():
                self.format = fmt
                self.files = {"households": h, "members": m}
                ev = path / f"events.{fmt}"
                if ev.exists():
                    self.files["events"] = ev
                return
        for name in ("households.jsonl", "households.ndjson"):
            if (path / name).exists():
                self.format = "jsonl"
                self.files["households"] = path / name
                return
        raise FileNotFoundError(
            f"{path} 中没有 households.parquet + members.parquet（或 .csv，或 households.jsonl） / "
            f"{path} holds no households/members tables or households.jsonl"
        )

    @property
    def synthetic(self) -> bool:
        if self.format == "parquet":
            import pyarrow.parquet as pq  # only the format in use is loaded (pyarrow readers are heavy)

            meta = pq.read_schema(self.files["households"]).metadata or {}
            return meta.get(b"jiuzhu.synthetic") == b"true"
        return (self.path / "SYNTHETIC.txt").exists() if self.path.is_dir() else False

    def count(self) -> int | None:
        """Households in the population, when cheap to know (Parquet metadata)."""
        if self.format == "parquet":
            import pyarrow.parquet as pq  # only the format in use is loaded (pyarrow readers are heavy)

            return pq.ParquetFile(self.files["households"]).metadata.num_rows
        return None

    # -- batches ---------------------------------------------------------------
    def _batches(self, table: str, columns: list[str] | None, batch_rows: int) -> Iterator[pa.RecordBatch]:
        path = self.files[table]
        if self.format == "parquet":
            import pyarrow.parquet as pq  # only the format in use is loaded (pyarrow readers are heavy)

            f = pq.ParquetFile(path, read_dictionary=_dictionary_columns(table, pq.read_schema(path).names))
            names = f.schema_arrow.names
            cols = [c for c in columns if c in names] if columns is not None else None
            yield from f.iter_batches(batch_size=batch_rows, columns=cols)
            return
        import pyarrow.csv as pcsv  # only the format in use is loaded (pyarrow readers are heavy)

        header = _csv_header(path)
        _check_columns(table, header, path.name)
        types = {c: _csv_type(S.BY_TABLE[table][c]) for c in header if c in S.BY_TABLE[table]}
        opts = pcsv.ConvertOptions(
            column_types=types,
            include_columns=[c for c in columns if c in header] if columns is not None else None,
            strings_can_be_null=True,
            true_values=["true", "True", "TRUE", "1"],
            false_values=["false", "False", "FALSE", "0"],
        )
        try:
            reader = pcsv.open_csv(path, convert_options=opts, read_options=pcsv.ReadOptions(block_size=1 << 24))
            yield from reader
        except pa.ArrowInvalid as e:
            raise PopulationError([RowError(path.name, 0, "", f"CSV 无法读取：{e}", f"unreadable CSV: {e}")]) from None

    def columns(self, table: str) -> list[str]:
        path = self.files[table]
        if self.format == "parquet":
            import pyarrow.parquet as pq  # only the format in use is loaded (pyarrow readers are heavy)

            return pq.read_schema(path).names
        return _csv_header(path)

    def read_table(self, table: str, columns: list[str] | None = None) -> pa.Table:
        batches = list(self._batches(table, columns, 1 << 20))
        if not batches:
            names = [c for c in (columns or self.columns(table)) if c in self.columns(table)]
            return pa.table({n: pa.array([], pa.string()) for n in names})
        return pa.Table.from_batches(batches)

    # -- parts -----------------------------------------------------------------
    def parts(self, part_size: int = DEFAULT_PART, columns: dict[str, list[str]] | None = None) -> Iterator[RawPart]:
        """Aligned parts of households with their members (and events)."""
        if self.format == "jsonl":
            raise ValueError("JSON lines are read with jsonl_parts()")
        hcols = self.columns("households")
        mcols = self.columns("members")
        fn = (self.files["households"].name, self.files["members"].name, self.files.get("events", Path("events")).name)
        _check_columns("households", hcols, fn[0])
        _check_columns("members", mcols, fn[1])
        for need in ("household_id",):
            if need not in mcols:
                raise PopulationError([RowError(fn[1], 0, need, "缺少必需的列", "required column missing")])
        want_h = columns.get("households") if columns else None
        want_m = columns.get("members") if columns else None
        events = self.read_table("events") if "events" in self.files else None
        if events is not None:
            _check_columns("events", events.column_names, fn[2])
        h_stream = _Stream(self._batches("households", want_h, part_size))
        m_stream = _Stream(self._batches("members", want_m, 1 << 18))
        h_base = m_base = 0
        while True:
            hh = h_stream.take(part_size)
            if hh is None:
                break
            ids = hh.column("household_id")
            if ids.null_count:
                _raise_rows(fn[0], h_base, ids.is_null().to_numpy(zero_copy_only=False), "household_id", "缺少户编号", "missing")
            errs = _Errors()
            _codes_check_text(ids, fn[0], h_base, errs)
            errs.raise_if_any()
            mem = m_stream.take_through(ids[len(ids) - 1].as_py())
            sizes = _aligned_sizes(ids, mem)
            if sizes is None:
                yield from self._parts_unordered(part_size, want_h, want_m, events, fn)
                return
            ev = _events_for(events, ids)
            yield RawPart(hh, mem, ev, sizes, h_base, m_base, fn)
            h_base += hh.num_rows
            m_base += mem.num_rows
        rest = m_stream.take(1)
        if rest is not None and rest.num_rows:
            hid = rest.column("household_id")[0].as_py()
            raise PopulationError(
                [RowError(fn[1], m_base + 1, "household_id", f"户编号 {hid} 不在 households 表中", "unknown household")]
            )

    def _parts_unordered(self, part_size, want_h, want_m, events, fn) -> Iterator[RawPart]:
        """Members not grouped in the households' order: read both tables whole and sort."""
        hh = self.read_table("households", want_h)
        mem = self.read_table("members", want_m)
        ids = hh.column("household_id").combine_chunks()
        errs = _Errors()
        _codes_check_text(ids, fn[0], 0, errs)
        errs.raise_if_any()
        pos = pc.index_in(mem.column("household_id"), value_set=ids)
        nulls = pos.is_null().to_numpy(zero_copy_only=False)
        if nulls.any():
            _raise_rows(fn[1], 0, nulls, "household_id", "户编号不在 households 表中", "unknown household")
        p = pos.to_numpy(zero_copy_only=False).astype(np.int64)
        order = np.argsort(p, kind="stable")
        mem = mem.take(pa.array(order))
        sizes_all = np.bincount(p, minlength=hh.num_rows).astype(np.int64)
        m_off = np.concatenate([[0], np.cumsum(sizes_all)])
        for a in range(0, hh.num_rows, part_size):
            b = min(hh.num_rows, a + part_size)
            part_ids = ids.slice(a, b - a)
            yield RawPart(
                hh.slice(a, b - a),
                mem.slice(int(m_off[a]), int(m_off[b] - m_off[a])),
                _events_for(events, part_ids),
                sizes_all[a:b],
                a,
                -1,  # member rows were reordered: report member errors by household
                fn,
            )

    def jsonl_parts(self, part_size: int = DEFAULT_PART) -> Iterator[tuple[list, int]]:
        """Validated households of a JSON-lines file, in parts: (parsed list, first line number)."""
        path = self.files["households"]
        errs = _Errors()
        buf: list = []
        first = 1
        with path.open("rb") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                if not buf and not errs.items:
                    _refuse_plain_json(path, lineno, line)
                try:
                    buf.append(parse(line))
                except InputError as e:
                    for fe in e.errors:
                        errs.add(path.name, lineno, fe.field, fe.message_zh, fe.message_en)
                    continue
                if len(buf) >= part_size:
                    errs.raise_if_any()
                    yield buf, first
                    buf, first = [], lineno + 1
        errs.raise_if_any()
        if buf:
            yield buf, first


def _refuse_plain_json(path: Path, lineno: int, line: bytes) -> None:
    """A JSON array, or one object spread over lines, is not JSON Lines: say so once."""
    if not looks_like_plain_json(line):
        return
    raise PopulationError(
        [
            RowError(
                path.name,
                lineno,
                "(file)",
                "这是普通 JSON（数组或跨行的对象），批量评估需要 JSON Lines：每行一户，一个 JSON 对象",
                "this is plain JSON (an array or an object over several lines); expected JSON Lines: "
                "one household per line, each a JSON object",
            )
        ]
    )


class _Stream:
    """Record batches taken a number of rows (or a household's members) at a time."""

    def __init__(self, it: Iterator[pa.RecordBatch]):
        self.it = it
        self.buf: list[pa.RecordBatch] = []
        self.rows = 0
        self.eof = False

    def _more(self) -> bool:
        if self.eof:
            return False
        try:
            b = next(self.it)
        except StopIteration:
            self.eof = True
            return False
        self.buf.append(b)
        self.rows += b.num_rows
        return True

    def _split(self, n: int) -> pa.Table:
        t = pa.Table.from_batches(self.buf) if self.buf else None
        if t is None:
            return None  # type: ignore[return-value]
        head, tail = t.slice(0, n), t.slice(n)
        self.buf = tail.to_batches() if tail.num_rows else []
        self.rows = tail.num_rows
        return head

    def take(self, n: int) -> pa.Table | None:
        while self.rows < n and self._more():
            pass
        if self.rows == 0:
            return None
        return self._split(min(n, self.rows))

    def take_through(self, last_id: str) -> pa.Table:
        """Rows up to and including the last row of household ``last_id`` (members are grouped).

        Each buffered batch is compared with ``last_id`` once; the run of that household ends
        at its last hit, provided a different household (or the end of the file) follows."""
        scanned = 0  # batches of the buffer already compared
        seen = 0  # rows in those batches
        last_hit = -1
        while True:
            while scanned < len(self.buf):
                b = self.buf[scanned]
                eq = pc.equal(b.column("household_id"), last_id)
                hits = np.flatnonzero(pc.fill_null(eq, False).to_numpy(zero_copy_only=False))
                if hits.size:
                    last_hit = seen + int(hits[-1])
                elif last_hit >= 0:
                    return self._split(last_hit + 1)  # the run ended in an earlier batch
                seen += b.num_rows
                scanned += 1
            if last_hit >= 0 and last_hit < seen - 1:
                return self._split(last_hit + 1)
            if not self._more():
                if last_hit >= 0:
                    return self._split(last_hit + 1)
                if not self.buf:
                    return pa.table({"household_id": pa.array([], pa.string())})
                return self._split(self.rows)


def _aligned_sizes(ids: pa.Array, mem: pa.Table) -> np.ndarray | None:
    """Members per household when the members are grouped in the households' order, else None."""
    if mem.num_rows == 0:
        return None
    col = mem.column("household_id").combine_chunks()
    if isinstance(col, pa.DictionaryArray):
        col = col.dictionary_decode()
    if col.null_count:
        return None
    n = len(col)
    if n > 1:
        change = pc.not_equal(col.slice(1), col.slice(0, n - 1)).to_numpy(zero_copy_only=False)
        starts = np.concatenate([[0], np.flatnonzero(change) + 1])
    else:
        starts = np.array([0])
    if len(starts) != len(ids):
        return None
    runs = col.take(pa.array(starts))
    idc = ids.dictionary_decode() if isinstance(ids, pa.DictionaryArray) else ids
    if not pc.all(pc.equal(runs, idc.cast(runs.type))).as_py():
        return None
    return np.diff(np.concatenate([starts, [n]])).astype(np.int64)


def _events_for(events: pa.Table | None, ids: pa.Array) -> pa.Table | None:
    if events is None:
        return None
    mask = pc.is_in(events.column("household_id"), value_set=ids)
    return events.filter(mask)


def _dictionary_columns(table: str, names: list[str]) -> list[str]:
    cols = S.BY_TABLE.get(table, {})
    return [n for n in names if n in cols and cols[n].kind in ("enum", "locality")]


def _csv_header(path: Path) -> list[str]:
    with path.open("r", encoding="utf-8-sig", newline="") as f:
        row = next(csv.reader(f), [])
    return [c.strip() for c in row]


def _csv_type(c: S.Column):
    return {
        "date": pa.string(),
        "money": pa.string(),
        "int": pa.int64(),
        "bool": pa.bool_(),
    }.get(c.kind, pa.string())


def _check_columns(table: str, names: list[str], file: str) -> None:
    known = S.BY_TABLE[table]
    errs = _Errors()
    for n in names:
        if n not in known:
            errs.add(file, 0, n, "未知的列（请检查拼写，列说明见 docs/batch.md 或 jiuzhu batch-columns）", "unknown column (check the spelling; see docs/batch.md or jiuzhu batch-columns)")
    for c in known.values():
        if c.required and c.name not in names and c.name != "as_of":
            errs.add(file, 0, c.name, "缺少必需的列", "required column missing")
    errs.raise_if_any()


def _raise_rows(file: str, base: int, mask: np.ndarray, column: str, zh: str, en: str) -> None:
    e = _Errors()
    e.rows(file, base, mask, column, zh, en)
    e.raise_if_any()


# -- column conversion ----------------------------------------------------------------


def _arr(t: pa.Table, name: str) -> pa.Array | None:
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


class _Conv:
    """Converts and validates the columns of one part."""

    def __init__(self, errs: _Errors, interner: Interner):
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
            elif col.kind == "text" and (not s or len(s) > (64 if col.name in ("member_id", "type") else 128)):
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


# -- building a Part from tables -------------------------------------------------------


def build_part(raw: RawPart, interner: Interner, need_h: set[str], need_m: set[str], as_of: dt.date | None) -> Part:
    """Validate a raw part and turn it into the facts' columns."""
    errs = _Errors()
    cv = _Conv(errs, interner)
    hh, mem = raw.hh, raw.mem
    fh, fm, fe = raw.files
    hb, mb = raw.h_base, max(raw.m_base, 0)
    H, M = hh.num_rows, mem.num_rows
    sizes = raw.sizes
    offsets = np.zeros(H + 1, dtype=np.int64)
    np.cumsum(sizes, out=offsets[1:])
    hcol = S.BY_TABLE[S.HOUSEHOLDS]
    mcol = S.BY_TABLE[S.MEMBERS]
    hcols: dict[str, V] = {}
    mcols: dict[str, V] = {}

    # households: identity, place, date
    ids = _arr(hh, "household_id")  # checked (length, uniqueness) when the part was read
    loc, locnull = cv.codes(_arr(hh, "locality"), fh, hb, hcol["locality"])
    if locnull.any():
        errs.rows(fh, hb, locnull, "locality", "缺少必填字段", "field required")
    hcols["locality"] = Str(loc)
    area, areanull = cv.codes(_arr(hh, "area"), fh, hb, hcol["area"])
    if areanull.any():
        errs.rows(fh, hb, areanull, "area", "缺少必填字段", "field required")
    hcols["area"] = Str(area)
    if as_of is not None:
        asof = np.full(H, as_of.year * 10000 + as_of.month * 100 + as_of.day, dtype=np.int64)
    else:
        a = _arr(hh, "as_of")
        if a is None:
            raise PopulationError([RowError(fh, 0, "as_of", "缺少 as_of 列；请给出 --as-of", "no as_of column: give --as-of")])
        asof, nulls = cv.dates(a, fh, hb, "as_of")
        if nulls.any():
            errs.rows(fh, hb, nulls, "as_of", "缺少评估日期（或使用 --as-of）", "as_of missing (or give --as-of)")
    hcols["as_of"] = Date(asof)
    bad = (sizes < 1) | (sizes > MAX_MEMBERS)
    if bad.any():
        errs.rows(fh, hb, bad, "household_id", f"每户应有1到{MAX_MEMBERS}名成员", f"a household needs 1 to {MAX_MEMBERS} members")

    # assets
    fin = _arr(hh, "assets_financial")
    props = _arr(hh, "assets_properties")
    if fin is not None and props is not None:
        fen, fnull = cv.money(fin, fh, hb, "assets_financial")
        pv, pnull = cv.ints(props, fh, hb, hcol["assets_properties"])
        half = fnull != pnull
        if half.any():
            errs.rows(
                fh,
                hb,
                half,
                "assets_properties",
                "assets_financial 与 assets_properties 须同时给出或同时为空",
                "give both asset columns or neither",
            )
        known: Any = ~fnull if fnull.any() else True
    else:
        fen, pv = np.zeros(H, np.int64), np.zeros(H, np.int64)
        known = False
        fnull = np.ones(H, bool)
    hcols["assets.financial"] = Num(fen, FEN, _bound(fen), known)
    hcols["assets.properties"] = Num(pv, 1, _bound(pv), known)
    counts = []
    for name, exempt in (("vehicles_nonexempt", False), ("vehicles_exempt", True)):
        a = _arr(hh, name)
        if a is None:
            counts.append((exempt, np.zeros(H, np.int64)))
            continue
        v, _n = cv.ints(a, fh, hb, hcol[name])
        orphan = (v > 0) & fnull
        if orphan.any():
            errs.rows(
                fh,
                hb,
                orphan,
                name,
                "给出车辆时须同时给出 assets_financial 与 assets_properties",
                "vehicles need the asset columns",
            )
        counts.append((exempt, v))
    mult = np.stack([c for _e, c in counts])
    hcols["assets.vehicles"] = List(
        "record",
        2,
        0,
        mult > 0,
        mult,
        known,
        {"exempt": Bool(np.array([[False], [True]]))},
        int(mult.max()) if mult.size else 0,
    )
    # rigid expenses: one slot per type
    hcols["rigid_expenses"] = _money_slots(cv, hh, "rigid_", S.EXPENSE_TYPES, fh, hb, interner, H)
    # benefits and amounts
    hb_rows, hb_vals, _ = cv.lists(_arr(hh, "current_benefits") or pa.nulls(H, pa.string()), fh, hb, hcol["current_benefits"])
    hcols["current_benefits"] = _membership(hb_rows, hb_vals, H, interner)
    for code in PROGRAM_CODES:
        a = _arr(hh, f"current_amount_{code}")
        if a is None:
            hcols[f"current_amounts.{code}"] = Num(0, 1, 0, False)
            continue
        fen_a, null_a = cv.money(a, fh, hb, f"current_amount_{code}")
        hcols[f"current_amounts.{code}"] = Num(fen_a, FEN, _bound(fen_a), ~null_a if null_a.any() else True)
    hcols["events"] = _events(raw.ev, hh, offsets, cv, fe, interner, asof)
    hcols["household_id"] = (
        Str(np.zeros(H, np.int32)) if "household_id" not in need_h else Str(cv.codes(ids, fh, hb, hcol["household_id"])[0])
    )

    # members
    hh_of = np.repeat(np.arange(H), sizes)
    mrow = mb if raw.m_base >= 0 else 0

    def text(name: str, required: bool = False, missing_is_none: bool = False):
        a = _arr(mem, name)
        col = mcol[name]
        if a is None:
            if required:
                errs.add(fm, 0, name, "缺少必需的列", "required column missing")
            return np.zeros(M, np.int32), np.ones(M, bool)
        codes, null = cv.codes(a, fm, mrow, col)
        if required and null.any():
            errs.rows(fm, mrow, null, name, "缺少必填字段", "field required")
        return codes, null

    mid, _ = text("member_id", required=True)
    _dup_members(mid, hh_of, fm, mrow, errs)
    rel, _ = text("relation", required=True)
    mcols["relation"] = Str(rel)
    mcols["id"] = Str(mid)
    bd = _arr(mem, "birth_date")
    if bd is None:
        errs.add(fm, 0, "birth_date", "缺少必需的列", "required column missing")
        birth = np.zeros(M, np.int64)
    else:
        birth, bnull = cv.dates(bd, fm, mrow, "birth_date")
        if bnull.any():
            errs.rows(fm, mrow, bnull, "birth_date", "缺少必填字段", "field required")
        late = birth > asof[hh_of]
        if late.any():
            errs.rows(fm, mrow, late & ~bnull, "birth_date", "出生日期晚于评估日期 as_of", "birth_date is after as_of")
    mcols["birth_date"] = Date(birth)
    for name in ("sex", "hukou_locality", "self_care", "supporters"):
        codes, null = text(name)
        mcols[name] = Str(codes, ~null if null.any() else True)
    permit, _ = text("residence_permit_locality")
    mcols["residence_permit_locality"] = Str(permit)
    school, snull = text("schooling")
    mcols["schooling"] = Str(np.where(snull, interner.id("none"), school).astype(np.int32))
    cat, cnull = text("disability_category")
    ga = _arr(mem, "disability_grade")
    if ga is not None:
        grade, gnull = cv.ints(ga, fm, mrow, mcol["disability_grade"])
    else:
        grade, gnull = np.zeros(M, np.int64), np.ones(M, bool)
    half = cnull != gnull
    if half.any():
        errs.rows(fm, mrow, half, "disability_grade", "残疾类别与等级须同时给出", "give disability category and grade together")
    mcols["disability_category"] = Str(cat)
    mcols["disability_grade"] = Num(np.where(gnull, 0, grade), 1, 4, True, gnull if gnull.any() else False)
    mcols["has_disability"] = Bool(~cnull)
    for name in ("serious_illness", "employed"):
        a = _arr(mem, name)
        mcols[name] = Bool(cv.bools(a, fm, mrow, name) if a is not None else np.zeros(M, bool))
    for name in ("status", "tags"):
        a = _arr(mem, name)
        rows, vals, _ = cv.lists(a if a is not None else pa.nulls(M, pa.string()), fm, mrow, mcol[name])
        mcols[name] = _membership(rows, vals, M, interner)
    a = _arr(mem, "current_benefits")
    rows, vals, bnull = cv.lists(a if a is not None else pa.nulls(M, pa.string()), fm, mrow, mcol["current_benefits"])
    own = _membership(rows, vals, M, interner)
    household_b = hcols["current_benefits"]
    benefits: dict[int, np.ndarray] = {}
    for code in set(own.m or {}) | set(household_b.m or {}):  # type: ignore[union-attr]
        mine = (own.m or {}).get(code, np.zeros(M, bool))
        theirs = (household_b.m or {}).get(code, np.zeros(H, bool))[hh_of]
        benefits[code] = np.where(bnull, theirs, mine)
    mcols["benefits"] = Set(None, benefits)
    # parents: two slots
    p_codes, p_present = [], []
    for name in ("parent1_status", "parent2_status"):
        codes, null = text(name)
        p_codes.append(codes)
        p_present.append(~null)
    mcols["parents"] = List("record", 2, 0, np.stack(p_present), None, True, {"status": Str(np.stack(p_codes))})
    # incomes: one slot per type given
    mcols["incomes"] = _money_slots(cv, mem, "income_", S.INCOME_TYPES, fm, mrow, interner, M)
    idn = _arr(mem, "id_number")
    if idn is not None:
        _check_id_numbers(idn, birth, fm, mrow, errs)
    errs.raise_if_any()

    keep_h = {k: v for k, v in hcols.items() if k in need_h}
    keep_m = {k: v for k, v in mcols.items() if k in need_m}
    member_ids = _arr(mem, "member_id")
    return Part(
        H=H,
        offsets=offsets,
        hcols=keep_h,
        mcols=keep_m,
        household_ids=_str_list(ids),
        member_ids=_str_list(member_ids),
        contract=lambda i: row_contract(raw, i, as_of),
        first_row=raw.h_base,
    )


class _LazyStrings:
    """Row access to an Arrow string column without converting it all to Python."""

    def __init__(self, a: pa.Array):
        self.a = a

    def __len__(self) -> int:
        return len(self.a)

    def __getitem__(self, i: int) -> str:
        return self.a[i].as_py()

    def arrow(self) -> pa.Array:
        return self.a


def _str_list(a: pa.Array) -> _LazyStrings:
    if isinstance(a, pa.DictionaryArray):
        a = a.dictionary_decode()
    return _LazyStrings(a.cast(pa.string()) if not pa.types.is_string(a.type) else a)


def _codes_check_text(ids: pa.Array, file: str, base: int, errs: _Errors) -> None:
    if isinstance(ids, pa.DictionaryArray):
        ids = ids.dictionary_decode()
    lens = pc.utf8_length(ids.cast(pa.string())).to_numpy(zero_copy_only=False)
    bad = (lens < 1) | (lens > 128)
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


def _dup_members(mid: np.ndarray, hh_of: np.ndarray, file: str, base: int, errs: _Errors) -> None:
    key = hh_of.astype(np.int64) * (1 << 32) + mid
    order = np.argsort(key, kind="stable")
    sk = key[order]
    dup = np.zeros(len(key), bool)
    same = sk[1:] == sk[:-1]
    if same.any():
        dup[order[1:][same]] = True
        errs.rows(file, base, dup, "member_id", "成员编号在户内重复", "duplicate member id in the household")


def _check_id_numbers(a: pa.Array, birth: np.ndarray, file: str, base: int, errs: _Errors) -> None:
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


def _bound(x: np.ndarray) -> int:
    return max(int(x.max()), -int(x.min())) if x.size else 0


def _money_slots(cv, table, prefix: str, types, file_rows, base: int, interner, rows: int) -> List:
    """Typed slots from one money column per type (``income_wage``, ``rigid_medical``...), those given."""
    slot_types, vals, present = [], [], []
    for t in types:
        a = _arr(table, prefix + t)
        if a is None:
            continue
        fen, null = cv.money(a, file_rows, base, prefix + t)
        slot_types.append(interner.id(t))
        vals.append(fen)
        present.append(~null)
    return _typed_slots(slot_types, vals, present, rows)


def _typed_slots(types: list[int], vals: list[np.ndarray], present: list[np.ndarray], rows: int) -> List:
    """A record list with one slot per type column (the type is constant per slot)."""
    K = len(types)
    if K == 0:
        return List(
            "record",
            0,
            0,
            False,
            None,
            True,
            {"type": Str(np.zeros((0, 1), np.int32)), "monthly": Num(np.zeros((0, rows), np.int64), FEN, 0)},
        )
    v = np.stack(vals)
    p = np.stack(present)
    return List(
        "record",
        K,
        0,
        p,
        None,
        True,
        {"type": Str(np.array(types, dtype=np.int32).reshape(K, 1)), "monthly": Num(v, FEN, _bound(v))},
        zeroed=True,
    )


def _membership(rows: np.ndarray, codes: np.ndarray, n: int, interner: Interner) -> Set:
    masks: dict[int, np.ndarray] = {}
    if len(codes):
        for c in np.unique(codes).tolist():
            m = np.zeros(n, bool)
            m[rows[codes == c]] = True
            masks[int(c)] = m
    return Set(None, masks)


def _events(ev: pa.Table | None, hh: pa.Table, offsets, cv: _Conv, file: str, interner: Interner, asof: np.ndarray) -> List:
    H = hh.num_rows
    empty = List(
        "record",
        0,
        0,
        False,
        None,
        True,
        {
            "type": Str(np.zeros((0, H), np.int32)),
            "date": Date(np.zeros((0, H), np.int64)),
            "loss": Num(np.zeros((0, H), np.int64), FEN, 0),
            "locality": Str(np.zeros((0, H), np.int32)),
        },
    )
    if ev is None or ev.num_rows == 0:
        return empty
    ids = _arr(hh, "household_id")
    if isinstance(ids, pa.DictionaryArray):
        ids = ids.dictionary_decode()
    pos = pc.index_in(ev.column("household_id"), value_set=ids).to_numpy(zero_copy_only=False).astype(np.int64)
    col = S.BY_TABLE[S.EVENTS]
    types, _tnull = cv.codes(_arr(ev, "type"), file, 0, col["type"])
    dates, _dnull = cv.dates(_arr(ev, "date"), file, 0, "date")
    la = _arr(ev, "loss")
    loss, lnull = (
        cv.money(la, file, 0, "loss") if la is not None else (np.zeros(ev.num_rows, np.int64), np.ones(ev.num_rows, bool))
    )
    lc = _arr(ev, "locality")
    ev_loc = cv.codes(lc, file, 0, col["locality"])[0] if lc is not None else np.zeros(ev.num_rows, np.int32)
    late = dates > asof[pos]
    if late.any():
        cv.errs.rows(file, 0, late, "date", "事件日期晚于评估日期 as_of", "event date is after as_of")
    order = np.argsort(pos, kind="stable")
    counts = np.bincount(pos, minlength=H)
    K = int(counts.max())
    slot = np.zeros(len(pos), np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    slot[order] = np.arange(len(pos)) - starts[pos[order]]
    T = np.zeros((K, H), np.int32)
    D = np.zeros((K, H), np.int64)
    L = np.zeros((K, H), np.int64)
    LK = np.ones((K, H), bool)
    P = np.zeros((K, H), bool)
    LOC = np.zeros((K, H), np.int32)
    T[slot, pos], D[slot, pos], L[slot, pos], LK[slot, pos], P[slot, pos] = types, dates, loss, ~lnull, True
    LOC[slot, pos] = ev_loc
    return List(
        "record",
        K,
        0,
        P,
        None,
        True,
        {"type": Str(T), "date": Date(D), "loss": Num(L, FEN, _bound(L), LK if not LK.all() else True), "locality": Str(LOC)},
        zeroed=True,
    )


# -- contract export -------------------------------------------------------------------


def _money_text(v: Any) -> str | None:
    if v is None:
        return None
    try:
        return fmt_money(parse_money(v if not isinstance(v, float) else repr(v)))
    except MoneyError:
        return str(v)


def _list_value(v: Any) -> list[str]:
    if v is None:
        return []
    if isinstance(v, str):
        return [x.strip() for x in v.split(",") if x.strip()]
    return [str(x) for x in v]


def _date_text(v: Any) -> str | None:
    if v is None:
        return None
    return v.isoformat() if isinstance(v, dt.date) else str(v).strip()


def row_contract(raw: RawPart, i: int, as_of: dt.date | None = None) -> dict:
    """Household ``i`` of a part as a docs/contract.md household record."""
    h = raw.hh.slice(i, 1).to_pylist()[0]
    if raw.offsets is None:
        raw.offsets = np.concatenate([[0], np.cumsum(raw.sizes)])
    a = int(raw.offsets[i])
    members = raw.mem.slice(a, int(raw.sizes[i])).to_pylist()
    events = []
    if raw.ev is not None and raw.ev.num_rows:
        mask = pc.equal(raw.ev.column("household_id"), h["household_id"])
        events = raw.ev.filter(mask).to_pylist()
    return to_contract(h, members, events, as_of)


def to_contract(h: dict, members: list[dict], events: list[dict] | None = None, as_of: dt.date | None = None) -> dict:
    out: dict[str, Any] = {
        "household_id": h["household_id"],
        "locality": h["locality"],
        "as_of": as_of.isoformat() if as_of is not None else _date_text(h.get("as_of")),
        "area": h["area"],
        "members": [],
    }
    if h.get("assets_financial") is not None or h.get("assets_properties") is not None:
        vehicles = [{"exempt": False}] * int(h.get("vehicles_nonexempt") or 0) + [{"exempt": True}] * int(
            h.get("vehicles_exempt") or 0
        )
        out["assets"] = {
            "financial": _money_text(h.get("assets_financial")),
            "vehicles": vehicles,
            "properties": h.get("assets_properties"),
        }
    rigid = [{"type": t, "monthly": _money_text(h[f"rigid_{t}"])} for t in S.EXPENSE_TYPES if h.get(f"rigid_{t}") is not None]
    if rigid:
        out["rigid_expenses"] = rigid
    benefits = _list_value(h.get("current_benefits"))
    if benefits:
        out["current_benefits"] = benefits
    amounts = {c: _money_text(h[f"current_amount_{c}"]) for c in PROGRAM_CODES if h.get(f"current_amount_{c}") is not None}
    if amounts:
        out["current_amounts"] = amounts
    for m in members:
        rec: dict[str, Any] = {"id": m["member_id"], "relation": m["relation"], "birth_date": _date_text(m.get("birth_date"))}
        for k in ("sex", "id_number", "hukou_locality", "residence_permit_locality", "self_care", "supporters"):
            if m.get(k) is not None:
                rec[k] = m[k]
        if m.get("disability_category") is not None or m.get("disability_grade") is not None:
            rec["disability"] = {"category": m.get("disability_category"), "grade": m.get("disability_grade")}
        for k in ("serious_illness", "employed"):
            if m.get(k) is not None:
                rec[k] = bool(m[k])
        if m.get("schooling") is not None:
            rec["schooling"] = m["schooling"]
        for k in ("status", "tags"):
            if _list_value(m.get(k)):
                rec[k] = _list_value(m.get(k))
        parents = [{"status": m[k]} for k in ("parent1_status", "parent2_status") if m.get(k) is not None]
        if parents:
            rec["parents"] = parents
        incomes = [
            {"type": t, "monthly": _money_text(m[f"income_{t}"])} for t in S.INCOME_TYPES if m.get(f"income_{t}") is not None
        ]
        if incomes:
            rec["incomes"] = incomes
        if m.get("current_benefits") is not None:
            rec["current_benefits"] = _list_value(m["current_benefits"])
        out["members"].append(rec)
    if events:
        out["events"] = [
            {
                k: v
                for k, v in {
                    "type": e["type"],
                    "date": _date_text(e["date"]),
                    "loss": _money_text(e.get("loss")),
                    "locality": e.get("locality"),
                }.items()
                if v is not None
            }
            for e in events
        ]
    return out


# -- contract -> tables (conversion, tests) ----------------------------------------------


def _sum_money(values: list) -> Decimal | None:
    if not values:
        return None
    total = sum((Decimal(str(parse_money(v).numerator)) / Decimal(str(parse_money(v).denominator)) for v in values), Decimal(0))
    return total.quantize(Decimal("0.01"))


def from_contract(households: list[dict]) -> tuple[pa.Table, pa.Table, pa.Table | None]:
    """Households of the contract as the three tables. Incomes and expenses of one type are added up."""
    hrows, mrows, erows = [], [], []
    for h in households:
        r: dict[str, Any] = {"household_id": h["household_id"], "locality": h["locality"], "as_of": h["as_of"], "area": h["area"]}
        a = h.get("assets")
        if a is not None:
            r["assets_financial"] = _sum_money([a["financial"]])
            r["assets_properties"] = a["properties"]
            vs = a.get("vehicles") or []
            r["vehicles_nonexempt"] = sum(1 for v in vs if not v["exempt"])
            r["vehicles_exempt"] = sum(1 for v in vs if v["exempt"])
        for t in S.EXPENSE_TYPES:
            r[f"rigid_{t}"] = _sum_money([e["monthly"] for e in h.get("rigid_expenses") or [] if e["type"] == t])
        r["current_benefits"] = ",".join(h.get("current_benefits") or []) or None
        for code in PROGRAM_CODES:
            v = (h.get("current_amounts") or {}).get(code)
            r[f"current_amount_{code}"] = _sum_money([v]) if v is not None else None
        hrows.append(r)
        for m in h["members"]:
            d = m.get("disability")
            mr: dict[str, Any] = {
                "household_id": h["household_id"],
                "member_id": m["id"],
                "relation": m["relation"],
                "birth_date": m["birth_date"],
                "sex": m.get("sex"),
                "id_number": m.get("id_number"),
                "hukou_locality": m.get("hukou_locality"),
                "residence_permit_locality": m.get("residence_permit_locality"),
                "disability_category": d["category"] if d else None,
                "disability_grade": d["grade"] if d else None,
                "serious_illness": m.get("serious_illness"),
                "self_care": m.get("self_care"),
                "schooling": m.get("schooling"),
                "employed": m.get("employed"),
                "status": ",".join(m.get("status") or []) or None,
                "supporters": m.get("supporters"),
                "tags": ",".join(m.get("tags") or []) or None,
                "current_benefits": ",".join(m["current_benefits"]) if m.get("current_benefits") is not None else None,
            }
            ps = m.get("parents") or []
            mr["parent1_status"] = ps[0]["status"] if len(ps) > 0 else None
            mr["parent2_status"] = ps[1]["status"] if len(ps) > 1 else None
            for t in S.INCOME_TYPES:
                mr[f"income_{t}"] = _sum_money([i["monthly"] for i in m.get("incomes") or [] if i["type"] == t])
            mrows.append(mr)
        for e in h.get("events") or []:
            erows.append(
                {
                    "household_id": h["household_id"],
                    "type": e["type"],
                    "date": e["date"],
                    "loss": _sum_money([e["loss"]]) if e.get("loss") is not None else None,
                    "locality": e.get("locality"),
                }
            )
    return _table(S.HOUSEHOLDS, hrows), _table(S.MEMBERS, mrows), _table(S.EVENTS, erows) if erows else None


def arrow_type(c: S.Column) -> pa.DataType:
    return {
        "money": pa.decimal128(14, 2),
        "int": pa.int64(),
        "bool": pa.bool_(),
        "date": pa.date32(),
    }.get(c.kind, pa.string())


def _table(table: str, rows: list[dict]) -> pa.Table:
    cols = S.BY_TABLE[table]
    data = {}
    for name, c in cols.items():
        vals = [r.get(name) for r in rows]
        if c.kind == "date":
            vals = [dt.date.fromisoformat(v) if isinstance(v, str) else v for v in vals]
        data[name] = pa.array(vals, arrow_type(c))
    return pa.table(data)


def write_tables(
    out: Path, hh: pa.Table, mem: pa.Table, ev: pa.Table | None = None, fmt: str = "parquet", metadata: dict | None = None
) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name, t in ((S.HOUSEHOLDS, hh), (S.MEMBERS, mem), (S.EVENTS, ev)):
        if t is None:
            continue
        if metadata:
            t = t.replace_schema_metadata({**(t.schema.metadata or {}), **metadata})
        if fmt == "parquet":
            import pyarrow.parquet as pq  # only the format in use is loaded (pyarrow readers are heavy)

            pq.write_table(t, out / f"{name}.parquet")
        else:
            import pyarrow.csv as pcsv  # only the format in use is loaded (pyarrow readers are heavy)

            pcsv.write_csv(t, out / f"{name}.csv")


def jsonl_part(parsed: list, interner: Interner, need_h: set[str], need_m: set[str], first: int) -> Part:
    part = from_parsed(parsed, interner, need_h, need_m)
    part.first_row = first
    return part


def dumps_contract(h: dict) -> bytes:
    return orjson.dumps(h, option=orjson.OPT_INDENT_2)


__all__ = [
    "HOUSEHOLD_FACTS",
    "MEMBER_FIELDS",
    "PopulationError",
    "RawPart",
    "Source",
    "build_part",
    "field",
    "from_contract",
    "to_contract",
    "write_tables",
]


def find_households(src: Source, ids: list[str], as_of: dt.date | None = None) -> list[dict]:
    """Chosen households of a population as contract records, in the order asked (missing ids are skipped)."""
    wanted = pa.array(list(dict.fromkeys(ids)), pa.string())
    found: dict[str, dict] = {}
    if src.format == "jsonl":
        keys = set(wanted.to_pylist())
        with src.files["households"].open("rb") as f:
            for line in f:
                if not line.strip():
                    continue
                h = orjson.loads(line)
                if isinstance(h, dict) and h.get("household_id") in keys:
                    if as_of is not None:
                        h["as_of"] = as_of.isoformat()
                    found[h["household_id"]] = h
        return [found[i] for i in ids if i in found]

    def rows(table: str) -> list[dict]:
        out = []
        for batch in src._batches(table, None, 1 << 18):
            mask = pc.is_in(batch.column("household_id").cast(pa.string()), value_set=wanted)
            if pc.any(mask).as_py():
                out.extend(batch.filter(mask).to_pylist())
        return out

    hh = rows("households")
    mem = rows("members")
    ev = rows("events") if "events" in src.files else []
    for h in hh:
        hid = h["household_id"]
        ms = [m for m in mem if m["household_id"] == hid]
        es = [e for e in ev if e["household_id"] == hid]
        found[hid] = to_contract(h, ms, es, as_of)
    return [found[i] for i in ids if i in found]

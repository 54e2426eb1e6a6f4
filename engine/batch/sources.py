"""Source discovery: which files hold a population, their columns, and their aligned parts."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from engine.schema.jsonlines import looks_like_plain_json
from engine.schema.model import InputError
from engine.schema.validate import parse

from . import schema as S
from .align import MemberRuns, events_for
from .errors import Errors, PopulationError, RowError, raise_rows
from .partitions import Partition, find_partitions
from .rowcheck import check_columns, check_household_ids
from .stream import Stream

DEFAULT_PART = 100_000  # households per part: one part is written while the next is read; 5M households peak at 1.52 GB


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
    pieces: list[RawPart] | None = None  # the parts of small partitions read together as this one (errors name theirs)


class Source:
    """A population on disk: ``DIR/{households,members}[.parquet|.csv]`` (+ events), or a ``.jsonl`` file,
    or a hive-style partitioned directory of such populations (``engine.batch.partitions``), read one
    partition after another in name order."""

    def __init__(self, path: Path, label: str = ""):
        path = Path(path)
        self.path = path
        self.label = label  # how errors name this population's files: "county=210102/" inside a partitioned one
        self.format = ""
        self.files: dict[str, Path] = {}
        self.partitions: list[tuple[Partition, Source]] = []
        found = find_partitions(path)
        if found:
            self._use_partitions(found)
            return
        self._find_tables(path)

    @classmethod
    def of_partitions(cls, path: Path, partitions: list[Partition]) -> Source:
        """Some partitions of a partitioned population (one task of a fanned-out run)."""
        src = cls.__new__(cls)
        src.path, src.label, src.format, src.files, src.partitions = Path(path), "", "", {}, []
        src._use_partitions(partitions)
        return src

    def _use_partitions(self, found: list[Partition]) -> None:
        self.partitions = [(p, Source(p.path, f"{p.name}/")) for p in found]
        formats = {src.format for _p, src in self.partitions}
        if len(formats) > 1:
            raise FileNotFoundError(
                f"{self.path} 的分区格式不一致（{'、'.join(sorted(formats))}） / {self.path}: partitions in different formats"
            )
        self.format = formats.pop()
        self.files = self.partitions[0][1].files

    def _find_tables(self, path: Path) -> None:
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

    def name(self, table: str) -> str:
        """A file as errors name it."""
        if self.partitions and table in self.files:
            return f"{self.partitions[0][0].key}=*/{self.files[table].name}"
        return self.label + self.files[table].name if table in self.files else table

    @property
    def synthetic(self) -> bool:
        if self.partitions:
            return all(src.synthetic for _p, src in self.partitions)
        if self.format == "parquet":
            import pyarrow.parquet as pq  # only the format in use is loaded (pyarrow readers are heavy)

            meta = pq.read_schema(self.files["households"]).metadata or {}
            return meta.get(b"jiuzhu.synthetic") == b"true"
        return (self.path / "SYNTHETIC.txt").exists() if self.path.is_dir() else False

    def count(self) -> int | None:
        """Households in the population, when cheap to know (Parquet metadata)."""
        if self.partitions:
            counts = [src.count() for _p, src in self.partitions]
            return None if None in counts else sum(counts)  # type: ignore[arg-type]
        if self.format == "parquet":
            import pyarrow.parquet as pq  # only the format in use is loaded (pyarrow readers are heavy)

            return pq.ParquetFile(self.files["households"]).metadata.num_rows
        return None

    # -- batches ---------------------------------------------------------------
    def _batches(self, table: str, columns: list[str] | None, batch_rows: int) -> Iterator[pa.RecordBatch]:
        if self.partitions:
            for _p, src in self.partitions:
                if table in src.files:
                    yield from src._batches(table, columns, batch_rows)
            return
        path = self.files[table]
        if self.format == "parquet":
            import pyarrow.parquet as pq  # only the format in use is loaded (pyarrow readers are heavy)

            # pre_buffer off: with it, pyarrow keeps every row group read so far cached until the file is closed
            # (memory grew by ~40 MB per million members read, in step with the population)
            f = pq.ParquetFile(path, read_dictionary=dictionary_columns(table, pq.read_schema(path).names), pre_buffer=False)
            names = f.schema_arrow.names
            cols = [c for c in columns if c in names] if columns is not None else None
            yield from f.iter_batches(batch_size=batch_rows, columns=cols)
            return
        import pyarrow.csv as pcsv  # only the format in use is loaded (pyarrow readers are heavy)

        header = csv_header(path)
        check_columns(table, header, self.name(table))
        types = {c: csv_type(S.BY_TABLE[table][c]) for c in header if c in S.BY_TABLE[table]}
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
            raise PopulationError([RowError(self.name(table), 0, "", f"CSV 无法读取：{e}", f"unreadable CSV: {e}")]) from None

    def columns(self, table: str) -> list[str]:
        path = self.files[table]
        if self.format == "parquet":
            import pyarrow.parquet as pq  # only the format in use is loaded (pyarrow readers are heavy)

            return pq.read_schema(path).names
        return csv_header(path)

    def read_table(self, table: str, columns: list[str] | None = None) -> pa.Table:
        batches = list(self._batches(table, columns, 1 << 20))
        if not batches:
            names = [c for c in (columns or self.columns(table)) if c in self.columns(table)]
            return pa.table({n: pa.array([], pa.string()) for n in names})
        return pa.Table.from_batches(batches)

    # -- parts -----------------------------------------------------------------
    def bundles(self, part_size: int = DEFAULT_PART) -> list[list[Partition]]:
        """The partitions, cut into runs of consecutive ones read together as one part: small partitions
        (a county of a few thousand households) are evaluated together, as one part of an unpartitioned
        population would be, rather than paying a part's fixed costs each. A partition of ``part_size``
        households or more, or of unknown size (CSV), is a bundle of its own. A run in one process and a
        fanned-out one (a task per bundle) cut the same bundles, so they read the same parts."""
        out: list[list[Partition]] = []
        cur: list[Partition] = []
        n = 0
        for p, sub in self.partitions:
            c = sub.count()
            if cur and (c is None or n + c > part_size):
                out.append(cur)
                cur, n = [], 0
            if c is None or c >= part_size:
                out.append([p])
            else:
                cur.append(p)
                n += c
        if cur:
            out.append(cur)
        return out

    def parts(self, part_size: int = DEFAULT_PART, columns: dict[str, list[str]] | None = None) -> Iterator[RawPart]:
        """Aligned parts of households with their members (and events)."""
        if self.partitions:
            subs = {p: src for p, src in self.partitions}
            for bundle in self.bundles(part_size):
                if len(bundle) == 1:
                    yield from subs[bundle[0]].parts(part_size, columns)
                else:
                    yield from _combined([raw for p in bundle for raw in subs[p].parts(part_size, columns)])
            return
        if self.format == "jsonl":
            raise ValueError("JSON lines are read with jsonl_parts()")
        hcols = self.columns("households")
        mcols = self.columns("members")
        fn = (self.name("households"), self.name("members"), self.name("events"))
        check_columns("households", hcols, fn[0])
        check_columns("members", mcols, fn[1])
        for need in ("household_id",):
            if need not in mcols:
                raise PopulationError([RowError(fn[1], 0, need, "缺少必需的列", "required column missing")])
        want_h = columns.get("households") if columns else None
        want_m = columns.get("members") if columns else None
        events = self.read_table("events") if "events" in self.files else None
        if events is not None:
            check_columns("events", events.column_names, fn[2])
        sizes = self._aligned_sizes(part_size, fn)
        if sizes is None:
            yield from self._parts_unordered(part_size, want_h, want_m, events, fn)
            return
        # the members' household_id was read (and matched) on its own: the parts need no copy of it
        m_cols = [c for c in (want_m if want_m is not None else mcols) if c != "household_id"]
        h_stream = Stream(self._batches("households", want_h, part_size))
        m_stream = Stream(
            self._batches("members", m_cols, 1 << 18)
        )  # a row group at a time would save a copy per part but cost 170 MB of RSS
        h_base = m_base = 0
        for psizes in sizes:
            hh = h_stream.take(len(psizes))
            mem = m_stream.take(int(psizes.sum()))  # every household has a run of members: never empty
            ev = events_for(events, hh.column("household_id").combine_chunks())
            yield RawPart(hh, mem, ev, psizes.astype(np.int64), h_base, m_base, fn)
            h_base += hh.num_rows
            m_base += mem.num_rows

    def _aligned_sizes(self, part_size: int, fn: tuple[str, str, str]) -> list[np.ndarray] | None:
        """Members per household, part by part, when the members are grouped in the households' order
        (else None); every part's household ids are checked on the way, so a bad one is refused before
        any part is evaluated."""
        h_ids = Stream(self._batches("households", ["household_id"], part_size))
        runs = MemberRuns(self._batches("members", ["household_id"], 1 << 20))
        out: list[np.ndarray] | None = []
        h_base = 0
        while True:
            t = h_ids.take(part_size)
            if t is None:
                break
            ids = t.column("household_id").combine_chunks()
            _check_ids(ids, fn[0], h_base)
            h_base += len(ids)
            if out is not None:
                sizes = runs.take(ids)
                if sizes is None:
                    out = None  # not grouped: the rest of the ids are still checked, part by part
                else:
                    out.append(sizes.astype(np.int32))  # 4 bytes a household until its part is read
        if out is None:
            return None
        rest = runs.rest()
        if rest is not None:
            if not rest[0]:
                return None
            raise PopulationError(
                [RowError(fn[1], rest[0], "household_id", f"户编号 {rest[1]} 不在 households 表中", "unknown household")]
            )
        return out

    def _parts_unordered(self, part_size, want_h, want_m, events, fn) -> Iterator[RawPart]:
        """Members not grouped in the households' order: read both tables whole and sort."""
        hh = self.read_table("households", want_h)
        mem = self.read_table("members", want_m)
        ids = hh.column("household_id").combine_chunks()
        _check_ids(ids, fn[0], 0)
        pos = pc.index_in(mem.column("household_id"), value_set=ids)
        nulls = pos.is_null().to_numpy(zero_copy_only=False)
        if nulls.any():
            raise_rows(fn[1], 0, nulls, "household_id", "户编号不在 households 表中", "unknown household")
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
                events_for(events, part_ids),
                sizes_all[a:b],
                a,
                -1,  # member rows were reordered: report member errors by household
                fn,
            )

    def jsonl_parts(self, part_size: int = DEFAULT_PART) -> Iterator[tuple[list, int]]:
        """Validated households of a JSON-lines file, in parts: (parsed list, first line number)."""
        if self.partitions:
            for _p, src in self.partitions:
                yield from src.jsonl_parts(part_size)
            return
        path = self.files["households"]
        errs = Errors()
        buf: list = []
        first = 1
        with path.open("rb") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                if not buf and not errs.items:
                    _refuse_plain_json(path, lineno, line, self.name("households"))
                try:
                    buf.append(parse(line))
                except InputError as e:
                    for fe in e.errors:
                        errs.add(self.name("households"), lineno, fe.field, fe.message_zh, fe.message_en)
                    continue
                if len(buf) >= part_size:
                    errs.raise_if_any()
                    yield buf, first
                    buf, first = [], lineno + 1
        errs.raise_if_any()
        if buf:
            yield buf, first


def _check_ids(ids: pa.Array, file: str, base: int) -> None:
    """A part's household ids: present, of the declared length and character set, unique in the part."""
    if ids.null_count:
        raise_rows(file, base, ids.is_null().to_numpy(zero_copy_only=False), "household_id", "缺少户编号", "missing")
    errs = Errors()
    check_household_ids(ids, file, base, errs)
    errs.raise_if_any()


def _combined(pieces: list[RawPart]) -> list[RawPart]:
    """The parts of a bundle of small partitions as one part (as they are if their tables do not concatenate)."""
    if len(pieces) < 2:
        return pieces
    try:
        hh = pa.concat_tables([r.hh for r in pieces], promote_options="default")
        mem = pa.concat_tables([r.mem for r in pieces], promote_options="default")
        evs = [r.ev for r in pieces if r.ev is not None]
        ev = pa.concat_tables(evs, promote_options="default") if evs else None
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pieces
    sizes = np.concatenate([r.sizes for r in pieces])
    return [RawPart(hh, mem, ev, sizes, 0, 0, pieces[0].files, pieces=pieces)]


def _refuse_plain_json(path: Path, lineno: int, line: bytes, name: str) -> None:
    """A JSON array, or one object spread over lines, is not JSON Lines: say so once."""
    if not looks_like_plain_json(line):
        return
    raise PopulationError(
        [
            RowError(
                name,
                lineno,
                "(file)",
                "这是普通 JSON（数组或跨行的对象），批量评估需要 JSON Lines：每行一户，一个 JSON 对象",
                "this is plain JSON (an array or an object over several lines); expected JSON Lines: "
                "one household per line, each a JSON object",
            )
        ]
    )


def dictionary_columns(table: str, names: list[str]) -> list[str]:
    cols = S.BY_TABLE.get(table, {})
    return [n for n in names if n in cols and cols[n].kind in ("enum", "locality")]


def csv_header(path: Path) -> list[str]:
    with path.open("r", encoding="utf-8-sig", newline="") as f:
        row = next(csv.reader(f), [])
    return [c.strip() for c in row]


def csv_type(c: S.Column):
    return {
        "date": pa.string(),
        "money": pa.string(),
        "int": pa.int64(),
        "bool": pa.bool_(),
    }.get(c.kind, pa.string())

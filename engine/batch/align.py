"""Member (and event) alignment: which rows of the members and events tables belong to a part's households.

Members are grouped by household in the households' order (as ``jiuzhu synth`` and an export sorted by
household write them), so the members table's ``household_id`` column is a sequence of runs, one per
household. It is read once, on its own, before any part: each run is found by comparing neighbouring
ids, and only the first id of each run is compared with the household it should belong to. A population
whose members are not grouped so is known before any part is evaluated (and read whole and sorted)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def _text(col: pa.Array) -> pa.Array:
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    if isinstance(col, pa.DictionaryArray):
        col = col.dictionary_decode()
    return col if pa.types.is_string(col.type) else col.cast(pa.string())


class MemberRuns:
    """The runs of equal ``household_id`` in the members table, taken a number of households at a time."""

    def __init__(self, batches: Iterator[pa.RecordBatch]):
        self.batches = batches
        self.heads: list[pa.Array] = []  # the id of each pending run (in chunks)
        self.starts: list[np.ndarray] = []  # the member row where each pending run starts
        self.pending = 0
        self.rows = 0  # member rows read
        self.last: str | None = None  # the id of the last row read
        self.eof = False
        self.nulls = False  # a member without a household_id: not grouped (the sorted reading names the rows)

    def _more(self) -> bool:
        b = next(self.batches, None)
        if b is None:
            self.eof = True
            return False
        col = _text(b.column(0))
        n = len(col)
        if not n:
            return True
        if col.null_count:
            self.nulls = True
            return False
        if n > 1:
            change = pc.not_equal(col.slice(1), col.slice(0, n - 1)).to_numpy(zero_copy_only=False)
            starts = np.flatnonzero(change).astype(np.int64) + 1
        else:
            starts = np.zeros(0, np.int64)
        if self.last is None or col[0].as_py() != self.last:
            starts = np.concatenate([[0], starts])
        if len(starts):
            self.heads.append(col.take(pa.array(starts)))
            self.starts.append(starts + self.rows)
            self.pending += len(starts)
        self.rows += n
        self.last = col[n - 1].as_py()
        return True

    def take(self, ids: pa.Array) -> np.ndarray | None:
        """Members per household of the next ``len(ids)`` households, or None when the next runs are not theirs."""
        k = len(ids)
        while self.pending <= k and not self.eof and not self.nulls:
            self._more()
        if self.nulls or self.pending < k:
            return None
        heads = pa.chunked_array(self.heads, pa.string()).combine_chunks()
        starts = np.concatenate(self.starts)
        end = starts[k] if self.pending > k else self.rows
        if k and not pc.all(pc.equal(heads.slice(0, k), _text(ids))).as_py():
            return None
        sizes = np.diff(np.append(starts[:k], end))
        self.heads, self.starts = [heads.slice(k)], [starts[k:]]
        self.pending -= k
        return sizes

    def rest(self) -> tuple[int, str] | None:
        """The first member row after the last household's members (1-based) and its id, if any
        (row 0 when a member without a household_id follows: the members are then not grouped)."""
        while not self.pending and not self.eof and not self.nulls:
            self._more()
        if self.nulls:
            return 0, ""
        if not self.pending:
            return None
        starts = np.concatenate(self.starts)
        return int(starts[0]) + 1, pa.chunked_array(self.heads, pa.string())[0].as_py()


def events_for(events: pa.Table | None, ids: pa.Array) -> pa.Table | None:
    if events is None:
        return None
    mask = pc.is_in(events.column("household_id"), value_set=ids)
    return events.filter(mask)

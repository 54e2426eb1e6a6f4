"""Reading a table in parts: record batches taken a number of rows at a time."""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa


class Stream:
    """Record batches taken a number of rows at a time (a part's households, or their members: ``align``
    counts those before any part is read)."""

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

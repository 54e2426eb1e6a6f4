"""Reading a table in parts: record batches taken a number of rows (or a household's members) at a time."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


class Stream:
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

"""The result files of a batch run, written part by part (Parquet or CSV).

Parquet encodings are chosen per column by what its values are, as measured on a synthetic
population of 1,000,000 households (docs/batch.md): codes of a few values (statuses, failed
rules, programs, localities) keep their dictionary; ids are unique per household or member, so
a dictionary only costs, and they are written plain; integers, amounts (``decimal(18, 2)``
stored as 64-bit integers, the type readers see unchanged) and dates are delta-encoded, which
packs the many zeros and the close values of a column into few bits for less work than a
dictionary. Pages are compressed with Snappy; no min/max statistics are written (they cost a
tenth of the writing and the files are read whole). The files are written one after the other:
on two threads at once they took more CPU and, with the evaluation running beside them, more
time too.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import pyarrow as pa

from . import results as R

IDS = ("household_id", "member_id")


def parquet_options(schema: pa.Schema) -> dict[str, Any]:
    """``pyarrow.parquet.ParquetWriter`` options for a result table of this schema."""
    dictionary, encoding = [], {}
    for f in schema:
        if pa.types.is_dictionary(f.type) and f.name not in IDS:
            dictionary.append(f.name)
        elif pa.types.is_integer(f.type) or pa.types.is_decimal(f.type) or pa.types.is_date(f.type):
            encoding[f.name] = "DELTA_BINARY_PACKED"
    return {
        "use_dictionary": dictionary,
        "column_encoding": encoding or None,
        "compression": "snappy",
        "write_statistics": False,
        "store_decimal_as_integer": True,
    }


class ResultFiles:
    """One file per result table, opened on the first part written, closed by ``close``."""

    def __init__(self, paths: dict[str, Path], fmt: str):
        self.paths, self.fmt = paths, fmt
        self.writers: dict[str, Any] = {}

    def write(self, tables: dict[str, pa.Table], metadata: dict[bytes, bytes]) -> None:
        """The tables of one part, each appended to its file (``metadata`` joins a Parquet schema's)."""
        for name, table in tables.items():
            if name not in self.writers:
                self.writers[name] = self._open(name, table.schema, metadata)
            self.writers[name].write_table(R.plain(table) if self.fmt == "csv" else table)

    def _open(self, name: str, schema: pa.Schema, metadata: dict[bytes, bytes]) -> Any:
        if self.fmt == "csv":
            import pyarrow.csv as pcsv  # pyarrow writers are heavy: loaded only when results are written

            return pcsv.CSVWriter(self.paths[name], R.plain(schema.empty_table()).schema)
        import pyarrow.parquet as pq  # pyarrow writers are heavy: loaded only when results are written

        schema = schema.with_metadata({**(schema.metadata or {}), **metadata})
        return pq.ParquetWriter(self.paths[name], schema, **parquet_options(schema))

    def close(self) -> None:
        for w in self.writers.values():
            w.close()
        self.writers.clear()

    def abandon(self) -> None:
        """Close what is open after a failure (best effort: its files are removed next)."""
        for w in self.writers.values():
            with contextlib.suppress(Exception):
                w.close()
        self.writers.clear()

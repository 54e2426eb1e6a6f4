"""Writing population tables (Parquet or CSV) and contract records."""

from __future__ import annotations

from pathlib import Path

import orjson
import pyarrow as pa

from . import schema as S


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


def dumps_contract(h: dict) -> bytes:
    return orjson.dumps(h, option=orjson.OPT_INDENT_2)

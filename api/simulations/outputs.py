"""A finished simulation's files, with resident ID numbers masked before a caller may download them.

A population's household and member ids may be ID numbers; gains_losses.csv, changes.parquet,
the briefing and summary.json name households. Imported by the simulation's own process only
(pyarrow stays out of the web workers).
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from engine.schema.masking import has_id_number, scrub


def _is_text(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t) or (pa.types.is_dictionary(t) and _is_text(t.value_type))


def _mask_parquet(path: Path) -> None:
    table = pq.read_table(path)
    changed = False
    for i, field in enumerate(table.schema):
        if not _is_text(field.type):
            continue
        values = table.column(i).to_pylist()
        if any(isinstance(v, str) and has_id_number(v) for v in values):
            masked = pa.array([scrub(v) if isinstance(v, str) else v for v in values], pa.string())
            table = table.set_column(i, pa.field(field.name, pa.string(), field.nullable), masked)
            changed = True
    if changed:
        pq.write_table(table, path)


def mask_outputs(out: Path, names) -> None:
    for name in names:
        path = out / name
        if not path.is_file():
            continue
        if name.endswith(".parquet"):
            _mask_parquet(path)
            continue
        text = path.read_text(encoding="utf-8")
        masked = scrub(text)
        if masked != text:
            path.write_text(masked, encoding="utf-8")

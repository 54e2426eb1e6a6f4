"""Hive-style partitioned populations: ``DIR/county=210102/{households,members}.parquet``, one directory per
locality, each a complete population that every reader of a population reads as it is.

A partitioned directory is read partition by partition, in the order of the directory names, so a run
over all partitions (in one process or fanned out, ``engine.batch.fanout``) always meets the households
in the same order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

KEYS = ("county", "prefecture")
_NAME = re.compile(r"^(county|prefecture)=(\d{6})$")


@dataclass(frozen=True)
class Partition:
    key: str  # county | prefecture
    value: str  # its division code
    path: Path

    @property
    def name(self) -> str:
        return f"{self.key}={self.value}"


def partition_value(key: str, county: str) -> str:
    """The partition a county-level locality falls in."""
    return county if key == "county" else county[:4] + "00"


def find_partitions(path: Path) -> list[Partition] | None:
    """The partitions of a hive-style population directory, in name order; None when ``path`` is not one.

    A directory holding its own households table is a population, not a partitioned one, whatever it
    also holds. Partitions carry absolute paths: they are sent to Dask workers, whose working directory
    is their own."""
    path = Path(path).absolute()
    if not path.is_dir() or any((path / f"households.{ext}").exists() for ext in ("parquet", "csv", "jsonl", "ndjson")):
        return None
    found = []
    for child in sorted(path.iterdir()):
        m = _NAME.match(child.name)
        if m and child.is_dir():
            found.append(Partition(m.group(1), m.group(2), child))
    if not found:
        return None
    keys = {p.key for p in found}
    if len(keys) > 1:
        raise FileNotFoundError(
            f"{path} 中混有按不同键分区的目录（{'、'.join(sorted(keys))}） / {path} mixes partition keys: {', '.join(sorted(keys))}"
        )
    return found


def split_by(hh: pa.Table, mem: pa.Table, key: str) -> list[tuple[str, pa.Table, pa.Table]]:
    """A population's tables cut into partitions by the households' locality, rows in their order.

    Members must follow their households (as ``jiuzhu synth`` writes them)."""
    loc = hh.column("locality").combine_chunks()
    if isinstance(loc.type, pa.DictionaryType):
        codes = loc.dictionary.to_pylist()
        idx = loc.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    else:
        codes, inv = np.unique(np.asarray(loc.to_pylist(), dtype=object), return_inverse=True)
        codes, idx = codes.tolist(), inv.astype(np.int64)
    values = sorted({partition_value(key, c) for c in codes})
    slot = {v: i for i, v in enumerate(values)}
    hkey = np.array([slot[partition_value(key, c)] for c in codes], dtype=np.int64)[idx]
    hh_of = pc.index_in(mem.column("household_id"), value_set=hh.column("household_id")).to_numpy(zero_copy_only=False)
    mkey = hkey[hh_of.astype(np.int64)]
    out = []
    for i, v in enumerate(values):
        hrows, mrows = np.flatnonzero(hkey == i), np.flatnonzero(mkey == i)
        if hrows.size:
            out.append((v, hh.take(pa.array(hrows)), mem.take(pa.array(mrows))))
    return out

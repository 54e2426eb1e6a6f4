"""Member (and event) alignment: which rows of the members and events tables belong to a part's households."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def aligned_sizes(ids: pa.Array, mem: pa.Table) -> np.ndarray | None:
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


def events_for(events: pa.Table | None, ids: pa.Array) -> pa.Table | None:
    if events is None:
        return None
    mask = pc.is_in(events.column("household_id"), value_set=ids)
    return events.filter(mask)

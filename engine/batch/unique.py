"""Household ids unique across the parts of a population, in 8 bytes a household.

Each part's ids are checked among themselves when it is read. Across parts the run keeps a 64-bit
fingerprint of every id rather than the ids (5 M ids are 110 MB of text, and a hash table over them at
the end of the run doubled that at the run's memory peak). Equal fingerprints are only candidates: the
ids are then read again, that column alone, and compared exactly, so a collision can cost time, never a
wrongly refused population.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

_PRIME = np.uint64(0x100000001B3)  # FNV-1a, 64-bit
_BASIS = np.uint64(0xCBF29CE484222325)


def fingerprints(ids: pa.Array) -> np.ndarray:
    """One uint64 per id: FNV-1a over its UTF-8 bytes, then mixed with its length (splitmix64's finaliser).

    Computed a byte position at a time over all ids at once (ids are short: a pass per character, each
    over one byte per id), not an id at a time."""
    if isinstance(ids, pa.ChunkedArray):
        ids = ids.combine_chunks()
    if isinstance(ids, pa.DictionaryArray):
        ids = ids.dictionary_decode()
    if not pa.types.is_string(ids.type):
        ids = ids.cast(pa.string())
    n = len(ids)
    if n == 0:
        return np.zeros(0, np.uint64)
    offsets = np.frombuffer(ids.buffers()[1], dtype=np.int32)[ids.offset : ids.offset + n + 1].astype(np.int64)
    data = np.frombuffer(ids.buffers()[2], dtype=np.uint8) if ids.buffers()[2] is not None else np.zeros(0, np.uint8)
    starts = offsets[:-1]
    lengths = np.diff(offsets)
    h = np.full(n, _BASIS, dtype=np.uint64)
    shortest, longest = int(lengths.min()), int(lengths.max())
    rows = None  # the ids longer than the byte position, once some have ended
    with np.errstate(over="ignore"):
        for p in range(longest):
            if p < shortest:
                h ^= data[starts + p]
                h *= _PRIME
                continue
            rows = np.flatnonzero(lengths > p) if rows is None else rows[lengths[rows] > p]
            h[rows] = (h[rows] ^ data[starts[rows] + p]) * _PRIME
        h ^= lengths.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        h ^= h >> np.uint64(30)
        h *= np.uint64(0xBF58476D1CE4E5B9)
        h ^= h >> np.uint64(27)
        h *= np.uint64(0x94D049BB133111EB)
        h ^= h >> np.uint64(31)
    return h


def may_repeat(prints: list[np.ndarray]) -> bool:
    """Whether two fingerprints are equal (then compare the ids themselves)."""
    if not prints:
        return False
    allp = np.sort(np.concatenate(prints))
    return bool((allp[1:] == allp[:-1]).any())

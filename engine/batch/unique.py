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

_MULT = np.uint64(0x9E3779B97F4A7C15)
_MAX_BYTES = 4 * 128  # ids are at most 128 characters (checked when read), 4 bytes each in UTF-8
# powers of an odd constant: byte j of an id is weighed by _MULT ** j (arithmetic modulo 2**64)
_POW = np.cumprod(np.concatenate([np.ones(1, np.uint64), np.full(_MAX_BYTES, _MULT, np.uint64)]), dtype=np.uint64)


def fingerprints(ids: pa.Array) -> np.ndarray:
    """One uint64 per id: a polynomial hash of its UTF-8 bytes, mixed with its length."""
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
    data = np.frombuffer(ids.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]]
    starts = offsets[:-1] - offsets[0]
    lengths = np.diff(offsets)
    with np.errstate(over="ignore"):
        pos = np.arange(len(data), dtype=np.int64) - np.repeat(starts, lengths)
        weighed = (data.astype(np.uint64) + np.uint64(1)) * _POW[np.minimum(pos, _MAX_BYTES)]
        h = np.zeros(n, np.uint64)
        nonempty = lengths > 0
        if nonempty.any():
            h[nonempty] = np.add.reduceat(weighed, starts[nonempty])
        h ^= lengths.astype(np.uint64) * np.uint64(0xC2B2AE3D27D4EB4F)
        # a final mix (splitmix64) spreads every input bit over the whole word
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

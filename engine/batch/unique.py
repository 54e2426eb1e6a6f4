"""Household ids unique across the parts of a population, without keeping the ids.

Each part's ids are checked among themselves when it is read. Across parts the run keeps only each
part's smallest and largest id: parts in id order cannot share one. Otherwise the ids are read again and
fingerprinted, 8 bytes an id (5 M ids are 110 MB of text, and a hash table over them at the end of the
run made the run's memory peak). Equal fingerprints are only candidates, then compared exactly, so a
collision can cost time, never a wrongly refused population.
"""

from __future__ import annotations

import itertools

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .convert import string_bytes

_PRIME = np.uint64(0x100000001B3)  # FNV-1a, 64-bit
_BASIS = np.uint64(0xCBF29CE484222325)


def plain_ids(ids: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Ids as one plain string array, however a reader gave them (chunked, dictionary-coded, large strings)."""
    if isinstance(ids, pa.ChunkedArray):
        ids = ids.combine_chunks()
    if isinstance(ids, pa.DictionaryArray):
        ids = ids.dictionary_decode()
    return ids if pa.types.is_string(ids.type) else ids.cast(pa.string())


def fingerprints(ids: pa.Array) -> np.ndarray:
    """One uint64 per id: FNV-1a over its UTF-8 bytes, then mixed with its length (splitmix64's finaliser).

    Computed a byte position at a time over all ids at once (ids are short: a pass per character, each
    over one byte per id), not an id at a time."""
    ids = plain_ids(ids)
    n = len(ids)
    if n == 0:
        return np.zeros(0, np.uint64)
    offsets, data = string_bytes(ids)
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


def id_range(ids: pa.Array) -> tuple[str, str]:
    """The smallest and largest id (by their UTF-8 bytes, as Arrow orders strings)."""
    mm = pc.min_max(plain_ids(ids))
    return mm["min"].as_py() or "", mm["max"].as_py() or ""


def in_order(bounds: list[tuple[str, str]]) -> bool:
    """Whether each part's ids all sort above the part before's (then no two parts share one)."""
    return all(prev[1].encode() < cur[0].encode() for prev, cur in itertools.pairwise(bounds))


def may_repeat(prints: list[np.ndarray]) -> bool:
    """Whether two fingerprints are equal (then compare the ids themselves)."""
    if not prints:
        return False
    allp = np.sort(np.concatenate(prints))
    return bool((allp[1:] == allp[:-1]).any())

"""A population held as columns: the facts the rules read, one array per fact.

A ``Part`` is a slice of a population (streamed in parts to bound memory): its
households' facts (``hcols``, keyed by the rule language's household names:
``area``, ``assets.financial``, ``current_amounts.dibao`` ...) and its members'
facts (``mcols``, keyed by member field names: ``birth_date``, ``incomes`` ...),
members stored household after household (``offsets``). Every column is a
``values.V`` over rows; list facts (incomes, vehicles, rigid expenses, parents,
events) are ``List`` columns with a leading slot axis.

Two builders produce the same columns: ``from_parsed`` from households validated by
``engine.schema.validate.parse`` (JSON lines: lossless) and ``engine.batch.tables`` from the
two-table Parquet/CSV layout. Which facts are built is driven by the types declared in
``engine.schema.facts``, not by program-specific code.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from gmpy2 import mpq

from engine.columnar.values import Bool, Date, Interner, List, Num, Set, Str, V, ymd
from engine.expr.runtime import Missing
from engine.expr.types import T
from engine.schema.facts import HOUSEHOLD_FACTS, MEMBER_FIELDS, RECORDS

# money columns are held in fen over a static denominator of 100
FEN = 100


@dataclass
class Part:
    H: int
    offsets: np.ndarray  # (H+1,) members of household i are rows offsets[i]:offsets[i+1]
    hcols: dict[str, V]
    mcols: dict[str, V]
    household_ids: Sequence[str]
    member_ids: Sequence[str]
    contract: Callable[[int], dict]  # household i as a docs/contract.md record (explain, fallback)
    first_row: int = 0  # index of the part's first household in the whole population
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def M(self) -> int:
        return int(self.offsets[-1])

    def sizes(self) -> np.ndarray:
        return np.diff(self.offsets)


def _known(vals: list) -> Any:
    miss = [v.__class__ is Missing for v in vals]
    if not any(miss):
        return True
    return ~np.array(miss, dtype=bool)


def build_column(t: T, vals: list, interner: Interner, record_types: dict[str, dict[str, T]] = RECORDS) -> V:
    """A column from one Python fact value per row (``Missing`` and ``None`` allowed)."""
    k = _known(vals)
    kind = t.kind
    clean = [None if v.__class__ is Missing else v for v in vals]
    if kind in ("int", "number", "money"):
        none = [v is None for v in clean]
        d = FEN if kind == "money" else 1
        if kind == "number":
            qs = [mpq(v) if v is not None else mpq(0) for v in clean]
            d = 1
            for q in qs:
                d = int(np.lcm(d, int(q.denominator)))
            n = np.array([int(q * d) for q in qs], dtype=np.int64)
        elif kind == "money":
            n = np.array([_fen(v) for v in clean], dtype=np.int64)
        else:
            n = np.array([int(v) if v is not None else 0 for v in clean], dtype=np.int64)
        nn: Any = np.array(none, dtype=bool) if any(none) and t.optional else False
        return Num(n, d, int(np.abs(n).max()) if n.size else 0, k, nn)
    if kind == "bool":
        return Bool(np.array([bool(v) for v in clean], dtype=bool), k)
    if kind == "str":
        return Str(np.array([interner.id(v) for v in clean], dtype=np.int32), k)
    if kind == "date":
        none = [v is None for v in clean]
        v = np.array([ymd(x) if x is not None else 0 for x in clean], dtype=np.int64)
        return Date(v, k, np.array(none, dtype=bool) if any(none) else False)
    if kind == "set":
        masks: dict[int, np.ndarray] = {}
        rows = len(clean)
        for i, s in enumerate(clean):
            for e in s or ():
                code = interner.id(e)
                m = masks.get(code)
                if m is None:
                    m = masks[code] = np.zeros(rows, dtype=bool)
                m[i] = True
        return Set(None, masks, k)
    if kind == "list":
        return build_list(t.record or "", clean, interner, k, record_types)
    raise ValueError(f"cannot build a column of kind {kind}")


def build_list(record: str, rows: list, interner: Interner, k: Any = True, record_types=RECORDS) -> List:
    """A list column: ``rows`` holds, per row, a sequence of record dicts (or None)."""
    lens = [len(r) if r else 0 for r in rows]
    K = max(lens, default=0)
    R = len(rows)
    present = np.zeros((K, R), dtype=bool)
    for i, n in enumerate(lens):
        present[:n, i] = True
    fields: dict[str, V] = {}
    for name, ft in record_types[record].items():
        flat: list = []
        for j in range(K):
            for r, n in zip(rows, lens, strict=True):
                flat.append(r[j].get(name) if j < n else _default(ft))
        col = build_column(ft, flat, interner, record_types) if flat else _empty(ft)
        fields[name] = col.map(lambda a, K=K, R=R: a.reshape((K, R)))
    return List("record", K, 0, present if K else False, None, k, fields, zeroed=True)


def _default(t: T):
    return {"int": 0, "number": 0, "money": mpq(0), "bool": False, "str": None, "date": None, "set": frozenset()}.get(t.kind)


def _empty(t: T) -> V:
    if t.kind in ("int", "number", "money"):
        return Num(np.zeros(0, dtype=np.int64), FEN if t.kind == "money" else 1, 0)
    if t.kind == "bool":
        return Bool(np.zeros(0, dtype=bool))
    if t.kind == "str":
        return Str(np.zeros(0, dtype=np.int32))
    if t.kind == "date":
        return Date(np.zeros(0, dtype=np.int64))
    return Set(None, {})


def _fen(v) -> int:
    if v is None:
        return 0
    q = mpq(v) * FEN
    if q.denominator != 1:
        raise ValueError(f"money value {v} has more than 2 decimals")
    return int(q)


# household facts that are not columns of their own
_DERIVED_H = {"members"}


def from_parsed(parsed: Sequence, interner: Interner, need_h: set[str] | None = None, need_m: set[str] | None = None) -> Part:
    """Columns from households validated by ``engine.schema.validate.parse`` (lossless)."""
    H = len(parsed)
    sizes = np.array([len(p.members) for p in parsed], dtype=np.int64)
    offsets = np.zeros(H + 1, dtype=np.int64)
    np.cumsum(sizes, out=offsets[1:])
    hcols: dict[str, V] = {}
    for name, t in HOUSEHOLD_FACTS.items():
        if name in _DERIVED_H or (need_h is not None and name not in need_h):
            continue
        hcols[name] = build_column(t, [p.h[name] for p in parsed], interner)
    members = [m for p in parsed for m in p.members]
    mcols: dict[str, V] = {}
    for name, t in MEMBER_FIELDS.items():
        if name == "index" or (need_m is not None and name not in need_m):
            continue
        mcols[name] = build_column(t, [m[name] for m in members], interner)
    raws = [p.raw for p in parsed]
    return Part(
        H=H,
        offsets=offsets,
        hcols=hcols,
        mcols=mcols,
        household_ids=[p.household_id for p in parsed],
        member_ids=[m["id"] for m in members],
        contract=lambda i: raws[i],
    )

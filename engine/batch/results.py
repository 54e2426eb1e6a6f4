"""Batch results as tables: one row per household and one per member.

Per household: identity, the household facts of the determination (counted members,
monthly and per-capita income, deductions, the 低保 standard) and, for each household
program, ``<code>_status``, its amount (yuan, 2 decimals, rounded half-up from the exact
amount) named as in the determination by what the program pays — ``<code>_amount``
(monthly), ``<code>_annual_amount``, ``<code>_one_off_amount`` or
``<code>_monthly_service_value`` — ``<code>_paid`` (false when an exclusion of
``rules/interactions.yaml`` does not pay it) and ``<code>_first_failed`` (the id of the first
rule that failed, in the program's order). Member programs are summarised per household
(``<code>_eligible_members`` and the total paid to members) and given in full per member.
``monthly_total``, ``annual_total`` and ``one_off_total`` add up what is paid, as the
determination's ``summary`` does.
"""

from __future__ import annotations

import numpy as np
import orjson
import pyarrow as pa

from engine.book.rules import STATUSES
from engine.columnar.columns import Part
from engine.columnar.values import Interner
from engine.columnar.vectorize import INELIGIBLE, NOT_CHECKED, Plan, is_granted

from .run import PartResult

STATUS_DICT = pa.array(list(STATUSES), pa.string())


def decimal_from_cents(cents: np.ndarray, null: np.ndarray | None = None) -> pa.Array:
    """int64 fen as a ``decimal128(18, 2)`` array, built from its buffer."""
    cents = np.ascontiguousarray(cents, dtype=np.int64)
    n = len(cents)
    raw = np.empty((n, 2), dtype=np.int64)
    raw[:, 0] = cents
    raw[:, 1] = cents >> 63
    validity, nulls = None, 0
    if null is not None and null.any():
        validity = pa.array(~null).buffers()[1]
        nulls = int(null.sum())
    # the numpy buffer itself, not a copy of it: Arrow keeps ``raw`` alive through the buffer
    return pa.Array.from_buffers(pa.decimal128(18, 2), n, [validity, pa.py_buffer(raw)], null_count=nulls)


def _status(codes: np.ndarray) -> pa.Array:
    mask = codes < 0
    return pa.DictionaryArray.from_arrays(
        pa.array(np.maximum(codes, 0).astype(np.int8), mask=mask if mask.any() else None), STATUS_DICT
    )


def _first(first: np.ndarray, rules: list[str]) -> pa.Array:
    mask = first < 0
    dictionary = pa.array(rules or [""], pa.string())
    return pa.DictionaryArray.from_arrays(
        pa.array(np.maximum(first, 0).astype(np.int16), mask=mask if mask.any() else None), dictionary
    )


def _ids(values) -> pa.Array:
    if hasattr(values, "arrow"):
        return values.arrow()
    return pa.array(list(values), pa.string())


def _codes(codes, interner: Interner, n: int) -> pa.Array:
    """Interned codes as a dictionary column whose dictionary is in text order: the same table whatever
    else the interner has seen (each worker of a fanned-out run has its own)."""
    codes = np.broadcast_to(np.asarray(codes, dtype=np.int32), (n,))
    uniq, inv = np.unique(codes, return_inverse=True)
    texts = [interner.text(int(c)) for c in uniq]
    order = sorted(range(len(texts)), key=lambda i: (texts[i] is None, texts[i] or ""))
    rank = np.empty(len(texts), np.int32)
    rank[order] = np.arange(len(texts), dtype=np.int32)
    return pa.DictionaryArray.from_arrays(pa.array(rank[inv]), pa.array([texts[i] for i in order], pa.string()))


AMOUNT_COLUMN = {"monthly": "amount", "annual": "annual_amount", "one_off": "one_off_amount", "in_kind": "monthly_service_value"}
TOTALS = {"monthly": "monthly_total", "annual": "annual_total", "one_off": "one_off_total"}


def _paid(status: np.ndarray, paid: np.ndarray) -> pa.Array:
    granted = is_granted(status)
    return pa.array(paid, pa.bool_(), mask=~granted)


def household_table(part: Part, res: PartResult, plan: Plan, interner: Interner, as_of_ymd) -> pa.Table:
    H = part.H
    cols: dict[str, pa.Array] = {"household_id": _ids(part.household_ids)}
    cols["locality"] = _codes(part.hcols["locality"].v, interner, H)
    cols["area"] = _codes(part.hcols["area"].v, interner, H)
    ymd = np.broadcast_to(np.asarray(as_of_ymd, dtype=np.int64), (H,))
    days = (
        (ymd // 10000 - 1970).astype("datetime64[Y]").astype("datetime64[M]") + ((ymd // 100) % 100 - 1).astype("timedelta64[M]")
    ).astype("datetime64[D]") + (ymd % 100 - 1).astype("timedelta64[D]")
    cols["as_of"] = pa.array(days.astype("datetime64[D]"), pa.date32())
    for name, (vals, null) in res.facts.items():
        if name == "counted_count":
            cols[name] = pa.array(vals, pa.int64(), mask=null if null.any() else None)
        else:
            cols[name] = decimal_from_cents(vals, null)
    hh, mm = res.household, res.member
    sizes = part.sizes()
    starts = part.offsets[:-1]
    totals = {kind: np.zeros(H, np.int64) for kind in TOTALS}
    for p in plan.programs:
        c = p.code
        column = AMOUNT_COLUMN.get(p.pays)
        if not p.member:
            st = hh[c + ".status"]
            cols[f"{c}_status"] = _status(st)
            if column:
                cols[f"{c}_{column}"] = decimal_from_cents(hh[c + ".cents"], hh[c + ".null"])
            cols[f"{c}_paid"] = _paid(st, hh[c + ".paid"])
            cols[f"{c}_first_failed"] = _first(hh[c + ".first"], p.rules)
            paid_cents = np.where(hh[c + ".paid"] & ~hh[c + ".null"], hh[c + ".cents"], 0)
        else:
            st = mm[c + ".status"]
            granted = is_granted(st)
            count = np.add.reduceat(granted.astype(np.int64), starts) if H else np.zeros(0, np.int64)
            member_paid = np.where(mm[c + ".paid"] & ~mm[c + ".null"], mm[c + ".cents"], 0)
            paid_cents = np.add.reduceat(member_paid, starts) if H else np.zeros(0, np.int64)
            count = np.where(sizes > 0, count, 0)
            paid_cents = np.where(sizes > 0, paid_cents, 0)
            cols[f"{c}_eligible_members"] = pa.array(count, pa.int64())
            if column:
                cols[f"{c}_{column}"] = decimal_from_cents(paid_cents)
        if p.pays in totals:
            totals[p.pays] += paid_cents
    for kind, name in TOTALS.items():
        cols[name] = decimal_from_cents(totals[kind])
    return pa.table(cols)


def member_table(part: Part, res: PartResult, plan: Plan) -> pa.Table:
    sizes = part.sizes()
    hid = _ids(part.household_ids)
    cols: dict[str, pa.Array] = {
        # the household's id by reference (dictionary-encoded): no copy of a string per member
        "household_id": pa.DictionaryArray.from_arrays(pa.array(np.repeat(np.arange(part.H, dtype=np.int32), sizes)), hid),
        "member_id": _ids(part.member_ids),
    }
    mm = res.member
    for p in plan.programs:
        if not p.member:
            continue
        c = p.code
        column = AMOUNT_COLUMN.get(p.pays)
        cols[f"{c}_status"] = _status(mm[c + ".status"])
        if column:
            cols[f"{c}_{column}"] = decimal_from_cents(mm[c + ".cents"], mm[c + ".null"])
        cols[f"{c}_paid"] = _paid(mm[c + ".status"], mm[c + ".paid"])
        cols[f"{c}_first_failed"] = _first(mm[c + ".first"], p.rules)
    return pa.table(cols)


Omitted = dict[str, tuple[int, int]]  # member program -> (status code, failed rule index) of the pairs not written


def omitted_pairs(res: PartResult, plan: Plan) -> Omitted:
    """Per member program, the most common plain outcome — not checked, or ineligible at one rule,
    with no amount — among a part's members: the pairs the long table leaves out."""
    out: Omitted = {}
    mm = res.member
    for p in plan.programs:
        if not p.member:
            continue
        st, first, null = mm[p.code + ".status"], mm[p.code + ".first"], mm[p.code + ".null"]
        plain = null & ((st == NOT_CHECKED) | (st == INELIGIBLE))
        key = (st[plain].astype(np.int64) + 1) * 65536 + (first[plain].astype(np.int64) + 1)
        if not key.size:
            out[p.code] = (NOT_CHECKED, -1)
            continue
        uniq, counts = np.unique(key, return_counts=True)
        best = int(uniq[np.argmax(counts)])
        out[p.code] = (best // 65536 - 1, best % 65536 - 1)
    return out


def omitted_metadata(omit: Omitted, plan: Plan) -> bytes:
    """``jiuzhu.omitted``: per member program, the status and failed rule of every pair not written."""
    rules = {p.code: p.rules for p in plan.programs}
    return orjson.dumps(
        {
            code: {"status": STATUSES[st] if st >= 0 else None, "first_failed": rules[code][f] if f >= 0 else None}
            for code, (st, f) in omit.items()
        }
    )


def member_programs_table(part: Part, res: PartResult, plan: Plan, omit: Omitted) -> pa.Table:
    """Member results as a long table: one row per member × member program, member by member in
    input order, programs in the plan's order, leaving out the plain pairs of ``omit`` (per program
    one outcome with no amount: not checked, or ineligible at one named rule — ``jiuzhu.omitted`` in the
    schema metadata says which), so nothing is lost. Program, status and failed rule are dictionary
    codes; the kind of amount each program pays is in ``jiuzhu.pays``."""
    progs = [p for p in plan.programs if p.member]
    P = len(progs)
    mm = res.member
    if P:
        status = np.stack([mm[p.code + ".status"] for p in progs], axis=1).ravel()
        null = np.stack([mm[p.code + ".null"] for p in progs], axis=1).ravel()
        first = np.stack([mm[p.code + ".first"] for p in progs], axis=1).ravel()
        o_status = np.tile(np.array([omit[p.code][0] for p in progs], np.int8), part.M)
        o_first = np.tile(np.array([omit[p.code][1] for p in progs], np.int16), part.M)
        keep = np.flatnonzero(~null | (status != o_status) | (first != o_first))
    else:
        status = null = first = np.zeros(0, np.int8)
        keep = np.zeros(0, np.int64)
    member = keep // max(P, 1)
    prog = (keep % max(P, 1)).astype(np.int8)
    status, null = status[keep], null[keep]
    cents = np.stack([mm[p.code + ".cents"] for p in progs], axis=1).ravel()[keep] if P else np.zeros(0, np.int64)
    paid = np.stack([mm[p.code + ".paid"] for p in progs], axis=1).ravel()[keep] if P else np.zeros(0, bool)
    # failed rules of all member programs in one dictionary: a program's rule k is offset[program] + k
    offset = np.cumsum([0] + [len(p.rules) for p in progs])
    first = first[keep].astype(np.int32)
    first_code = np.where(first >= 0, offset[prog] + first, -1) if P else first
    rules = [r for p in progs for r in p.rules]
    hh_of = np.repeat(np.arange(part.H, dtype=np.int32), part.sizes())
    cols = {
        "household_id": pa.DictionaryArray.from_arrays(pa.array(hh_of[member]), _ids(part.household_ids)),
        "member_id": pa.DictionaryArray.from_arrays(pa.array(member.astype(np.int32)), _ids(part.member_ids)),
        "program": pa.DictionaryArray.from_arrays(pa.array(prog), pa.array([p.code for p in progs], pa.string())),
        "status": _status(status),
        "amount": decimal_from_cents(cents, null),
        "paid": _paid(status, paid),
        "first_failed": _first(first_code, rules),
    }
    meta = {b"jiuzhu.pays": orjson.dumps({p.code: p.pays for p in progs}), b"jiuzhu.omitted": omitted_metadata(omit, plan)}
    return pa.table(cols).replace_schema_metadata(meta)


def plain(table: pa.Table) -> pa.Table:
    """Dictionary columns decoded (for CSV)."""
    cols = []
    for col in table.columns:
        if pa.types.is_dictionary(col.type):
            col = col.cast(col.type.value_type)
        cols.append(col)
    return pa.table(cols, names=table.column_names)

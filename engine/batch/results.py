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
    cents = np.asarray(cents, dtype=np.int64)
    n = len(cents)
    # little-endian 128-bit values: the fen, then their sign extended (written only if one is negative)
    raw = np.zeros(2 * n, dtype=np.int64)
    raw[0::2] = cents
    if n and cents.min() < 0:
        raw[1::2] = cents >> 63
    validity, nulls = _validity(null)
    # the numpy buffer itself, not a copy of it: Arrow keeps ``raw`` alive through the buffer
    return pa.Array.from_buffers(pa.decimal128(18, 2), n, [validity, pa.py_buffer(raw)], null_count=nulls)


def _validity(null: np.ndarray | None) -> tuple[pa.Buffer | None, int]:
    """An Arrow validity bitmap (None when nothing is null) and the null count."""
    if null is None:
        return None, 0
    nulls = int(np.count_nonzero(null))
    if not nulls:
        return None, 0
    return pa.py_buffer(np.packbits(~null, bitorder="little")), nulls


def _int_array(values: np.ndarray, null: np.ndarray | None = None) -> pa.Array:
    """A numpy integer array as an Arrow array of the same width, nulls where ``null``."""
    values = np.ascontiguousarray(values)
    validity, nulls = _validity(null)
    return pa.Array.from_buffers(
        pa.from_numpy_dtype(values.dtype), len(values), [validity, pa.py_buffer(values)], null_count=nulls
    )


def _coded(codes: np.ndarray, dictionary: pa.Array, dtype) -> pa.DictionaryArray:
    """Codes (negative: null) into ``dictionary`` as a dictionary column with ``dtype`` indices."""
    null = codes < 0
    return pa.DictionaryArray.from_arrays(_int_array(np.maximum(codes, 0).astype(dtype), null), dictionary)


def _status(codes: np.ndarray) -> pa.Array:
    return _coded(codes, STATUS_DICT, np.int8)


def _first(first: np.ndarray, rules: list[str]) -> pa.Array:
    return _coded(first, pa.array(rules or [""], pa.string()), np.int16)


def _arrow_ids(values) -> pa.Array:
    return values.arrow() if hasattr(values, "arrow") else pa.array(list(values), pa.string())


def id_column(values) -> pa.Array:
    """Ids as a string column (decoded if the reader kept their dictionary codes)."""
    ids = _arrow_ids(values)
    return ids.dictionary_decode() if isinstance(ids, pa.DictionaryArray) else ids


def _codes(codes, interner: Interner, n: int) -> pa.Array:
    """Interned codes as a dictionary column whose dictionary is in text order: the same table whatever
    else the interner has seen (each worker of a fanned-out run has its own)."""
    codes = np.asarray(codes, dtype=np.int32)
    if codes.ndim == 0:
        codes = np.full(n, codes, np.int32)
    # interned codes are small non-negative integers: a presence table finds the distinct ones without sorting
    present = np.zeros(int(codes.max()) + 1 if n else 0, bool)
    present[codes] = True
    uniq = np.flatnonzero(present)
    texts = [interner.text(int(c)) for c in uniq]
    order = sorted(range(len(texts)), key=lambda i: (texts[i] is None, texts[i] or ""))
    rank = np.zeros(len(present), np.int32)
    rank[uniq[order]] = np.arange(len(texts), dtype=np.int32)
    return pa.DictionaryArray.from_arrays(_int_array(rank[codes]), pa.array([texts[i] for i in order], pa.string()))


AMOUNT_COLUMN = {"monthly": "amount", "annual": "annual_amount", "one_off": "one_off_amount", "in_kind": "monthly_service_value"}
TOTALS = {"monthly": "monthly_total", "annual": "annual_total", "one_off": "one_off_total"}


def _paid(status: np.ndarray, paid: np.ndarray) -> pa.Array:
    """``paid`` where the program is granted, empty elsewhere."""
    validity, nulls = _validity(~is_granted(status))
    bits = pa.py_buffer(np.packbits(paid, bitorder="little"))
    return pa.Array.from_buffers(pa.bool_(), len(paid), [validity, bits], null_count=nulls)


def _dates(as_of_ymd, n: int) -> pa.Array:
    """yyyymmdd integers (one, or one per row) as a date column."""
    ymd = np.asarray(as_of_ymd, dtype=np.int64)
    one = ymd.ndim == 0 or not len(ymd) or bool((ymd == ymd[0]).all())  # one date for the run, as a rule
    ymd = ymd.reshape(-1)[:1] if one else ymd
    days = (
        (ymd // 10000 - 1970).astype("datetime64[Y]").astype("datetime64[M]") + ((ymd // 100) % 100 - 1).astype("timedelta64[M]")
    ).astype("datetime64[D]") + (ymd % 100 - 1).astype("timedelta64[D]")
    days = days.astype(np.int64).astype(np.int32)
    days = np.full(n, days[0], np.int32) if one and len(days) else days
    return pa.Array.from_buffers(pa.date32(), n, [None, pa.py_buffer(days)])


def household_table(part: Part, res: PartResult, plan: Plan, interner: Interner, as_of_ymd) -> pa.Table:
    H = part.H
    cols: dict[str, pa.Array] = {"household_id": id_column(part.household_ids)}
    cols["locality"] = _codes(part.hcols["locality"].v, interner, H)
    cols["area"] = _codes(part.hcols["area"].v, interner, H)
    cols["as_of"] = _dates(as_of_ymd, H)
    for name, (vals, null) in res.facts.items():
        if name == "counted_count":  # at most MAX_MEMBERS (50)
            cols[name] = _int_array(vals.astype(np.int16), null)
        else:
            cols[name] = decimal_from_cents(vals, null)
    hh = res.household
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
            # summed by the evaluator over each group's (members, households) block: no pass over members here
            count = res.member_totals[c + ".granted_members"]
            paid_cents = res.member_totals[c + ".paid_cents"]
            cols[f"{c}_eligible_members"] = _int_array(count.astype(np.int16))  # at most MAX_MEMBERS
            if column:
                cols[f"{c}_{column}"] = decimal_from_cents(paid_cents)
        if p.pays in totals:
            totals[p.pays] += paid_cents
    for kind, name in TOTALS.items():
        cols[name] = decimal_from_cents(totals[kind])
    return pa.table(cols)


def _member_ids(part: Part, member: np.ndarray) -> pa.Array:
    """The member id of each of ``member`` (rows of the part) by reference: dictionary codes into the
    ids as read (their own small dictionary when the input gave one), no copy of a string per row."""
    ids = _arrow_ids(part.member_ids)
    if isinstance(ids, pa.DictionaryArray):
        return pa.DictionaryArray.from_arrays(ids.indices.take(pa.array(member)), ids.dictionary)
    return pa.DictionaryArray.from_arrays(_int_array(member.astype(np.int32)), ids)


def _household_ids(part: Part, rows: np.ndarray) -> pa.Array:
    """The household id of each row of a table holding ``rows[i]`` rows of household i, household by
    household, by reference: codes into the part's ids, no copy of a string per row."""
    of = np.repeat(np.arange(part.H, dtype=np.int32), rows)
    return pa.DictionaryArray.from_arrays(_int_array(of), id_column(part.household_ids))


def member_table(part: Part, res: PartResult, plan: Plan) -> pa.Table:
    cols: dict[str, pa.Array] = {
        "household_id": _household_ids(part, part.sizes()),
        "member_id": id_column(part.member_ids),
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
    M = part.M
    mm = res.member
    # the rows of member m are start[m]:start[m+1], in program order: a pair's row is its member's start
    # plus the number of earlier programs written for that member
    written = [
        ~mm[p.code + ".null"] | (mm[p.code + ".status"] != omit[p.code][0]) | (mm[p.code + ".first"] != omit[p.code][1])
        for p in progs
    ]
    per_member = np.zeros(M, np.int16)
    for w in written:
        per_member += w
    start = np.zeros(M + 1, np.int64)
    np.cumsum(per_member, out=start[1:])
    K = int(start[-1])
    offsets = part.offsets - part.offsets[0]
    member = np.repeat(np.arange(M, dtype=np.int32), per_member)
    prog, status, first = np.empty(K, np.int8), np.empty(K, np.int8), np.empty(K, np.int16)
    cents, null, paid = np.empty(K, np.int64), np.empty(K, bool), np.empty(K, bool)
    at = start[:-1].copy()
    # failed rules of all member programs in one dictionary: a program's rule k is offset + k
    offset = 0
    for j, (p, w) in enumerate(zip(progs, written, strict=True)):
        members = np.flatnonzero(w)
        rows = at[members]
        at[members] += 1
        prog[rows] = j
        status[rows] = mm[p.code + ".status"][members]
        f = mm[p.code + ".first"][members]
        first[rows] = np.where(f >= 0, f + np.int16(offset), f)
        cents[rows] = mm[p.code + ".cents"][members]
        null[rows] = mm[p.code + ".null"][members]
        paid[rows] = mm[p.code + ".paid"][members]
        offset += len(p.rules)
    rules = [r for p in progs for r in p.rules]
    cols = {
        "household_id": _household_ids(part, start[offsets[1:]] - start[offsets[:-1]]),
        "member_id": _member_ids(part, member),
        "program": pa.DictionaryArray.from_arrays(_int_array(prog), pa.array([p.code for p in progs], pa.string())),
        "status": _status(status),
        "amount": decimal_from_cents(cents, null),
        "paid": _paid(status, paid),
        "first_failed": _first(first, rules),
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

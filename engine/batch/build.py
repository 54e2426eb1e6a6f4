"""Column building: a validated part of the tables (or of JSON lines) as the facts' columns."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from engine.columnar.columns import FEN, Part, from_parsed
from engine.columnar.values import Bool, Date, Interner, List, Num, Set, Str, V
from engine.schema.model import PROGRAM_CODES
from engine.schema.validate import MAX_MEMBERS

from . import schema as S
from .contract import row_contract
from .convert import Conv, array_of
from .errors import Errors, PopulationError, RowError
from .rowcheck import check_id_numbers, dup_members
from .sources import RawPart


def build_part(raw: RawPart, interner: Interner, need_h: set[str], need_m: set[str], as_of: dt.date | None) -> Part:
    """Validate a raw part and turn it into the facts' columns."""
    if raw.pieces:
        try:
            return _build_part(raw, interner, need_h, need_m, as_of)
        except PopulationError:
            # small partitions read as one part: find the bad rows again in their own files, to name them
            for piece in raw.pieces:
                _build_part(piece, interner, need_h, need_m, as_of)
            raise
    return _build_part(raw, interner, need_h, need_m, as_of)


def _build_part(raw: RawPart, interner: Interner, need_h: set[str], need_m: set[str], as_of: dt.date | None) -> Part:
    errs = Errors()
    cv = Conv(errs, interner)
    # a column in several chunks is combined where it is converted, and the copy freed there (combining the
    # tables up front held a copy of every column through the build: ~90 MB more at peak with reading ahead)
    hh, mem = raw.hh, raw.mem
    fh, fm, fe = raw.files
    hb, mb = raw.h_base, max(raw.m_base, 0)
    H, M = hh.num_rows, mem.num_rows
    sizes = raw.sizes
    offsets = np.zeros(H + 1, dtype=np.int64)
    np.cumsum(sizes, out=offsets[1:])
    hcol = S.BY_TABLE[S.HOUSEHOLDS]
    mcol = S.BY_TABLE[S.MEMBERS]
    hcols: dict[str, V] = {}
    mcols: dict[str, V] = {}

    # households: identity, place, date
    ids = array_of(hh, "household_id")  # checked (length, uniqueness) when the part was read
    loc, locnull = cv.codes(array_of(hh, "locality"), fh, hb, hcol["locality"])
    if locnull.any():
        errs.rows(fh, hb, locnull, "locality", "缺少必填字段", "field required")
    hcols["locality"] = Str(loc)
    area, areanull = cv.codes(array_of(hh, "area"), fh, hb, hcol["area"])
    if areanull.any():
        errs.rows(fh, hb, areanull, "area", "缺少必填字段", "field required")
    hcols["area"] = Str(area)
    if as_of is not None:
        asof = np.full(H, as_of.year * 10000 + as_of.month * 100 + as_of.day, dtype=np.int32)
    else:
        a = array_of(hh, "as_of")
        if a is None:
            raise PopulationError([RowError(fh, 0, "as_of", "缺少 as_of 列；请给出 --as-of", "no as_of column: give --as-of")])
        asof, nulls = cv.dates(a, fh, hb, "as_of")
        if nulls.any():
            errs.rows(fh, hb, nulls, "as_of", "缺少评估日期（或使用 --as-of）", "as_of missing (or give --as-of)")
    hcols["as_of"] = Date(asof)
    bad = (sizes < 1) | (sizes > MAX_MEMBERS)
    if bad.any():
        errs.rows(fh, hb, bad, "household_id", f"每户应有1到{MAX_MEMBERS}名成员", f"a household needs 1 to {MAX_MEMBERS} members")

    # assets
    fin = array_of(hh, "assets_financial")
    props = array_of(hh, "assets_properties")
    if fin is not None and props is not None:
        fen, fnull = cv.money(fin, fh, hb, "assets_financial")
        pv, pnull = cv.ints(props, fh, hb, hcol["assets_properties"])
        half = fnull != pnull
        if half.any():
            errs.rows(
                fh,
                hb,
                half,
                "assets_properties",
                "assets_financial 与 assets_properties 须同时给出或同时为空",
                "give both asset columns or neither",
            )
        known: Any = ~fnull if fnull.any() else True
    else:
        fen, pv = np.zeros(H, np.int64), np.zeros(H, np.int64)
        known = False
        fnull = np.ones(H, bool)
    hcols["assets.financial"] = Num(fen, FEN, _bound(fen), known)
    hcols["assets.properties"] = Num(pv, 1, _bound(pv), known)
    counts = []
    for name, exempt in (("vehicles_nonexempt", False), ("vehicles_exempt", True)):
        a = array_of(hh, name)
        if a is None:
            counts.append((exempt, np.zeros(H, np.int64)))
            continue
        v, _n = cv.ints(a, fh, hb, hcol[name])
        orphan = (v > 0) & fnull
        if orphan.any():
            errs.rows(
                fh,
                hb,
                orphan,
                name,
                "给出车辆时须同时给出 assets_financial 与 assets_properties",
                "vehicles need the asset columns",
            )
        counts.append((exempt, v))
    mult = np.stack([c for _e, c in counts])
    hcols["assets.vehicles"] = List(
        "record",
        2,
        0,
        mult > 0,
        mult,
        known,
        {"exempt": Bool(np.array([[False], [True]]))},
        int(mult.max()) if mult.size else 0,
    )
    # rigid expenses: one slot per type
    hcols["rigid_expenses"] = _money_slots(cv, hh, "rigid_", S.EXPENSE_TYPES, fh, hb, interner, H)
    # benefits and amounts
    hb_rows, hb_vals, _ = cv.lists(array_of(hh, "current_benefits") or pa.nulls(H, pa.string()), fh, hb, hcol["current_benefits"])
    hcols["current_benefits"] = _membership(hb_rows, hb_vals, H, interner)
    for code in PROGRAM_CODES:
        a = array_of(hh, f"current_amount_{code}", chunked=True)
        if a is None:
            hcols[f"current_amounts.{code}"] = Num(0, 1, 0, False)
            continue
        fen_a, null_a = cv.money(a, fh, hb, f"current_amount_{code}")
        hcols[f"current_amounts.{code}"] = Num(fen_a, FEN, _bound(fen_a), ~null_a if null_a.any() else True)
    hcols["events"] = _events(raw.ev, hh, offsets, cv, fe, interner, asof)
    hcols["household_id"] = (
        Str(np.zeros(H, np.int32)) if "household_id" not in need_h else Str(cv.codes(ids, fh, hb, hcol["household_id"])[0])
    )

    # members
    hh_of = np.repeat(np.arange(H), sizes)
    mrow = mb if raw.m_base >= 0 else 0

    def text(name: str, required: bool = False, missing_is_none: bool = False):
        a = array_of(mem, name)
        col = mcol[name]
        if a is None:
            if required:
                errs.add(fm, 0, name, "缺少必需的列", "required column missing")
            return np.zeros(M, np.int32), np.ones(M, bool)
        codes, null = cv.codes(a, fm, mrow, col)
        if required and null.any():
            errs.rows(fm, mrow, null, name, "缺少必填字段", "field required")
        return codes, null

    mid, _ = text("member_id", required=True)
    dup_members(mid, hh_of, fm, mrow, errs, int(sizes.max()) if H else 0)
    rel, _ = text("relation", required=True)
    mcols["relation"] = Str(rel)
    mcols["id"] = Str(mid)
    bd = array_of(mem, "birth_date")
    if bd is None:
        errs.add(fm, 0, "birth_date", "缺少必需的列", "required column missing")
        birth = np.zeros(M, np.int32)
    else:
        birth, bnull = cv.dates(bd, fm, mrow, "birth_date")
        if bnull.any():
            errs.rows(fm, mrow, bnull, "birth_date", "缺少必填字段", "field required")
        late = birth > asof[hh_of]
        if late.any():
            errs.rows(fm, mrow, late & ~bnull, "birth_date", "出生日期晚于评估日期 as_of", "birth_date is after as_of")
    mcols["birth_date"] = Date(birth)
    for name in ("sex", "hukou_locality", "self_care", "supporters"):
        codes, null = text(name)
        mcols[name] = Str(codes, ~null if null.any() else True)
    permit, _ = text("residence_permit_locality")
    mcols["residence_permit_locality"] = Str(permit)
    school, snull = text("schooling")
    mcols["schooling"] = Str(np.where(snull, np.int32(interner.id("none")), school).astype(np.int32, copy=False))
    cat, cnull = text("disability_category")
    ga = array_of(mem, "disability_grade")
    if ga is not None:
        grade, gnull = cv.ints(ga, fm, mrow, mcol["disability_grade"])
    else:
        grade, gnull = np.zeros(M, np.int64), np.ones(M, bool)
    half = cnull != gnull
    if half.any():
        errs.rows(fm, mrow, half, "disability_grade", "残疾类别与等级须同时给出", "give disability category and grade together")
    mcols["disability_category"] = Str(cat)
    mcols["disability_grade"] = Num(
        np.where(gnull, 0, grade), 1, mcol["disability_grade"].hi, True, gnull if gnull.any() else False
    )
    mcols["has_disability"] = Bool(~cnull)
    for name in ("serious_illness", "employed"):
        a = array_of(mem, name)
        mcols[name] = Bool(cv.bools(a, fm, mrow, name) if a is not None else np.zeros(M, bool))
    for name in ("status", "tags"):
        a = array_of(mem, name)
        rows, vals, _ = cv.lists(a if a is not None else pa.nulls(M, pa.string()), fm, mrow, mcol[name])
        mcols[name] = _membership(rows, vals, M, interner)
    a = array_of(mem, "current_benefits")
    rows, vals, bnull = cv.lists(a if a is not None else pa.nulls(M, pa.string()), fm, mrow, mcol["current_benefits"])
    own = _membership(rows, vals, M, interner)
    household_b = hcols["current_benefits"]
    benefits: dict[int, np.ndarray] = {}
    for code in set(own.m or {}) | set(household_b.m or {}):  # type: ignore[union-attr]
        mine = (own.m or {}).get(code, np.zeros(M, bool))
        theirs = (household_b.m or {}).get(code, np.zeros(H, bool))[hh_of]
        benefits[code] = np.where(bnull, theirs, mine)
    mcols["benefits"] = Set(None, benefits)
    # parents: two slots
    p_codes, p_present = [], []
    for name in ("parent1_status", "parent2_status"):
        codes, null = text(name)
        p_codes.append(codes)
        p_present.append(~null)
    mcols["parents"] = List("record", 2, 0, np.stack(p_present), None, True, {"status": Str(np.stack(p_codes))})
    # incomes: one slot per type given
    mcols["incomes"] = _money_slots(cv, mem, "income_", S.INCOME_TYPES, fm, mrow, interner, M)
    idn = array_of(mem, "id_number")
    if idn is not None:
        check_id_numbers(idn, birth, fm, mrow, errs)
    errs.raise_if_any()

    keep_h = {k: v for k, v in hcols.items() if k in need_h}
    keep_m = {k: v for k, v in mcols.items() if k in need_m}
    member_ids = array_of(mem, "member_id")
    return Part(
        H=H,
        offsets=offsets,
        hcols=keep_h,
        mcols=keep_m,
        household_ids=_str_list(ids),
        member_ids=_str_list(member_ids),
        contract=lambda i: row_contract(raw, i, as_of),
        first_row=raw.h_base,
    )


class _LazyStrings:
    """Row access to an Arrow string column without converting it all to Python."""

    def __init__(self, a: pa.Array):
        self.a = a

    def __len__(self) -> int:
        return len(self.a)

    def __getitem__(self, i: int) -> str:
        return self.a[i].as_py()

    def arrow(self) -> pa.Array:
        return self.a


def _str_list(a: pa.Array) -> _LazyStrings:
    if isinstance(a, pa.DictionaryArray):
        a = a.dictionary_decode()
    return _LazyStrings(a.cast(pa.string()) if not pa.types.is_string(a.type) else a)


def _bound(x: np.ndarray) -> int:
    return max(int(x.max()), -int(x.min())) if x.size else 0


def _money_slots(cv, table, prefix: str, types, file_rows, base: int, interner, rows: int) -> List:
    """Typed slots from one money column per type (``income_wage``, ``rigid_medical``...), those given."""
    given = [(t, a) for t in types if (a := array_of(table, prefix + t, chunked=True)) is not None]
    K = len(given)
    v = np.empty((K, rows), np.int64)  # each column converted into its slot: no stacking copy
    p = np.empty((K, rows), bool)
    for k, (t, a) in enumerate(given):
        _fen, null = cv.money(a, file_rows, base, prefix + t, out=v[k])
        np.logical_not(null, out=p[k])
    return _typed_slots([interner.id(t) for t, _a in given], v, p, rows)


def _typed_slots(types: list[int], v: np.ndarray, p: np.ndarray, rows: int) -> List:
    """A record list with one slot per type column (the type is constant per slot): values and presence (K, rows)."""
    K = len(types)
    if K == 0:
        return List(
            "record",
            0,
            0,
            False,
            None,
            True,
            {"type": Str(np.zeros((0, 1), np.int32)), "monthly": Num(np.zeros((0, rows), np.int64), FEN, 0)},
        )
    return List(
        "record",
        K,
        0,
        p,
        None,
        True,
        {"type": Str(np.array(types, dtype=np.int32).reshape(K, 1)), "monthly": Num(v, FEN, _bound(v))},
        zeroed=True,
    )


def _membership(rows: np.ndarray, codes: np.ndarray, n: int, interner: Interner) -> Set:
    masks: dict[int, np.ndarray] = {}
    if len(codes):
        for c in np.unique(codes).tolist():
            m = np.zeros(n, bool)
            m[rows[codes == c]] = True
            masks[int(c)] = m
    return Set(None, masks)


def _events(ev: pa.Table | None, hh: pa.Table, offsets, cv: Conv, file: str, interner: Interner, asof: np.ndarray) -> List:
    H = hh.num_rows
    empty = List(
        "record",
        0,
        0,
        False,
        None,
        True,
        {
            "type": Str(np.zeros((0, H), np.int32)),
            "date": Date(np.zeros((0, H), np.int32)),
            "loss": Num(np.zeros((0, H), np.int64), FEN, 0),
            "locality": Str(np.zeros((0, H), np.int32)),
        },
    )
    if ev is None or ev.num_rows == 0:
        return empty
    ids = array_of(hh, "household_id")
    if isinstance(ids, pa.DictionaryArray):
        ids = ids.dictionary_decode()
    pos = pc.index_in(ev.column("household_id"), value_set=ids).to_numpy(zero_copy_only=False).astype(np.int64)
    col = S.BY_TABLE[S.EVENTS]
    types, _tnull = cv.codes(array_of(ev, "type"), file, 0, col["type"])
    dates, _dnull = cv.dates(array_of(ev, "date"), file, 0, "date")
    la = array_of(ev, "loss")
    loss, lnull = (
        cv.money(la, file, 0, "loss") if la is not None else (np.zeros(ev.num_rows, np.int64), np.ones(ev.num_rows, bool))
    )
    lc = array_of(ev, "locality")
    ev_loc = cv.codes(lc, file, 0, col["locality"])[0] if lc is not None else np.zeros(ev.num_rows, np.int32)
    late = dates > asof[pos]
    if late.any():
        cv.errs.rows(file, 0, late, "date", "事件日期晚于评估日期 as_of", "event date is after as_of")
    order = np.argsort(pos, kind="stable")
    counts = np.bincount(pos, minlength=H)
    K = int(counts.max())
    slot = np.zeros(len(pos), np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    slot[order] = np.arange(len(pos)) - starts[pos[order]]
    T = np.zeros((K, H), np.int32)
    D = np.zeros((K, H), np.int32)
    L = np.zeros((K, H), np.int64)
    LK = np.ones((K, H), bool)
    P = np.zeros((K, H), bool)
    LOC = np.zeros((K, H), np.int32)
    T[slot, pos], D[slot, pos], L[slot, pos], LK[slot, pos], P[slot, pos] = types, dates, loss, ~lnull, True
    LOC[slot, pos] = ev_loc
    return List(
        "record",
        K,
        0,
        P,
        None,
        True,
        {"type": Str(T), "date": Date(D), "loss": Num(L, FEN, _bound(L), LK if not LK.all() else True), "locality": Str(LOC)},
        zeroed=True,
    )


def jsonl_part(parsed: list, interner: Interner, need_h: set[str], need_m: set[str], first: int) -> Part:
    part = from_parsed(parsed, interner, need_h, need_m)
    part.first_row = first
    return part

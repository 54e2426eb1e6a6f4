"""Conversion between the tables and docs/contract.md household records (export of one row, import for tests)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from engine.schema.model import PROGRAM_CODES
from engine.schema.money import MoneyError, fmt_money, parse_money

from . import schema as S
from .sources import RawPart


def _money_text(v: Any) -> str | None:
    if v is None:
        return None
    try:
        return fmt_money(parse_money(v if not isinstance(v, float) else repr(v)))
    except MoneyError:
        return str(v)


def _list_value(v: Any) -> list[str]:
    if v is None:
        return []
    if isinstance(v, str):
        return [x.strip() for x in v.split(",") if x.strip()]
    return [str(x) for x in v]


def _date_text(v: Any) -> str | None:
    if v is None:
        return None
    return v.isoformat() if isinstance(v, dt.date) else str(v).strip()


def row_contract(raw: RawPart, i: int, as_of: dt.date | None = None) -> dict:
    """Household ``i`` of a part as a docs/contract.md household record."""
    h = raw.hh.slice(i, 1).to_pylist()[0]
    if raw.offsets is None:
        raw.offsets = np.concatenate([[0], np.cumsum(raw.sizes)])
    a = int(raw.offsets[i])
    members = raw.mem.slice(a, int(raw.sizes[i])).to_pylist()
    events = []
    if raw.ev is not None and raw.ev.num_rows:
        mask = pc.equal(raw.ev.column("household_id"), h["household_id"])
        events = raw.ev.filter(mask).to_pylist()
    return to_contract(h, members, events, as_of)


def to_contract(h: dict, members: list[dict], events: list[dict] | None = None, as_of: dt.date | None = None) -> dict:
    out: dict[str, Any] = {
        "household_id": h["household_id"],
        "locality": h["locality"],
        "as_of": as_of.isoformat() if as_of is not None else _date_text(h.get("as_of")),
        "area": h["area"],
        "members": [],
    }
    if h.get("assets_financial") is not None or h.get("assets_properties") is not None:
        vehicles = [{"exempt": False}] * int(h.get("vehicles_nonexempt") or 0) + [{"exempt": True}] * int(
            h.get("vehicles_exempt") or 0
        )
        out["assets"] = {
            "financial": _money_text(h.get("assets_financial")),
            "vehicles": vehicles,
            "properties": h.get("assets_properties"),
        }
    rigid = [{"type": t, "monthly": _money_text(h[f"rigid_{t}"])} for t in S.EXPENSE_TYPES if h.get(f"rigid_{t}") is not None]
    if rigid:
        out["rigid_expenses"] = rigid
    benefits = _list_value(h.get("current_benefits"))
    if benefits:
        out["current_benefits"] = benefits
    amounts = {c: _money_text(h[f"current_amount_{c}"]) for c in PROGRAM_CODES if h.get(f"current_amount_{c}") is not None}
    if amounts:
        out["current_amounts"] = amounts
    for m in members:
        rec: dict[str, Any] = {"id": m["member_id"], "relation": m["relation"], "birth_date": _date_text(m.get("birth_date"))}
        for k in ("sex", "id_number", "hukou_locality", "residence_permit_locality", "self_care", "supporters"):
            if m.get(k) is not None:
                rec[k] = m[k]
        if m.get("disability_category") is not None or m.get("disability_grade") is not None:
            rec["disability"] = {"category": m.get("disability_category"), "grade": m.get("disability_grade")}
        for k in ("serious_illness", "employed"):
            if m.get(k) is not None:
                rec[k] = bool(m[k])
        if m.get("schooling") is not None:
            rec["schooling"] = m["schooling"]
        for k in ("status", "tags"):
            if _list_value(m.get(k)):
                rec[k] = _list_value(m.get(k))
        parents = [{"status": m[k]} for k in ("parent1_status", "parent2_status") if m.get(k) is not None]
        if parents:
            rec["parents"] = parents
        incomes = [
            {"type": t, "monthly": _money_text(m[f"income_{t}"])} for t in S.INCOME_TYPES if m.get(f"income_{t}") is not None
        ]
        if incomes:
            rec["incomes"] = incomes
        if m.get("current_benefits") is not None:
            rec["current_benefits"] = _list_value(m["current_benefits"])
        out["members"].append(rec)
    if events:
        out["events"] = [
            {
                k: v
                for k, v in {
                    "type": e["type"],
                    "date": _date_text(e["date"]),
                    "loss": _money_text(e.get("loss")),
                    "locality": e.get("locality"),
                }.items()
                if v is not None
            }
            for e in events
        ]
    return out


def _sum_money(values: list) -> Decimal | None:
    if not values:
        return None
    total = sum((Decimal(str(parse_money(v).numerator)) / Decimal(str(parse_money(v).denominator)) for v in values), Decimal(0))
    return total.quantize(Decimal("0.01"))


def from_contract(households: list[dict]) -> tuple[pa.Table, pa.Table, pa.Table | None]:
    """Households of the contract as the three tables. Incomes and expenses of one type are added up."""
    hrows, mrows, erows = [], [], []
    for h in households:
        r: dict[str, Any] = {"household_id": h["household_id"], "locality": h["locality"], "as_of": h["as_of"], "area": h["area"]}
        a = h.get("assets")
        if a is not None:
            r["assets_financial"] = _sum_money([a["financial"]])
            r["assets_properties"] = a["properties"]
            vs = a.get("vehicles") or []
            r["vehicles_nonexempt"] = sum(1 for v in vs if not v["exempt"])
            r["vehicles_exempt"] = sum(1 for v in vs if v["exempt"])
        for t in S.EXPENSE_TYPES:
            r[f"rigid_{t}"] = _sum_money([e["monthly"] for e in h.get("rigid_expenses") or [] if e["type"] == t])
        r["current_benefits"] = ",".join(h.get("current_benefits") or []) or None
        for code in PROGRAM_CODES:
            v = (h.get("current_amounts") or {}).get(code)
            r[f"current_amount_{code}"] = _sum_money([v]) if v is not None else None
        hrows.append(r)
        for m in h["members"]:
            d = m.get("disability")
            mr: dict[str, Any] = {
                "household_id": h["household_id"],
                "member_id": m["id"],
                "relation": m["relation"],
                "birth_date": m["birth_date"],
                "sex": m.get("sex"),
                "id_number": m.get("id_number"),
                "hukou_locality": m.get("hukou_locality"),
                "residence_permit_locality": m.get("residence_permit_locality"),
                "disability_category": d["category"] if d else None,
                "disability_grade": d["grade"] if d else None,
                "serious_illness": m.get("serious_illness"),
                "self_care": m.get("self_care"),
                "schooling": m.get("schooling"),
                "employed": m.get("employed"),
                "status": ",".join(m.get("status") or []) or None,
                "supporters": m.get("supporters"),
                "tags": ",".join(m.get("tags") or []) or None,
                "current_benefits": ",".join(m["current_benefits"]) if m.get("current_benefits") is not None else None,
            }
            ps = m.get("parents") or []
            mr["parent1_status"] = ps[0]["status"] if len(ps) > 0 else None
            mr["parent2_status"] = ps[1]["status"] if len(ps) > 1 else None
            for t in S.INCOME_TYPES:
                mr[f"income_{t}"] = _sum_money([i["monthly"] for i in m.get("incomes") or [] if i["type"] == t])
            mrows.append(mr)
        for e in h.get("events") or []:
            erows.append(
                {
                    "household_id": h["household_id"],
                    "type": e["type"],
                    "date": e["date"],
                    "loss": _sum_money([e["loss"]]) if e.get("loss") is not None else None,
                    "locality": e.get("locality"),
                }
            )
    return _table(S.HOUSEHOLDS, hrows), _table(S.MEMBERS, mrows), _table(S.EVENTS, erows) if erows else None


def arrow_type(c: S.Column) -> pa.DataType:
    return {
        "money": pa.decimal128(14, 2),
        "int": pa.int64(),
        "bool": pa.bool_(),
        "date": pa.date32(),
    }.get(c.kind, pa.string())


def _table(table: str, rows: list[dict]) -> pa.Table:
    cols = S.BY_TABLE[table]
    data = {}
    for name, c in cols.items():
        vals = [r.get(name) for r in rows]
        if c.kind == "date":
            vals = [dt.date.fromisoformat(v) if isinstance(v, str) else v for v in vals]
        data[name] = pa.array(vals, arrow_type(c))
    return pa.table(data)

"""Applying an event to a household's stored record (docs/contract.md JSON).

``apply_event`` returns the new record and whether the facts the programs read
changed (then the household is re-evaluated). The record is never changed in
place, so a refused event leaves nothing half-applied. Resident ID numbers are
dropped from stored records: the monitor never needs them, and never keeps them.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from engine.schema.model import FieldError, InputError
from engine.schema.money import fmt_money, parse_money
from engine.schema.validate import Parsed, parse

from .events import Event, refuse

# Disaster and accident events stay on the record this long when the locality sets no window for
# 临时救助 (it looks back temporary.event_window_months; the monitor keeps what that window needs).
EVENT_RETAIN_DAYS = 366
# Event types that add an item to the record's ``events`` (what 临时救助 reads).
EVENT_ADDING = frozenset({"illness_diagnosed", "disaster", "accident"})
# A household's ``events`` holds at most this many items (engine/schema/validate.py): the monitor's own
# record must stay within it, however many events arrive, or valid events would be refused.
MAX_RECORD_EVENTS = 200
# Events that do not change what the programs read: no re-evaluation.
NO_FACT_CHANGE = frozenset({"hospitalisation", "review_completed", "tick"})


def _strip_ids(members: list) -> list:
    return [{k: v for k, v in m.items() if k != "id_number"} if isinstance(m, dict) else m for m in members]


def register(ev: Event, prefix: str) -> tuple[dict, Parsed]:
    """The record carried by a ``register`` event, validated as a household (errors under ``household.``)."""
    rec = dict(ev.data["household"])
    hid = rec.setdefault("household_id", ev.household_id)
    if hid != ev.household_id:
        raise refuse(f"{prefix}household.household_id", "应与事件的 household_id 相同", "must equal the event's household_id")
    rec["as_of"] = ev.date.isoformat()
    parsed = _parse(rec, f"{prefix}household", None)
    for i, m in enumerate(rec["members"]):
        _birth_order(rec["members"], m, f"{prefix}household.members[{i}].birth_date")
    rec["members"] = _strip_ids(rec.get("members", []))
    parsed.raw = rec
    return rec, parsed


def _parse(rec: dict, prefix: str, member_index: int | None, member_prefix: str | None = None, previous: Parsed | None = None) -> Parsed:
    try:
        return parse(rec, previous)
    except InputError as e:
        errors = []
        for err in e.errors:
            f = err.field
            if member_index is not None and member_prefix and f.startswith(f"members[{member_index}]"):
                f = member_prefix + f[len(f"members[{member_index}]") :]
            else:
                f = f"{prefix}.{f}" if prefix else f
            errors.append(
                FieldError(field=f, message=f"{f}: {err.message_zh} ({err.message_en})", message_zh=err.message_zh,
                           message_en=err.message_en, code=err.code)
            )
        raise InputError(errors) from None


def _find(rec: dict, member: str, path: str, hid: str) -> int:
    for i, m in enumerate(rec["members"]):
        if m.get("id") == member:
            return i
    raise refuse(path, f"成员 {member} 不在家庭 {hid} 的记录中", f"member {member!r} is not in household {hid!r}", "unknown_member")


def apply_event(record: dict, ev: Event, prefix: str = "", previous: Parsed | None = None,
                keep_from: dt.date | None = None) -> tuple[dict, Parsed | None]:
    """The record after ``ev``, and its validated form when the programs must be re-evaluated: None when
    the event changes nothing they read (then the record, ``as_of`` included, stays as it was).
    ``previous``: the validated form of ``record`` if at hand (its unchanged members are not validated again).
    ``keep_from``: the earliest date of ``events`` the programs can still read (older items are dropped)."""
    p = (prefix + ".") if prefix else ""
    if ev.type in NO_FACT_CHANGE:
        if ev.member is not None:
            _find(record, ev.member, p + "member", ev.household_id)
        return record, None
    rec = dict(record)
    members = [dict(m) for m in rec["members"]]
    rec["members"] = members
    old = dt.date.fromisoformat(rec["as_of"])
    rec["as_of"] = max(old, ev.date).isoformat()
    t, d = ev.type, ev.data
    idx = _find(rec, ev.member, p + "member", ev.household_id) if ev.member is not None and t not in ("birth", "member_moved_in") else None
    m = members[idx] if idx is not None else None
    if t == "income_change":
        incomes = [x for x in m.get("incomes", []) if x.get("type") != d["income_type"]]
        if d["monthly"] > 0:
            incomes.append({"type": d["income_type"], "monthly": fmt_money(d["monthly"])})
        _set(m, "incomes", incomes, [])
    elif t == "job_found":
        m["employed"] = True
        if "monthly" in d:
            m["incomes"] = [*[x for x in m.get("incomes", []) if x.get("type") != "wage"], {"type": "wage", "monthly": fmt_money(d["monthly"])}]
    elif t == "job_lost":
        _set(m, "employed", False, False)
        _set(m, "incomes", [x for x in m.get("incomes", []) if x.get("type") != "wage"], [])
    elif t == "illness_diagnosed":
        m["serious_illness"] = True
        if "cost" in d:
            _add_event(rec, {"type": "serious_illness", "date": ev.date.isoformat(), "loss": fmt_money(d["cost"])}, keep_from)
    elif t in ("disability_certified", "disability_regraded"):
        m["disability"] = {"category": d["category"], "grade": d["grade"]}
    elif t in ("disaster", "accident"):
        cause = d.get("cause") or ("natural_disaster" if t == "disaster" else "accident")
        _add_event(rec, {"type": cause, "date": ev.date.isoformat(), "loss": fmt_money(d["loss"])}, keep_from)
    elif t == "death":
        if "deceased" in m.get("status", ()):
            raise refuse(p + "member", f"成员 {ev.member} 已登记死亡", f"member {ev.member!r} is already recorded as deceased", "already_deceased")
        m["status"] = sorted({*m.get("status", []), "deceased"})
    elif t == "birth":
        if any(x.get("id") == ev.member for x in members):
            raise refuse(p + "member", f"成员编号 {ev.member} 已存在", f"member id {ev.member!r} already exists", "duplicate_member")
        baby = {"id": ev.member, "relation": d.get("relation", "child"), "birth_date": ev.date.isoformat()}
        _birth_order(members, baby, p + "date")
        for k in ("sex", "hukou_locality"):
            if k in d:
                baby[k] = d[k]
        members.append(baby)
    elif t == "school_enrolled":
        m["schooling"] = d["schooling"]
    elif t == "school_left":
        _set(m, "schooling", "none", "none")
    elif t == "member_moved_in":
        if any(x.get("id") == ev.member for x in members):
            raise refuse(p + "member_record.id", f"成员编号 {ev.member} 已存在", f"member id {ev.member!r} already exists", "duplicate_member")
        members.append(dict(d["member_record"]))
        parsed = _parse(rec, p + "household" if p else "household", len(members) - 1, p + "member_record", previous)
        _birth_order(members, members[-1], p + "member_record.birth_date")
        rec["members"] = _strip_ids(members)
        parsed.raw = rec
        return rec, parsed
    elif t == "member_moved_out":
        if len(members) == 1:
            raise refuse(p + "member", "户中至少应保留一名成员；整户退出监测请停止报送", "a household keeps at least one member", "last_member")
        del members[idx]
    elif t == "benefit_started":
        _start(rec, m, d)
    elif t == "benefit_stopped":
        _stop(rec, m, d["program"])
    if {**rec, "as_of": record["as_of"]} == record:
        return record, None  # nothing the programs read has changed (a job lost by someone without one...)
    parsed = _parse(rec, p + "household" if p else "household", None, None, previous)
    return rec, parsed


# Relations to the head born after the head (its descendants) and before it (its ancestors).
_YOUNGER = frozenset({"child", "grandchild"})
_OLDER = frozenset({"parent", "grandparent"})


def _birth_order(members: list, m: dict, path: str) -> None:
    """Refuse a member born before the head it descends from, or after the head it is an ancestor of.
    ``m``'s birth_date is an ISO date (already validated); ``path`` names the field refused."""
    rel = m.get("relation")
    if rel not in _YOUNGER and rel not in _OLDER:
        return
    head = next((x for x in members if x.get("relation") == "head" and x is not m), None)
    if head is None:
        return
    born, head_born = str(m["birth_date"]), str(head["birth_date"])
    if rel in _YOUNGER and born <= head_born:
        zh, en = f"不能早于或等于户主 {head['id']} 的出生日期 {head_born}", f"cannot be on or before the birth of the head {head['id']!r} ({head_born})"
    elif rel in _OLDER and born >= head_born:
        zh, en = f"不能晚于或等于户主 {head['id']} 的出生日期 {head_born}", f"cannot be on or after the birth of the head {head['id']!r} ({head_born})"
    else:
        return
    raise refuse(path, f"出生日期{zh}", f"birth date {en}", "impossible_date")


def _set(m: dict, key: str, value: Any, default: Any) -> None:
    """Set a field only when its value changes (so that an event that changes nothing leaves the record equal)."""
    if m.get(key, default) != value:
        m[key] = value


def _add_event(rec: dict, item: dict, keep_from: dt.date | None = None) -> None:
    """Add an item to ``events``, keeping the list bounded: only items the programs can still read
    (dated ``keep_from`` or later), and one item per date, type and place, its loss the sum of theirs
    (临时救助 reads the count of recent events only as ``> 0``, and the sum of their losses)."""
    if keep_from is None:
        keep_from = dt.date.fromisoformat(rec["as_of"]) - dt.timedelta(days=EVENT_RETAIN_DAYS)
    cutoff = keep_from.isoformat()
    merged: dict[tuple, dict] = {}
    for e in [*rec.get("events", []), item]:
        if e.get("date", "") < cutoff:
            continue
        k = (e.get("date"), e.get("type"), e.get("locality"))
        have = merged.get(k)
        if have is None:
            merged[k] = e
        elif "loss" in have and "loss" in e:
            merged[k] = {**have, "loss": fmt_money(parse_money(have["loss"]) + parse_money(e["loss"]))}
        else:
            merged[len(merged), *k] = e  # an item without a loss is kept as it is
    events = list(merged.values())
    if len(events) > MAX_RECORD_EVENTS:
        events = _fold(events)
    rec["events"] = events


def _fold(events: list[dict]) -> list[dict]:
    """A window longer than MAX_RECORD_EVENTS distinct dates (a locality's long 临时救助 window and an
    emergency nearly every day): the oldest items are folded into the oldest one kept, dated as it. The
    sum of losses read is then never smaller than it was; a folded loss is read until that date leaves
    the window, a little longer than its own date would allow (never less)."""
    events = sorted(events, key=lambda e: e.get("date", ""))
    cut = len(events) - MAX_RECORD_EVENTS + 1
    old, keep = events[:cut], events[cut:]
    loss = sum((parse_money(e["loss"]) for e in old if "loss" in e), start=parse_money("0"))
    first = keep[0]
    keep[0] = {**first, "loss": fmt_money(parse_money(first.get("loss", "0")) + loss)}
    return keep


def _start(rec: dict, m: dict | None, d: dict[str, Any]) -> None:
    code = d["program"]
    if m is None:
        rec["current_benefits"] = sorted({*rec.get("current_benefits", []), code})
    else:
        own = m.get("current_benefits")
        m["current_benefits"] = sorted({*(own if own is not None else rec.get("current_benefits", [])), code})
    if "monthly" in d:
        rec["current_amounts"] = {**rec.get("current_amounts", {}), code: fmt_money(d["monthly"])}


def _stop(rec: dict, m: dict | None, code: str) -> None:
    if m is None:
        rec["current_benefits"] = [c for c in rec.get("current_benefits", []) if c != code]
        rec["current_amounts"] = {k: v for k, v in rec.get("current_amounts", {}).items() if k != code}
        rec["members"] = [
            {**x, "current_benefits": [c for c in x["current_benefits"] if c != code]} if x.get("current_benefits") else x
            for x in rec["members"]
        ]
    else:
        own = m.get("current_benefits")
        m["current_benefits"] = [c for c in (own if own is not None else rec.get("current_benefits", [])) if c != code]

"""The monitor: an event in; the household's record updated, re-evaluated, and alerts out.

For each accepted event ``Monitor.process``:

1. applies it to the household's stored record (``engine.monitor.apply``);
2. when what the programs read changed, re-evaluates the household with the
   core evaluator (``engine.Engine.outline``, the programs named in
   ``rules/monitoring/``: the monitor keeps statuses, amounts and the household's income,
   not the reasons) and compares each program with the last determination;
3. puts into the household's durable-rules session the event, the household's
   new income, one ``change`` fact per program whose status or amount changed,
   the milestones still to come and the clock; the monitoring rules that match
   fire, and each firing becomes an alert with a natural key (household, rule,
   the facts it matched), so that replaying or retrying never duplicates one.

No database here: the caller loads and stores ``HouseholdState`` and the event
rows (``api/monitoring/service.py`` for the service, ``engine/monitor/replay.py`` for
replays), committing an event and its alerts together.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.book.rules import default_root, load_rulebook
from engine.executors.evaluate import Engine
from engine.schema.model import InputError
from engine.schema.money import cents_of, to_cents, yuan_text

from .apply import EVENT_ADDING, EVENT_RETAIN_DAYS, apply_event, register
from .events import CAUSE_LABELS, Event, refuse
from .rules import LEVELS, MonitorBook, MonitorRule, load_monitoring
from .session import Session, SessionPool

_DEFAULT_CAUSE = {"disaster": "natural_disaster", "accident": "accident"}
# Events that leave the household's state (record, determination, figures, dates kept) as it was,
# but for its seq and latest date: only the session sees them.
STATE_NEUTRAL = frozenset({"tick", "hospitalisation"})


@dataclass
class HouseholdState:
    """What the monitor keeps of a household between events (stored by the caller)."""

    household_id: str
    locality: str
    record: dict  # docs/contract.md household, as of the latest re-evaluation (no ID numbers)
    summary: list[dict]  # the last determination: program, members, status, amounts
    figures: dict  # monthly_income, per_capita_income (fen or None), counted_count, as_of
    registered: str  # date it entered monitoring
    last_review: str  # last periodic review (registration counts as one)
    gradual_exit_start: str | None = None
    seq: int = 0  # events applied
    last_income: int | None = None  # per-capita income (fen) of the session's latest income fact
    last_date: str | None = None  # the latest event date applied: an event dated before it is applied in date order

    def meta(self) -> dict:
        return {
            "registered": self.registered,
            "last_review": self.last_review,
            "gradual_exit_start": self.gradual_exit_start,
            "last_income": self.last_income,
            "figures": self.figures,
            "last_date": self.last_date,
        }

    @classmethod
    def from_stored(cls, household_id: str, locality: str, record: dict, summary: list, meta: dict, seq: int) -> HouseholdState:
        return cls(
            household_id,
            locality,
            record,
            summary,
            meta["figures"],
            meta["registered"],
            meta["last_review"],
            meta.get("gradual_exit_start"),
            seq,
            meta.get("last_income"),
            # records stored before last_date was kept: the date of their latest re-evaluation
            meta.get("last_date") or record.get("as_of"),
        )


@dataclass
class Outcome:
    state: HouseholdState
    key: str  # the event's key (its event_id, or household:seq)
    seq: int
    ops: list  # what it did to the session (stored with the event, to rebuild the session)
    alerts: list[dict]
    evaluated: bool
    changes: list[dict] = field(default_factory=list)


def _fen(text: str | None) -> int | None:
    return None if text is None else cents_of(text)


def _summary(det: dict) -> list[dict]:
    out = []
    for p in det["programs"]:
        item = {"program": p["program"], "members": p["members"], "status": p["status"], "monthly_amount": p["monthly_amount"]}
        if p.get("one_off_amount") is not None:
            item["one_off_amount"] = p["one_off_amount"]
        out.append(item)
    return out


def _entry_key(p: dict, scope_member: bool) -> str:
    return f"{p['program']}[{p['members'][0]}]" if scope_member else p["program"]


def add_years(d: dt.date, years: int) -> dt.date:
    try:
        return d.replace(year=d.year + years)
    except ValueError:  # 29 February: the birthday falls on 1 March
        return dt.date(d.year + years, 3, 1)


def add_months(d: dt.date, months: int) -> dt.date:
    y, m = divmod(d.month - 1 + months, 12)
    y += d.year
    m += 1
    for day in (d.day, 30, 29, 28):
        try:
            return dt.date(y, m, day)
        except ValueError:
            continue
    raise AssertionError(d)



def check_registered(ev: Event, state: HouseholdState | None, prefix: str = "") -> None:
    """Refuse an event dated before its household entered monitoring (a clock tick never moves back)."""
    if state is not None and ev.date.isoformat() < state.registered and ev.type != "tick":
        p = (prefix + ".") if prefix else ""
        raise refuse(
            p + "date",
            f"事件日期早于该户纳入监测的日期（{state.registered}）",
            f"the event is dated before the household entered monitoring ({state.registered})",
            "before_registration",
        )

class Monitor:
    def __init__(
        self,
        home: Path | None = None,
        *,
        engine: Engine | None = None,
        book: MonitorBook | None = None,
        capacity: int = 2000,
    ):
        root = home or default_root()
        self.book = book or load_monitoring(root / "rules" / "monitoring")
        self.book.raise_if_errors()
        self.engine = engine or Engine(load_rulebook(root, programs=set(self.book.programs)))
        self.pool = SessionPool(self.book, capacity)
        self._member_programs = {p.code for p in self.engine.book.programs if p.scope == "member"}
        self._names = {p.code: p.name for p in self.engine.book.programs}
        self.version = self.engine.version
        self._ages = tuple(self.book.milestones)
        self._dues: dict[tuple[str, str], tuple] = {}  # (member id, birth date) -> its age milestones

    # -- one event -----------------------------------------------------------------
    def process(
        self,
        ev: Event,
        state: HouseholdState | None,
        history: Callable[[], Iterable[list]] | None = None,
        prefix: str = "",
        key: str | None = None,
        seq: int | None = None,
    ) -> Outcome:
        """Apply ``ev`` to ``state`` (None: not registered). ``history`` gives the household's stored
        op lists, in the order they were applied, when its session is not live in this process. Raises
        ``InputError`` (nothing changed) for an event that cannot apply. ``key`` and ``seq``: those the
        event already has (it is applied again, in date order: ``replay_in_order``)."""
        p = (prefix + ".") if prefix else ""
        live = self.pool.get(ev.household_id)
        check_registered(ev, state, prefix)
        if ev.type == "register":
            record, parsed = register(ev, prefix)
        elif state is None:
            raise refuse(
                p + "household_id",
                f"家庭 {ev.household_id} 尚未纳入监测：请先报送 register 事件（附家庭记录）",
                f"household {ev.household_id!r} is not monitored yet: send a 'register' event with its record first",
                "unknown_household",
            )
        else:
            keep_from = self._events_from(state.record, ev) if ev.type in EVENT_ADDING else None
            record, parsed = apply_event(state.record, ev, prefix, live.parsed if live is not None else None, keep_from)
        if state is not None and state.locality != record["locality"]:
            # a household that moved is a new registration where it now lives
            raise refuse(p + "household.locality", "不能更改家庭的行政区划；迁居的家庭请在新地区重新登记", "a household's locality cannot change")

        det = self.engine.outline(parsed) if parsed is not None else None
        s = live
        if s is None:
            s = self.pool.open(ev.household_id, history() if (history is not None and state is not None) else ())
        try:
            out = self._run(ev, state, record, det, s, key, seq)
            if parsed is not None:
                s.parsed = parsed
            return out
        except BaseException:
            self.pool.drop(ev.household_id)  # its session may be half-changed: rebuild it next time
            raise

    def _events_from(self, record: dict, ev: Event) -> dt.date:
        """The earliest date of the record's ``events`` that the programs can still read once ``ev`` is
        applied: 临时救助 looks back ``temporary.event_window_months`` from ``as_of`` (a month counted as
        31 days, one day spare), and ``as_of`` never goes back, so older ones are let go."""
        as_of = max(dt.date.fromisoformat(record["as_of"]), ev.date)
        months = self.engine.policies.resolve(record["locality"], as_of).values.get("temporary.event_window_months")
        if months is None:
            return as_of - dt.timedelta(days=EVENT_RETAIN_DAYS)
        return as_of - dt.timedelta(days=31 * int(months) + 1)

    def replay_in_order(
        self,
        items: list[tuple[Event, str, int]],
        late: str,
        prefix: str = "",
        start: tuple[HouseholdState, list[list]] | None = None,
    ) -> list[Outcome]:
        """Apply a household's events again, in the order given (date order, see ``api/monitoring/order.py``),
        each with its key and seq, in a new session: the state, session and alerts are those of the events
        arriving in that order. From the start, or from ``start``: the household's state before the first
        of ``items`` and the session operations of the events before it. ``late``: the key of the event that
        arrived out of order (its errors carry ``prefix``). Raises ``InputError`` if one cannot apply (then
        the session is dropped, to be rebuilt from what is stored)."""
        hid = items[0][0].household_id
        p = (prefix + ".") if prefix else ""
        self.pool.drop(hid)
        state: HouseholdState | None = None
        out: list[Outcome] = []
        last_seq = 0
        if start is not None:
            state, history = start
            last_seq = state.seq
            self.pool.open(hid, history)
        for ev, key, seq in items:
            try:
                o = self.process(ev, state, None, prefix if key == late else "", key, seq)
            except InputError as e:
                self.pool.drop(hid)
                if key == late:
                    raise
                why = "; ".join(f"{x.message_zh}" for x in e.errors)
                why_en = "; ".join(f"{x.field}: {x.message_en}" for x in e.errors)
                raise refuse(
                    p + "date",
                    f"该事件早于已记录的事件；按日期顺序应用时，其后的事件 {key}（{ev.date.isoformat()}，{ev.type}）不再成立：{why}",
                    f"this event is dated before events already recorded; applied in date order, the later event "
                    f"{key!r} ({ev.date.isoformat()}, {ev.type}) no longer applies: {why_en}",
                    "conflicts_with_later_event",
                ) from None
            last_seq = max(last_seq, seq)
            o.state.seq = last_seq
            state = o.state
            out.append(o)
        return out

    def _run(self, ev: Event, state: HouseholdState | None, record: dict, det: dict | None, s: Session,
             key: str | None = None, seq: int | None = None) -> Outcome:
        pool = self.pool
        hid = ev.household_id
        day = ev.date.toordinal()
        seq = seq or (state.seq if state else 0) + 1
        key = key or ev.event_id or f"{hid}:{seq}"
        before_summary = state.summary if state else []
        before_figures = state.figures if state else {"monthly_income": 0, "per_capita_income": None, "counted_count": 0, "as_of": None}
        if state is None:
            new = HouseholdState(hid, record["locality"], record, [], before_figures, ev.date.isoformat(), ev.date.isoformat())
        else:
            new = copy.copy(state)
            new.record = record
        new.seq = seq
        iso = ev.date.isoformat()
        if new.last_date is None or iso > new.last_date:
            new.last_date = iso
        if ev.type in ("review_completed", "benefit_started") or (ev.type == "register" and state is None):
            new.last_review = ev.date.isoformat()
        s.ops = []

        # the event itself (persistent: windowed rules look back at earlier events)
        d = ev.data
        pool.assert_fact(
            s,
            {
                "id": "ev:" + key,
                "kind": "event",
                "type": ev.type,
                "day": day,
                "date": ev.date.isoformat(),
                "member": ev.member or "",
                "loss": _fen_q(d.get("loss")),
                "cost": _fen_q(d.get("cost")),
                "cause": CAUSE_LABELS.get(d.get("cause") or _DEFAULT_CAUSE.get(ev.type, ""), ""),
                "monthly_income": before_figures["monthly_income"] or 0,
                "per_capita_income": before_figures["per_capita_income"] or 0,
                "counted_count": before_figures["counted_count"] or 0,
            },
        )
        changes: list[dict] = []
        if det is not None:
            hh = det["household"]
            new.summary = _summary(det)
            new.figures = {
                "monthly_income": _fen(hh.get("monthly_income")) or 0,
                "per_capita_income": _fen(hh.get("per_capita_income")),
                "counted_count": len(hh.get("counted_members") or []),
                "as_of": det["as_of"],
            }
            pc = new.figures["per_capita_income"]
            if pc is not None and pc != new.last_income:
                pool.assert_fact(
                    s,
                    {
                        "id": "in:" + key,
                        "kind": "income",
                        "day": day,
                        "date": ev.date.isoformat(),
                        "per_capita_income": pc,
                        "monthly_income": new.figures["monthly_income"],
                        "counted_count": new.figures["counted_count"],
                    },
                )
                new.last_income = pc
            changes = self._changes(before_summary, new.summary, record, ev)
            dibao = next((x for x in new.summary if x["program"] == "dibao"), None)
            if dibao is not None:
                if dibao["status"] == "gradual_exit" and new.gradual_exit_start is None:
                    new.gradual_exit_start = ev.date.isoformat()
                elif dibao["status"] != "gradual_exit":
                    new.gradual_exit_start = None
            for i, ch in enumerate(changes):
                pool.assert_fact(s, {"id": f"ch:{key}:{i}", "kind": "change", **ch}, persistent=False)

        earliest = self._milestones(s, new, record)
        # The clock is what milestone rules compare due dates with; it moves when something falls due.
        clock = s.facts.get("clock")
        if clock is None or (clock["day"] < day and earliest is not None and earliest <= day):
            if clock is not None:
                pool.retract(s, "clock")
            pool.assert_fact(s, {"id": "clock", "kind": "clock", "day": day, "date": ev.date.isoformat()})
        self._prune(s, day)

        alerts = self._alerts(s, new, ev, key, before_summary, before_figures)
        for i in range(len(changes)):
            pool.retract(s, f"ch:{key}:{i}", persistent=False)
        return Outcome(new, key, seq, s.ops, alerts, det is not None, changes)

    # -- what changed --------------------------------------------------------------
    def _changes(self, before: list[dict], after: list[dict], record: dict, ev: Event) -> list[dict]:
        old = {_entry_key(p, p["program"] in self._member_programs): p for p in before}
        receiving_h = set(record.get("current_benefits", []))
        receiving_m = {
            m["id"]: set(m["current_benefits"]) if m.get("current_benefits") is not None else receiving_h for m in record["members"]
        }
        out = []
        for p in after:
            member_scope = p["program"] in self._member_programs
            k = _entry_key(p, member_scope)
            prev = old.get(k)
            amount = p.get("monthly_amount") if p.get("one_off_amount") is None else p["one_off_amount"]
            prev_amount = None if prev is None else (prev.get("monthly_amount") if prev.get("one_off_amount") is None else prev["one_off_amount"])
            if prev is not None and prev["status"] == p["status"] and prev_amount == amount:
                continue
            member = p["members"][0] if member_scope else ""
            rec = receiving_m.get(member, set()) if member_scope else receiving_h
            out.append(
                {
                    "program": p["program"],
                    "program_name": self._names.get(p["program"], p["program"]),
                    "member": member,
                    "before": prev["status"] if prev else "none",
                    "after": p["status"],
                    "amount_before": _fen(prev_amount) or 0,
                    "amount_after": _fen(amount) or 0,
                    "has_amount_before": prev_amount is not None,
                    "has_amount_after": amount is not None,
                    "receiving": p["program"] in rec,
                    "day": ev.date.toordinal(),
                    "date": ev.date.isoformat(),
                }
            )
        return out

    # -- milestones ----------------------------------------------------------------
    def _milestones(self, s: Session, state: HouseholdState, record: dict) -> int | None:
        """Bring the session's milestone facts in line with the household; returns the earliest due day."""
        wanted: dict[str, dict] = {}
        registered = state.registered
        tekun = {p["members"][0] for p in state.summary if p["program"] == "tekun" and p["status"] == "eligible"}
        household_benefits = record.get("current_benefits") or ()
        as_of = record["as_of"]
        facts = s.facts
        keep: set[str] = set()
        earliest = None
        for m in record["members"]:
            if m.get("status") and "deceased" in m["status"]:
                continue
            benefits = m["current_benefits"] if m.get("current_benefits") is not None else household_benefits
            schooling = m.get("schooling", "none")
            for ms, due_iso, due, fid in self._member_dues(m["id"], m["birth_date"]):
                if due_iso <= registered:
                    continue
                if ms.members == "tekun_minor" and not ((m["id"] in tekun or "tekun" in benefits) and as_of < due_iso):
                    continue
                if fid in s.fired:
                    continue
                if earliest is None or due < earliest:
                    earliest = due
                have = facts.get(fid)
                if have is not None and have["schooling"] == schooling:
                    keep.add(fid)  # already there, unchanged
                    continue
                wanted[fid] = {"id": fid, "kind": "milestone", "name": ms.name, "member": m["id"], "due": due,
                               "date": due_iso, "age": ms.age, "schooling": schooling, "months": 0}
        ps = None
        as_of_d = None
        if state.gradual_exit_start is not None:
            as_of_d = dt.date.fromisoformat(as_of)
            ps = self.engine.policies.resolve(record["locality"], as_of_d)
            months = int(ps.values["dibao.gradual_exit.months"])
            due_d = add_months(dt.date.fromisoformat(state.gradual_exit_start), months)
            fid = f"ms:gradual_exit_end::{due_d.isoformat()}"
            if facts.get(fid) is not None:
                keep.add(fid)
                earliest = min(earliest or facts[fid]["due"], facts[fid]["due"])
            else:
                wanted[fid] = {"id": fid, "kind": "milestone", "name": "gradual_exit_end", "member": "", "due": due_d.toordinal(),
                               "date": due_d.isoformat(), "age": 0, "schooling": "none", "months": months}
        months = self._review_months(record, as_of, as_of_d, ps)
        if months:
            due_d = add_months(dt.date.fromisoformat(state.last_review), months)
            fid = f"ms:review_due::{due_d.isoformat()}"
            if facts.get(fid) is not None and facts[fid]["months"] == months:
                keep.add(fid)
                earliest = min(earliest or facts[fid]["due"], facts[fid]["due"])
            else:
                wanted[fid] = {"id": fid, "kind": "milestone", "name": "review_due", "member": "", "due": due_d.toordinal(),
                               "date": due_d.isoformat(), "age": 0, "schooling": "none", "months": months}
        pool = self.pool
        for fid in [f for f in s.milestones if (f not in keep and f not in wanted) or f in wanted]:
            pool.retract(s, fid)  # gone, or changed (asserted again below)
            s.milestones.discard(fid)
        for fid, f in wanted.items():
            if fid in s.fired:
                continue
            pool.assert_fact(s, f)
            s.milestones.add(fid)
            if earliest is None or f["due"] < earliest:
                earliest = f["due"]
        return earliest

    def _member_dues(self, member_id: str, birth_iso: str) -> tuple:
        """(milestone, due ISO date, due day number, fact id) of each age milestone of a member."""
        key = (member_id, birth_iso)
        dues = self._dues.get(key)
        if dues is None:
            if len(self._dues) >= 200_000:  # bounded: a replay sees millions of members once or twice each
                self._dues.clear()
            birth = dt.date.fromisoformat(birth_iso)
            out = []
            for ms in self._ages:
                due = add_years(birth, ms.age)
                out.append((ms, due.isoformat(), due.toordinal(), f"ms:{ms.name}:{member_id}:{due.isoformat()}"))
            dues = self._dues[key] = tuple(out)
        return dues

    def _review_months(self, record: dict, as_of_iso: str, as_of: dt.date | None, ps) -> int:
        h = record.get("current_benefits") or ()
        members = [m for m in record["members"] if "deceased" not in (m.get("status") or ())]
        tekun = any("tekun" in (m["current_benefits"] if m.get("current_benefits") is not None else h) for m in members)
        if not tekun and "dibao" not in h:
            return 0
        as_of = as_of or dt.date.fromisoformat(as_of_iso)
        ps = ps or self.engine.policies.resolve(record["locality"], as_of)
        if tekun:
            return int(ps.values["monitor.review.tekun_months"])
        working_age = any(16 <= _age(m["birth_date"], as_of) < 60 for m in members)
        key = "monitor.review.dibao_months" if working_age else "monitor.review.dibao_stable_months"
        return int(ps.values[key])

    def _prune(self, s: Session, day: int) -> None:
        cutoff = day - self.book.retain_days
        queue = s.dated
        while queue and queue[0][0] < cutoff:
            _day, fid = queue.popleft()
            if fid in s.facts:
                self.pool.retract(s, fid)

    # -- alerts ----------------------------------------------------------------------
    def _alerts(self, s: Session, state: HouseholdState, ev: Event, key: str, before: list, before_figures: dict) -> list[dict]:
        fired = self.pool.take()
        if not fired:
            return []
        out: dict[str, dict] = {}
        determinations = {
            "before": {"as_of": before_figures.get("as_of"), "programs": before} if before else None,
            "after": {"as_of": state.figures.get("as_of"), "programs": state.summary},
        }
        for rule, facts in fired:
            for f in facts.values():
                if f.get("kind") == "milestone" and f["id"] not in s.fired:
                    self.pool.mark_fired(s, f["id"])
                    self.pool.retract(s, f["id"])
                    s.milestones.discard(f["id"])
            anchor = "|".join(facts[a]["id"] for a in rule.key)
            natural = f"{state.household_id}|{rule.id}|{anchor}"
            akey = hashlib.sha256(natural.encode()).hexdigest()
            if akey in out:
                continue
            out[akey] = self._alert(rule, facts, state, ev, key, akey, anchor, determinations)
        return sorted(out.values(), key=lambda a: (LEVELS_ORDER[a["level"]], a["rule"]))

    def _alert(self, rule: MonitorRule, facts: dict, state: HouseholdState, ev: Event, key: str, akey: str, anchor: str, dets: dict) -> dict:
        member = facts[rule.member[0]][rule.member[1]] if rule.member else None
        citation = rule.citation + ("（项目默认值，待地方确认）" if rule.project_default else "")
        return {
            "key": akey,
            "anchor": anchor,
            "household_id": state.household_id,
            "locality": state.locality,
            "rule": rule.id,
            "title": rule.title,
            "level": rule.level,
            "level_zh": LEVELS[rule.level],
            "text": render(rule, facts),
            "action": rule.action,
            "citation": citation,
            "project_default": rule.project_default,
            "member": member or None,
            "event_key": key,
            "event_type": ev.type,
            "event_date": ev.date.isoformat(),
            "determinations": dets,
        }

    def drop(self, household_id: str) -> None:
        self.pool.drop(household_id)


LEVELS_ORDER = {"red": 0, "orange": 1, "yellow": 2}


def _age(birth: str, on: dt.date) -> int:
    b = dt.date.fromisoformat(birth)
    return on.year - b.year - ((on.month, on.day) < (b.month, b.day))


def _fen_q(q: Any) -> int:
    return 0 if q is None else to_cents(q)


def render(rule: MonitorRule, facts: dict[str, dict]) -> str:
    out = []
    for is_slot, text in rule.text:
        if not is_slot:
            out.append(text)
            continue
        alias, _, fld = text.partition(".")
        v = facts[alias].get(fld)
        t = rule.slot_types[text]
        if t.kind == "money":
            out.append(yuan_text(int(v or 0)))
        elif t.kind == "bool":
            out.append("是" if v else "否")
        else:
            v = "" if v is None else str(v)
            out.append(_LABELS.get(fld, {}).get(v, v))
    return "".join(out)


_STATUS_ZH = {"eligible": "符合", "ineligible": "不符合", "gradual_exit": "渐退", "needs_info": "待补充材料", "none": "尚未认定"}
_LABELS = {
    "before": _STATUS_ZH,
    "after": _STATUS_ZH,
    "schooling": {
        "none": "不在学",
        "preschool": "学前教育",
        "compulsory": "义务教育",
        "high_school": "普通高中",
        "vocational": "中等职业学校",
        "college": "大专或本科",
        "graduate": "研究生",
    },
}


__all__ = ["HouseholdState", "InputError", "Monitor", "Outcome", "render"]

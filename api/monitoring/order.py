"""Events applied in date order, whatever order they arrive in: one place for the service and the replays.

An event dated on or after the latest event applied to its household (the common case) is applied
to the household's state as it is. One dated before it (an income change of 08-15 arriving after
one of 09-01) would otherwise overwrite the newer state: instead the household is applied again
from its first event, every event in date order (ties: the order they arrived in, their ``seq``),
the late one in its place (``Monitor.replay_in_order``). The state, the durable-rules session and
the alerts are then those of the events having arrived in date order:

* the stored rows of the events applied again get the session operations they now made (so a
  session rebuilt from the stored operations, in date order, is the same);
* an alert raised again keeps its ``alert_id``, status and notes, its text and determinations
  brought up to date; a new one is added; an alert the events no longer raise in date order is
  closed with a note by the monitor (withdrawn), and opened again if a later replay raises it.

An event that makes a later stored one impossible (a member moved out before the income change
recorded for them) is refused, and nothing changes.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import orjson
from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from api.monitoring.repo import Accepted, MonitorRepository
from api.storage.models import AlertRecord, MonitorEventRecord
from engine.monitor.events import Event, parse_event, refuse
from engine.monitor.monitor import STATE_NEUTRAL, HouseholdState, Monitor, Outcome, check_registered
from engine.schema.model import InputError

_EV = MonitorEventRecord.__table__
_AL = AlertRecord.__table__
MONITOR = "jiuzhu-monitor"  # who withdraws or reopens an alert, in its notes
WITHDRAWN = "按日期顺序重新应用事件后，此预警不再成立（迟到事件 {late}）/ no longer raised once events are applied in date order"
RAISED_AGAIN = "按日期顺序重新应用事件后，此预警再次成立（迟到事件 {late}）/ raised again once events are applied in date order"

Applied = tuple[Event, str, int, list]  # an event applied to a household, its key, seq and session operations


@dataclass
class Rebuild:
    """A household applied again in date order: written with the transaction of its late event."""

    household_id: str
    late: str  # the key of the event that arrived out of order
    outcomes: list[Outcome]  # the events applied again, in date order (all, or the late one and those after it)
    stored: set[str] = field(default_factory=set)  # keys of events already committed (their rows are updated)

    @property
    def applied_again(self) -> int:
        """How many events were applied again (the late one among them)."""
        return len(self.outcomes)

    @property
    def replayed(self) -> int:
        """How many events dated after the late one were applied again after it."""
        keys = [o.key for o in self.outcomes]
        return len(keys) - keys.index(self.late) - 1


# What a request's late events may cost: events applied again, at most this many (about ten times the
# work of a request of 1,000 events in order). A late event beyond it is refused (`replay_budget`),
# to be sent again in another request; a replay from the command line has no such bound.
REPLAY_BUDGET = 10_000


@dataclass
class Budget:
    left: int = field(default_factory=lambda: REPLAY_BUDGET)


def is_late(ev: Event, state: HouseholdState | None) -> bool:
    return state is not None and state.last_date is not None and ev.date.isoformat() < state.last_date


def apply(
    mon: Monitor,
    ev: Event,
    state: HouseholdState | None,
    history: Callable[[], Iterable[list]] | None,
    applied: Callable[[], tuple[list[Applied], set[str]]],
    prefix: str = "",
    budget: Budget | None = None,
) -> tuple[Outcome, Rebuild | None]:
    """Apply ``ev``: as it is when it is not late, else the household again in date order.
    ``applied`` gives the household's events applied so far (stored and not yet committed), with their
    keys, seqs and session operations, and the keys of those stored. The outcome of a late event carries
    the household's final state and no alerts (the ``Rebuild`` holds them all)."""
    if not is_late(ev, state):
        return mon.process(ev, state, history, prefix), None
    assert state is not None
    check_registered(ev, state, prefix)  # a late event may not reach back before the registration
    if budget is not None and state.seq + 1 > budget.left:
        p = (prefix + ".") if prefix else ""
        raise refuse(
            p + "date",
            f"该事件早于已记录的事件，须按日期顺序重新应用该户的事件，但本次请求的重新应用量已达上限（{REPLAY_BUDGET}）：请另行报送",
            f"this event is dated before events already recorded and its household must be applied again in date order, "
            f"but this request has used up what it may apply again ({REPLAY_BUDGET} events): send it in another request",
            "replay_budget",
        )
    items, stored = applied()
    seq = state.seq + 1
    key = ev.event_id or f"{ev.household_id}:{seq}"
    items = sorted([*items, (ev, key, seq, None)], key=lambda t: (t[0].date, t[2]))
    at = next(i for i, t in enumerate(items) if t[1] == key)
    later = items[at + 1 :]
    if at > 0 and all(t[0].type in STATE_NEUTRAL for t in later):
        # Only ticks and hospitalisations after it (a daily tick, then an event reported a few days
        # late): the state before the late event is the present one, and the session that of the
        # stored operations before it; only the late event and those after it are applied again.
        base = copy.copy(state)
        base.last_date = max(t[0].date for t in items[:at]).isoformat()
        outcomes = mon.replay_in_order([t[:3] for t in items[at:]], key, prefix, (base, [t[3] for t in items[:at]]))
    else:
        outcomes = mon.replay_in_order([t[:3] for t in items], key, prefix)
    mine = outcomes[[o.key for o in outcomes].index(key)]
    final = outcomes[-1].state
    own = Outcome(final, key, seq, mine.ops, [], mine.evaluated, mine.changes)
    if budget is not None:
        budget.left -= len(outcomes)
    return own, Rebuild(ev.household_id, key, outcomes, stored)


def apply_all(
    mon: Monitor,
    evs: list[Event],
    state: HouseholdState,
    applied: Callable[[], tuple[list[Applied], set[str]]],
) -> Rebuild | None:
    """Several late events of one household (a replayed file of older events): the household applied
    again once with all of them, in date order, instead of once for each. None (nothing changed) when
    one of them, or a later stored event, does not apply: then they are applied one by one, which
    names the one refused. The rebuild's ``late`` is the earliest of them."""
    items, stored = applied()
    seq, new = state.seq, []
    for ev in evs:
        seq += 1
        new.append((ev, ev.event_id or f"{ev.household_id}:{seq}", seq, None))
    ordered = sorted([*items, *new], key=lambda t: (t[0].date, t[2]))
    try:
        outcomes = mon.replay_in_order([t[:3] for t in ordered], "")
    except InputError:
        return None
    first = next(t[1] for t in ordered if t[2] > state.seq)
    return Rebuild(evs[0].household_id, first, outcomes, stored)


def stored_events(repo: MonitorRepository, household_id: str, rebuilds: Iterable[Rebuild] = ()) -> list[Applied]:
    """A household's committed events as they were received (payloads re-read), with keys, seqs and
    operations (those of ``rebuilds`` not yet written, the latest, in place of the stored ones)."""
    newer = {o.key: o.ops for rb in rebuilds if rb.household_id == household_id for o in rb.outcomes}
    out = []
    for row in repo.events_of(household_id):
        obj = orjson.loads(row.payload_json)
        # ID numbers are masked in stored payloads; the monitor never keeps them in records anyway
        hh = obj.get("household")
        if isinstance(hh, dict) and isinstance(hh.get("members"), list):
            obj["household"] = {**hh, "members": [_no_id(m) for m in hh["members"]]}
        if isinstance(obj.get("member_record"), dict):
            obj["member_record"] = _no_id(obj["member_record"])
        # the ids as stored in their columns (the payload is scrubbed of anything like an ID number)
        obj["household_id"] = row.household_id
        if row.member_id is not None and "member" in obj:
            obj["member"] = row.member_id
        if isinstance(obj.get("household"), dict) and "household_id" in obj["household"]:
            obj["household"] = {**obj["household"], "household_id": row.household_id}
        try:
            ev = parse_event(obj, "", dt.date.max)
        except InputError as e:
            raise refuse(
                "date",
                f"该事件早于已记录的事件，但已记录的事件 {row.event_key} 无法重新读取，不能按日期顺序应用：{e.errors[0].message_zh}",
                f"this event is dated before events already recorded, and the recorded event {row.event_key!r} cannot be "
                f"read again to apply them in date order: {e.errors[0].message_en}",
                "cannot_reorder",
            ) from None
        ops = newer.get(row.event_key)
        out.append((ev, row.event_key, row.seq, ops if ops is not None else orjson.loads(row.ops_json)))
    return out


def _no_id(m):
    return {k: v for k, v in m.items() if k != "id_number"} if isinstance(m, dict) else m


def replace_uncommitted(rb: Rebuild, pending: Iterable[Accepted]) -> None:
    """Events of this transaction applied again: they are written with the operations they now made
    (their alerts are written with the rebuild's)."""
    by_key = {o.key: o for o in rb.outcomes}
    for a in pending:
        o = by_key.get(a.outcome.key)
        if o is not None and a.outcome.state.household_id == rb.household_id and a.outcome.key != rb.late:
            a.outcome = Outcome(o.state, o.key, a.outcome.seq, o.ops, [], o.evaluated, o.changes)


def write(conn: Connection, repo: MonitorRepository, rb: Rebuild, now: dt.datetime) -> tuple[int, list[dict]]:
    """Write a rebuild (after the transaction's events are inserted): update the stored events'
    operations, and the household's alerts. Returns how many alerts are new, and the alerts the
    late event's answer shows (those not stored before)."""
    for o in rb.outcomes:
        if o.key in rb.stored:
            conn.execute(
                update(_EV)
                .where(_EV.c.household_id == rb.household_id, _EV.c.event_key == o.key)
                .values(ops_json=orjson.dumps(o.ops).decode(), evaluated=o.evaluated)
            )
    raised: dict[str, dict] = {}
    for o in rb.outcomes:
        for a in o.alerts:
            raised.setdefault(a["key"], a)
    existing = {
        r.key: r
        for r in conn.execute(select(_AL.c.key, _AL.c.id, _AL.c.status, _AL.c.notes_json).where(_AL.c.household_id == rb.household_id))
    }
    keys = {o.key for o in rb.outcomes}
    new: list[dict] = []
    for k, a in raised.items():
        row = existing.get(k)
        if row is None:
            new.append(a)
            continue
        values = {
            "text": a["text"],
            "member_id": a["member"],
            "event_key": a["event_key"],
            "event_type": a["event_type"],
            "event_date": dt.date.fromisoformat(a["event_date"]),
            "determinations_json": orjson.dumps(a["determinations"]).decode(),
        }
        notes = orjson.loads(row.notes_json)
        if row.status == "closed" and notes and notes[-1].get("by") == MONITOR and notes[-1].get("withdrawn"):
            notes.append(_note("open", RAISED_AGAIN.format(late=rb.late), now))
            values.update(status="open", notes_json=orjson.dumps(notes).decode(), updated_at=now)
        conn.execute(update(_AL).where(_AL.c.key == k).values(**values))
    for k, row in existing.items():
        if k in raised or row.status == "closed":
            continue
        ek = conn.execute(select(_AL.c.event_key).where(_AL.c.key == k)).scalar_one()
        if ek not in keys:
            continue  # not raised by an event of the household (none such today): left as it is
        notes = [*orjson.loads(row.notes_json), {**_note("closed", WITHDRAWN.format(late=rb.late), now), "withdrawn": True}]
        conn.execute(update(_AL).where(_AL.c.key == k).values(status="closed", notes_json=orjson.dumps(notes).decode(), updated_at=now))
    if new:
        conn.execute(_AL.insert(), [repo.alert_row(a, now) for a in new])
    return len(new), new


def _note(status: str, note: str, now: dt.datetime) -> dict:
    return {"status": status, "note": note, "by": MONITOR, "at": now.isoformat(timespec="seconds").replace("+00:00", "Z")}


__all__ = ["Budget", "Rebuild", "apply", "apply_all", "is_late", "replace_uncommitted", "stored_events", "write"]

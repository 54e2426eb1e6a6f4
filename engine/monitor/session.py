"""durable-rules sessions, one per household, within a bounded pool.

The monitoring rules are compiled into one ruleset definition; each household
is a durable-rules session (its ``sid``) holding that household's facts.
durable-rules 2.0 keeps at most 1,024 sessions in one ruleset and reserves
about 100-150 kB for each, so the pool registers the same definition several
times (shards of ``SHARD_SIZE`` sessions) and keeps at most ``capacity``
households live, least recently used first out. Its ``delete_state`` can crash
the process (seen with sessions that had facts retracted), so a dropped
household's session is emptied (every fact retracted) and its durable-rules
session id (a slot) is given to the next household instead. A household whose session was
dropped (or that was never live in this process, e.g. after a restart) is
rebuilt from its stored events: every event row keeps the operations it made
on the session (facts asserted and retracted, milestones that fired), and
replaying them, with alerts suppressed, gives back the same session.

Durable-rules' own timers follow the wall clock; the monitor keeps time with a
``clock`` fact instead (the date of the latest event or tick), so that tests
and replays of past events drive time themselves and never sleep.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field

import durable_rules_engine as _dre
import orjson

from engine.schema.validate import Parsed

from .rules import MonitorBook, MonitorRule

SHARD_SIZE = 1000


class _Ruleset:
    """One registration of the monitoring ruleset in durable-rules' engine.

    durable-rules' Python host (``durable.engine.Host``) wraps each call in JSON
    encoding with the standard library, closures, and background dispatcher threads
    that look for ready actions on the wall clock; at a few facts per event the wrapping
    cost more than the matching. This drives the same engine module the host drives,
    in the same way: assert or retract a fact, then run the actions it made ready
    (``start_action_for_state`` / ``complete_and_start_action``), synchronously, here.
    """

    def __init__(self, name: str, book: MonitorBook, fire):
        self.handle = _dre.create_ruleset(name, orjson.dumps(book.definition()).decode())
        self.rules = {r.id: r for r in book.rules}
        self.fire = fire

    def _done(self, result) -> None:
        # (code, state handle); code 1: no rule reads the fact, 2: known already, 3: nothing to do
        if result[0] == 0:
            self._actions(result[1])

    def _actions(self, state_handle: int) -> None:
        started = _dre.start_action_for_state(self.handle, state_handle)
        if not started:
            return
        state_json, message = started[0], started[1]
        while True:
            for rule_id, facts in orjson.loads(message).items():
                self.fire(self.rules[rule_id], facts)
            _dre.update_state(self.handle, state_json)
            message = _dre.complete_and_start_action(self.handle, state_handle)
            if not message:
                return

    def assert_fact(self, fact: dict) -> None:
        self._done(_dre.assert_fact(self.handle, orjson.dumps(fact).decode()))

    def retract_fact(self, fact: dict) -> None:
        self._done(_dre.retract_fact(self.handle, orjson.dumps(fact).decode()))


@dataclass
class Session:
    """What this process knows of one household's session besides durable-rules' own state."""

    sid: str  # the household
    shard: _Ruleset  # the ruleset registration holding it
    slot: str  # its durable-rules session id (reused once the household is dropped)
    facts: dict[str, dict] = field(default_factory=dict)  # fid -> fact asserted (persistent kinds)
    fired: set[str] = field(default_factory=set)  # milestones already alerted
    milestones: set[str] = field(default_factory=set)  # fids of the milestone facts asserted
    dated: deque = field(default_factory=deque)  # (day, fid) of event and income facts, to let them go after retain_days
    ops: list = field(default_factory=list)  # operations of the event being processed
    parsed: Parsed | None = None  # the household as last validated here, to validate the next record faster


class SessionPool:
    def __init__(self, book: MonitorBook, capacity: int = 2000):
        self.book = book
        self.capacity = max(1, capacity)
        self.pending: list[tuple[MonitorRule, dict[str, dict]]] = []
        self.suppress = False
        self._shards: list[_Ruleset] = []
        self._free: list[tuple[_Ruleset, str]] = []  # emptied (shard, slot) pairs
        self._live: OrderedDict[str, Session] = OrderedDict()
        self.rebuilds = 0

    def _fire(self, rule: MonitorRule, facts: dict[str, dict]) -> None:
        if not self.suppress:
            self.pending.append((rule, facts))

    def _slot(self) -> tuple[_Ruleset, str]:
        if not self._free:
            shard = _Ruleset(f"jiuzhu_monitor_{len(self._shards)}", self.book, self._fire)
            self._shards.append(shard)
            self._free = [(shard, f"s{i}") for i in range(SHARD_SIZE - 1, -1, -1)]
        return self._free.pop()
    def __len__(self) -> int:
        return len(self._live)

    def get(self, sid: str) -> Session | None:
        s = self._live.get(sid)
        if s is not None:
            self._live.move_to_end(sid)
        return s

    def open(self, sid: str, history: Iterable[list] = ()) -> Session:
        """The live session of ``sid``, created and fed ``history`` (stored op lists) if not live."""
        s = self.get(sid)
        if s is not None:
            return s
        while len(self._live) >= self.capacity:
            self.drop(next(iter(self._live)))
        shard, slot = self._slot()
        s = Session(sid, shard, slot)
        self._live[sid] = s
        replayed = False
        self.suppress = True
        try:
            for ops in history:
                replayed = True
                self.replay(s, ops)
        finally:
            self.suppress = False
        s.ops = []
        if replayed:
            self.rebuilds += 1
        return s

    def drop(self, sid: str) -> None:
        s = self._live.pop(sid, None)
        if s is None:
            return
        for fid in list(s.facts):
            self.retract(s, fid, persistent=False)  # not recorded: the household's stored ops stay as they are
        self._free.append((s.shard, s.slot))

    def clear(self) -> None:
        for sid in list(self._live):
            self.drop(sid)

    # -- operations (each recorded, so that the session can be rebuilt) -------------
    def assert_fact(self, s: Session, fact: dict, persistent: bool = True) -> None:
        s.shard.assert_fact({**fact, "sid": s.slot})
        if persistent:
            s.facts[fact["id"]] = fact
            s.ops.append(["a", fact])
            if fact["kind"] in ("event", "income"):
                s.dated.append((fact["day"], fact["id"]))

    def retract(self, s: Session, fid: str, persistent: bool = True) -> None:
        s.shard.retract_fact({"sid": s.slot, "id": fid})
        if persistent:
            s.facts.pop(fid, None)
            s.ops.append(["r", fid])

    def mark_fired(self, s: Session, fid: str) -> None:
        s.fired.add(fid)
        s.ops.append(["f", fid])

    def replay(self, s: Session, ops: list) -> None:
        for op in ops:
            if op[0] == "a":
                self.assert_fact(s, op[1])
                if op[1]["kind"] == "milestone":
                    s.milestones.add(op[1]["id"])
            elif op[0] == "r":
                self.retract(s, op[1])
                s.milestones.discard(op[1])
            elif op[0] == "f":
                s.fired.add(op[1])
        s.ops = []

    def take(self) -> list[tuple[MonitorRule, dict[str, dict]]]:
        if not self.pending:
            return []
        out = list(self.pending)
        self.pending.clear()
        return out

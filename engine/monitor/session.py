"""durable-rules sessions, one per household, within a bounded pool.

The monitoring rules are compiled into one ruleset definition; each household
is a durable-rules session (its ``sid``) holding that household's facts.
durable-rules 2.0 keeps at most 1,024 sessions in one ruleset and reserves
about 100-150 kB for each, so the pool registers the same definition several
times (shards of ``SHARD_SIZE`` sessions) and keeps at most ``capacity``
households live, least recently used first out. A household whose session was
dropped (or that was never live in this process, e.g. after a restart) is
rebuilt from its stored events: every event row keeps the operations it made
on the session (facts asserted and retracted, milestones that fired), and
replaying them, with alerts suppressed, gives back the same session.

Durable-rules' own timers follow the wall clock; the monitor keeps time with a
``clock`` fact instead (the date of the latest event or tick), so that tests
and replays of past events drive time themselves and never sleep.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from durable import engine as durable

from .rules import MonitorBook, MonitorRule

SHARD_SIZE = 1000


class _Host(durable.Host):
    """A durable-rules host without its background dispatch threads: every action runs
    synchronously inside the assert that triggered it (nothing is left for a timer thread)."""

    def _run(self) -> None:  # the wall-clock dispatchers are not used
        pass


@dataclass
class Session:
    """What this process knows of one household's session besides durable-rules' own state."""

    sid: str
    shard: str
    facts: dict[str, dict] = field(default_factory=dict)  # fid -> fact asserted (persistent kinds)
    fired: set[str] = field(default_factory=set)  # milestones already alerted
    ops: list = field(default_factory=list)  # operations of the event being processed


class SessionPool:
    def __init__(self, book: MonitorBook, capacity: int = 2000):
        self.book = book
        self.capacity = max(1, capacity)
        self.pending: list[tuple[MonitorRule, dict[str, dict]]] = []
        self.suppress = False
        self.host = _Host()
        self._shards: list[str] = []
        self._load: dict[str, int] = {}
        self._live: OrderedDict[str, Session] = OrderedDict()
        self.rebuilds = 0

    def _action(self, rule: MonitorRule) -> Callable:
        aliases = [p.alias for p in rule.patterns]
        pending = self.pending

        def run(c) -> None:
            if not self.suppress:
                pending.append((rule, {a: dict(getattr(c, a)._d) for a in aliases}))

        return run

    def _shard(self) -> str:
        for name in self._shards:
            if self._load[name] < SHARD_SIZE:
                return name
        name = f"jiuzhu_monitor_{len(self._shards)}"
        self.host.register_rulesets({name: self.book.definition(self._action)})
        self._shards.append(name)
        self._load[name] = 0
        return name

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
        shard = self._shard()
        self._load[shard] += 1
        s = Session(sid, shard)
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
        self.host.delete_state(s.shard, sid)
        self._load[s.shard] -= 1

    def clear(self) -> None:
        for sid in list(self._live):
            self.drop(sid)

    # -- operations (each recorded, so that the session can be rebuilt) -------------
    def assert_fact(self, s: Session, fact: dict, persistent: bool = True) -> None:
        fact["sid"] = s.sid
        with contextlib.suppress(durable.MessageNotHandledException, durable.MessageObservedException):
            self.host.assert_fact(s.shard, fact)  # not handled: no rule reads this fact
        if persistent:
            s.facts[fact["id"]] = fact
            s.ops.append(["a", fact])

    def retract(self, s: Session, fid: str, persistent: bool = True) -> None:
        with contextlib.suppress(durable.MessageNotHandledException, durable.MessageObservedException):
            self.host.retract_fact(s.shard, {"sid": s.sid, "id": fid})
        if persistent:
            s.facts.pop(fid, None)
            s.ops.append(["r", fid])

    def mark_fired(self, s: Session, fid: str) -> None:
        s.fired.add(fid)
        s.ops.append(["f", fid])

    def replay(self, s: Session, ops: list) -> None:
        for op in ops:
            if op[0] == "a":
                self.assert_fact(s, dict(op[1]))
            elif op[0] == "r":
                self.retract(s, op[1])
            elif op[0] == "f":
                s.fired.add(op[1])
        s.ops = []

    def take(self) -> list[tuple[MonitorRule, dict[str, dict]]]:
        out = list(self.pending)
        self.pending.clear()
        return out

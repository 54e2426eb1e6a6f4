"""Turns of the monitor: every caller's events interleave, however large one request is.

One monitor applies every worker's events. Applied whole, one request of 1,000
registrations held it for 25 s and every other caller waited. So requests are
applied a slice at a time (``slice_events``, default 20), round-robin: each turn
applies the next slice of every active request, then commits, in one transaction,
the requests that have no events left, and answers them. A single event sent while
a large request is being applied is answered after one turn, not after the whole.

A request stays all or nothing, as before: its events are committed together, once
all are applied (a failure answers the whole request with an error and commits
none of it). To keep that true while others go on, a request holds its households
from its admission to its commit: a later request with an event for one of them
waits (in arrival order) until the holder has been committed, so nothing is ever
applied on top of events that might still fail.
"""

from __future__ import annotations

from collections import deque
from typing import Any

SLICE_EVENTS = 20  # a registration takes about 25 ms to apply: about half a second per turn at most per request


class MonitorTurns:
    """Turns over an ``api.monitoring.service.MonitorService`` (``advance``, ``commit``) and its ``Request``s;
    not imported from there, since its embedded monitor runs on these turns."""

    def __init__(self, service: Any, slice_events: int = SLICE_EVENTS):
        self.service = service
        self.slice_events = max(1, slice_events)
        self.waiting: deque[tuple[Any, Any]] = deque()  # (Request, token)
        self.active: list[tuple[Any, Any]] = []
        self.held: dict[str, Any] = {}  # household -> the admitted, uncommitted request applying to it
        self.turns = 0

    @property
    def busy(self) -> bool:
        return bool(self.waiting or self.active)

    def add(self, req: Any, token: Any) -> None:
        """Queue ``req``; ``token`` comes back with it once it is answered."""
        self.waiting.append((req, token))

    def turn(self) -> list[tuple[Any, Any]]:
        """Admit what may start, apply one slice of every active request, commit the requests that are
        complete; returns those (each with its ``results`` or its ``error``)."""
        self._admit()
        self.turns += 1
        for req, _token in self.active:
            if not req.finished:
                self.service.advance(req, self.slice_events)
        done = [(r, t) for r, t in self.active if r.finished]
        if not done:
            return []
        self.service.commit([r for r, _t in done if r.error is None])
        self.active = [(r, t) for r, t in self.active if not r.finished]
        for r, _t in done:
            for h in r.households():
                if self.held.get(h) is r:
                    del self.held[h]
        return done

    def _admit(self) -> None:
        # Arrival order per household: a request that must wait also holds back later ones for its households.
        blocked: set[str] = set()
        still: deque[tuple[Any, Any]] = deque()
        for req, token in self.waiting:
            hh = req.households()
            if hh & blocked or any(h in self.held for h in hh):
                blocked |= hh
                still.append((req, token))
                continue
            for h in hh:
                self.held[h] = req
            self.active.append((req, token))
        self.waiting = still

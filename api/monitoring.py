"""The monitor behind POST /v1/events: events in order, per household, committed before the answer.

One ``MonitorService`` owns the monitoring state of a database: the live
durable-rules sessions and the households' states. ``jiuzhu serve`` runs it in
a process of its own (``api/monitor_process.py``) that every worker sends its
events to, so that one household's events are applied one after another
whichever worker received them; embedded (tests, one process) it runs in a
thread under a lock. ``handle`` takes every request that has arrived, applies
their events, and writes them all in one transaction (group commit): an event
and the alerts it raised are committed together, and only then answered.

After a restart (or when a household's session was dropped to bound memory)
the session is rebuilt from the household's stored events. An event that
carries an ``event_id`` already stored for its household is not applied twice:
the answer is the stored one (``"status": "duplicate"``).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

import orjson
from sqlalchemy.exc import IntegrityError

from engine.model import InputError
from engine.monitor.events import Event
from engine.monitor.monitor import HouseholdState, Monitor

from . import monitor_order as order
from .db import writing
from .monitor_repo import Accepted, MonitorRepository

log = logging.getLogger("jiuzhu.api.monitor")


@dataclass
class Request:
    """One POST /v1/events: its events (validated) and who sent them."""

    events: list[Event]
    caller_key_id: str
    caller_name: str
    results: list[dict] = field(default_factory=list)
    error: str | None = None
    replay_budget: order.Budget = field(default_factory=order.Budget)  # what its late events may cost


def alert_out(a: dict | object) -> dict:
    """An alert as the API shows it, from a monitor alert dict or a stored row."""
    if isinstance(a, dict):
        return {
            "alert_id": None,  # filled in once committed
            "key": a["key"],
            "household_id": a["household_id"],
            "locality": a["locality"],
            "rule": a["rule"],
            "title": a["title"],
            "level": a["level"],
            "level_zh": a["level_zh"],
            "text": a["text"],
            "action": a["action"],
            "citation": a["citation"],
            "member": a["member"],
            "event_key": a["event_key"],
            "event_type": a["event_type"],
            "event_date": a["event_date"],
            "determinations": a["determinations"],
        }
    from engine.monitor.rules import LEVELS

    from .records import iso

    m = a._mapping
    return {
        "alert_id": m["id"],
        "key": m["key"],
        "household_id": m["household_id"],
        "locality": m["locality"],
        "rule": m["rule"],
        "title": m["title"],
        "level": m["level"],
        "level_zh": LEVELS.get(m["level"], m["level"]),
        "text": m["text"],
        "action": m["action"],
        "citation": m["citation"],
        "member": m["member_id"],
        "event_key": m["event_key"],
        "event_type": m["event_type"],
        "event_date": m["event_date"].isoformat(),
        "determinations": orjson.loads(m["determinations_json"]),
        "status": m["status"],
        "notes": orjson.loads(m["notes_json"]),
        "created_at": iso(m["created_at"]),
        "updated_at": iso(m["updated_at"]),
    }


class MonitorService:
    def __init__(self, monitor: Monitor, repo: MonitorRepository):
        self.monitor = monitor
        self.repo = repo
        self._states: OrderedDict[str, HouseholdState] = OrderedDict()
        self.lock = threading.Lock()  # embedded use: one request applies at a time
        self.transactions = 0

    # -- state of a household (cached alongside its live session) ----------------------
    def _state(self, hid: str) -> HouseholdState | None:
        st = self._states.get(hid)
        if st is not None and self.monitor.pool.get(hid) is not None:
            self._states.move_to_end(hid)
            return st
        st = self.repo.household(hid)
        if st is not None:
            self._remember(st)
        return st

    def _remember(self, st: HouseholdState) -> None:
        self._states[st.household_id] = st
        self._states.move_to_end(st.household_id)
        while len(self._states) > self.monitor.pool.capacity:
            self._states.popitem(last=False)

    def _forget(self, hids) -> None:
        for h in hids:
            self._states.pop(h, None)
            self.monitor.drop(h)

    # -- many requests, one transaction ----------------------------------------------------
    def handle(self, requests: list[Request]) -> None:
        """Apply every request's events in order and commit them together; fills each ``results``."""
        try:
            self._handle(requests)
        except IntegrityError:
            # Another writer (a replay into the same database) got there first: start again from what is stored.
            log.warning("monitor tables changed underneath; reloading the households concerned")
            self._forget({e.household_id for r in requests for e in r.events})
            for r in requests:
                r.results, r.error, r.replay_budget = [], None, order.Budget()
            try:
                self._handle(requests)
            except Exception as e:
                self._fail(requests, e)
        except Exception as e:
            self._fail(requests, e)

    def _fail(self, requests: list[Request], e: Exception) -> None:
        log.exception("could not record %d monitoring request(s)", len(requests), exc_info=e)
        self._forget({ev.household_id for r in requests for ev in r.events})
        for r in requests:
            r.results = []
            r.error = f"{type(e).__name__}: {e}"

    def _handle(self, requests: list[Request]) -> None:
        mon = self.monitor
        accepted: list[Accepted] = []
        touched: dict[str, HouseholdState] = {}
        seen_keys: dict[tuple[str, str], dict] = {}
        uncommitted: dict[str, list[list]] = {}
        mine: dict[str, list[tuple[Event, Accepted]]] = {}  # this transaction's events, per household
        reordered: set[str] = set()  # households applied again in date order: their ops are all in `uncommitted`
        rebuilds: list[tuple[order.Rebuild, dict]] = []
        for req in requests:
            for i, ev in enumerate(req.events):
                hid = ev.household_id
                if ev.event_id is not None:
                    prior = seen_keys.get((hid, ev.event_id))
                    if prior is None:
                        row = self.repo.event_by_key(hid, ev.event_id)
                        if row is not None:
                            prior = self._stored_result(row)
                    if prior is not None:
                        req.results.append({**prior, "index": i, "status": "duplicate"})
                        continue
                st = touched.get(hid) or self._state(hid)
                # a session dropped meanwhile is rebuilt from the stored events and those of this transaction
                history = lambda hid=hid: [*(() if hid in reordered else self.repo.event_ops(hid)), *uncommitted.get(hid, ())]  # noqa: E731
                try:
                    out, rebuild = order.apply(mon, ev, st, history, lambda hid=hid: self._applied(hid, mine, rebuilds),
                                               f"events[{i}]" if len(req.events) > 1 else "", req.replay_budget)
                except InputError as e:
                    req.results.append({"index": i, "status": "refused", "household_id": hid, "errors": e.to_dict()["errors"]})
                    continue
                touched[hid] = out.state
                if rebuild is not None:
                    order.replace_uncommitted(rebuild, [a for _e, a in mine.get(hid, ())])
                    uncommitted[hid] = [o.ops for o in rebuild.outcomes]
                    reordered.add(hid)
                else:
                    uncommitted.setdefault(hid, []).append(out.ops)
                acc = Accepted(out, st is None, ev.raw, ev.member, ev.type, ev.date, req.caller_key_id, req.caller_name)
                accepted.append(acc)
                mine.setdefault(hid, []).append((ev, acc))
                res = {
                    "index": i,
                    "status": "recorded",
                    "household_id": hid,
                    "event_key": out.key,
                    "seq": out.seq,
                    "type": ev.type,
                    "date": ev.date.isoformat(),
                    "evaluated": out.evaluated,
                    "alerts": [alert_out(a) for a in out.alerts],
                }
                if rebuild is not None:
                    res["replayed"] = rebuild.replayed
                    rebuilds.append((rebuild, res))
                if ev.event_id is not None:
                    seen_keys[(hid, ev.event_id)] = res
                req.results.append(res)
        if not accepted:
            return
        now = dt.datetime.now(dt.UTC)
        try:
            with writing(self.repo.engine) as conn, conn.begin():
                self.repo.write(conn, accepted, mon.version, now)
                for rebuild, res in rebuilds:
                    _n, shown = order.write(conn, self.repo, rebuild, now)
                    res["alerts"] = [*res["alerts"], *(alert_out(a) for a in shown)]
        except BaseException:
            self._forget(touched)
            raise
        self.transactions += 1
        for st in touched.values():
            self._remember(st)
        keys = [a["key"] for r in requests for res in r.results if res["status"] == "recorded" for a in res["alerts"]]
        if keys:
            ids = self.repo.alert_ids(keys)
            for r in requests:
                for res in r.results:
                    for a in res.get("alerts", ()):
                        if a.get("alert_id") is None:
                            a["alert_id"] = ids.get(a["key"])

    def _applied(self, hid: str, mine: dict[str, list[tuple[Event, Accepted]]], rebuilds: list) -> tuple[list, set[str]]:
        """A household's events applied so far: those stored, then this transaction's."""
        stored = order.stored_events(self.repo, hid, (rb for rb, _res in rebuilds))
        keys = {t[1] for t in stored}
        return [*stored, *((e, a.outcome.key, a.outcome.seq, a.outcome.ops) for e, a in mine.get(hid, ()))], keys

    def _stored_result(self, row) -> dict:
        m = row._mapping
        alerts = self.repo.alerts_of_event(m["household_id"], m["event_key"])
        return {
            "household_id": m["household_id"],
            "event_key": m["event_key"],
            "seq": m["seq"],
            "type": m["type"],
            "date": m["date"].isoformat(),
            "evaluated": m["evaluated"],
            "alerts": [alert_out(a) for a in alerts],
        }

    def close(self) -> None:
        self.monitor.pool.clear()


class LocalMonitor:
    """Embedded use (tests, one process): the service runs in a thread, one request at a time."""

    def __init__(self, make_service):
        self._make = make_service
        self._service: MonitorService | None = None
        self._init = threading.Lock()

    @property
    def service(self) -> MonitorService:
        with self._init:
            if self._service is None:  # the monitor's rule book loads on the first event, not at start
                self._service = self._make()
            return self._service

    async def submit(self, raw_events: list[dict], caller) -> list[dict]:
        from fastapi.concurrency import run_in_threadpool

        from engine.monitor.events import parse_event, parse_events

        def run() -> Request:
            events = parse_events(raw_events) if len(raw_events) != 1 else [parse_event(raw_events[0])]
            req = Request(events, caller.key_id, caller.name)
            svc = self.service
            with svc.lock:
                svc.handle([req])
            return req

        req = await run_in_threadpool(run)
        if req.error is not None:
            raise RuntimeError(req.error)
        return req.results

    async def aclose(self) -> None:
        if self._service is not None:
            self._service.close()

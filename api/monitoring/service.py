"""The monitor behind POST /v1/events: events in order, per household, committed before the answer.

One ``MonitorService`` owns the monitoring state of a database: the live
durable-rules sessions and the households' states. ``jiuzhu serve`` runs it in
a process of its own (``api/processes/monitor.py``) that every worker sends its
events to, so that one household's events are applied one after another
whichever worker received them; embedded (tests, one process) it runs in a
thread of its own. Requests are applied in turns (``api/monitoring/turns.py``:
``advance`` a slice of each, ``commit`` those complete, in one transaction), so
a large request does not hold up the others; ``handle`` applies requests whole
and commits them together. An event and the alerts it raised are committed
together, a request's events all at once, and only then answered.

After a restart (or when a household's session was dropped to bound memory)
the session is rebuilt from the household's stored events. An event that
carries an ``event_id`` already stored for its household is not applied twice:
the answer is the stored one (``"status": "duplicate"``).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import queue
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

import anyio.to_thread
import orjson
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError

from api.auth.keys import out_of_scope
from api.core.errors import Unrecordable, error_item, is_bad_data
from api.evaluation.records import iso
from api.monitoring import order
from api.monitoring.repo import Accepted, MonitorRepository
from api.monitoring.turns import SLICE_EVENTS, MonitorTurns
from api.storage.db import writing
from engine.monitor.events import Event, parse_event, parse_events, pseudonymous
from engine.monitor.monitor import HouseholdState, Monitor
from engine.monitor.rules import LEVELS
from engine.policies.localities import NATIONAL, covers, is_valid
from engine.schema.model import InputError

log = logging.getLogger("jiuzhu.api.monitor")


@dataclass
class _Applied:
    """What applying a request's events has produced so far, not yet committed."""

    accepted: list[Accepted] = field(default_factory=list)
    touched: dict[str, HouseholdState] = field(default_factory=dict)
    seen_keys: dict[tuple[str, str], dict] = field(default_factory=dict)
    uncommitted: dict[str, list[list]] = field(default_factory=dict)
    mine: dict[str, list[tuple[Event, Accepted]]] = field(default_factory=dict)  # these events, per household
    reordered: set[str] = field(default_factory=set)  # households applied again in date order: their ops are all in `uncommitted`
    rebuilds: list[tuple[order.Rebuild, dict]] = field(default_factory=list)


@dataclass
class Request:
    """One POST /v1/events: its events (validated) and who sent them."""

    events: list[Event]
    caller_key_id: str
    caller_name: str
    results: list[dict] = field(default_factory=list)
    error: str | None = None
    scope: str = NATIONAL  # the caller's locality scope (auth.Scope.code)
    pseudonymous: bool = False  # its ids already carry masked ID numbers (``pseudonymous``)
    done: int = 0  # events applied so far (a large request is applied a slice at a time, api/monitoring/turns.py)
    applied: _Applied = field(default_factory=_Applied)
    replay_budget: order.Budget = field(default_factory=order.Budget)  # what its late events may cost

    @property
    def finished(self) -> bool:
        return self.error is not None or self.done >= len(self.events)

    def households(self) -> set[str]:
        return {e.household_id for e in self.events}

    def reset(self) -> None:
        self.results, self.error, self.done, self.applied = [], None, 0, _Applied()
        self.replay_budget = order.Budget()


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
        for r in requests:
            self.pseudonymise(r)
        try:
            self._apply_all(requests)
        except Exception as e:
            self._fail(requests, e)
            return
        self.commit(requests)

    def pseudonymise(self, req: Request) -> None:
        """Mask and tag the ID numbers in ``req``'s ids, once, before the monitor sees them (and before the
        turns reserve its households, which are then known by their pseudonyms)."""
        if not req.pseudonymous:
            req.events = [pseudonymous(e, self.repo.id_secret) for e in req.events]
            req.pseudonymous = True

    def _apply_all(self, requests: list[Request]) -> None:
        shared = _Applied()  # a later request sees what an earlier one did to the same household
        for req in requests:
            req.applied = shared
            self._apply(req, None)

    def advance(self, req: Request, limit: int) -> None:
        """Apply up to ``limit`` more of ``req``'s events, uncommitted (``commit`` writes them once all
        are applied). Until then no other request may apply events to its households (``MonitorTurns``)."""
        self.pseudonymise(req)
        try:
            self._apply(req, limit)
        except Exception as e:
            self._fail([req], e)

    def commit(self, requests: list[Request]) -> None:
        """Write what ``requests`` applied in one transaction (group commit); each answered or failed.

        One request never fails another: when the group's transaction fails (other than by the
        database being unreachable) its requests are applied and committed again one at a time, and
        only a request that fails alone fails; refused (422) when the database refused its data."""
        try:
            self._commit(requests)
            return
        except IntegrityError:
            # Another writer (a replay into the same database) got there first: start again from what is stored.
            log.warning("monitor tables changed underneath; reloading the households concerned")
            self._restart(requests)
            try:
                self._apply_all(requests)
                self._commit(requests)
                return
            except Exception as e:
                error = e
        except Exception as e:
            error = e
        if len(requests) == 1 or isinstance(error, OperationalError | InterfaceError):
            self._fail(requests, error)
            return
        log.warning("a group of %d monitoring requests failed (%s: %s); applying them one at a time", len(requests), type(error).__name__, error)
        self._restart(requests)
        for r in requests:
            try:
                self._apply_all([r])
                self._commit([r])
            except Exception as e:
                self._fail([r], e)

    def _restart(self, requests: list[Request]) -> None:
        self._forget({e.household_id for r in requests for e in r.events})
        for r in requests:
            r.reset()

    def _fail(self, requests: list[Request], e: Exception) -> None:
        self._forget({ev.household_id for r in requests for ev in r.events})
        if len(requests) == 1 and is_bad_data(e):
            (r,) = requests
            log.warning("a monitoring request holds a value the database refused: %s: %s", type(e).__name__, e)
            err = Unrecordable().api_error()
            item = error_item(err.field, err.zh, err.en, err.code)
            r.results = [{"index": i, "status": "refused", "household_id": ev.household_id, "errors": [item]} for i, ev in enumerate(r.events)]
            r.error = None
            # answered whole: nothing of it is applied any further, nor committed
            r.done, r.applied = len(r.events), _Applied()
            return
        log.exception("could not record %d monitoring request(s)", len(requests), exc_info=e)
        for r in requests:
            r.results = []
            r.error = f"{type(e).__name__}: {e}"

    def _apply(self, req: Request, limit: int | None) -> None:
        mon = self.monitor
        w = req.applied
        end = len(req.events) if limit is None else min(len(req.events), req.done + limit)
        for i in range(req.done, end):
            ev = req.events[i]
            req.done = i + 1
            hid = ev.household_id
            if req.scope != NATIONAL:  # before the duplicate check: a stored answer is the household's too
                errs = self._scope_refusal(
                    req.scope, ev, w.touched.get(hid) or self._state(hid), f"events[{i}]" if len(req.events) > 1 else ""
                )
                if errs is not None:
                    req.results.append({"index": i, "status": "refused", "household_id": hid, "errors": errs})
                    continue
            if ev.event_id is not None:
                prior = w.seen_keys.get((hid, ev.event_id))
                if prior is None:
                    row = self.repo.event_by_key(hid, ev.event_id)
                    if row is not None:
                        prior = self._stored_result(row)
                if prior is not None:
                    req.results.append({**prior, "index": i, "status": "duplicate"})
                    continue
            st = w.touched.get(hid) or self._state(hid)
            # a session dropped meanwhile is rebuilt from the stored events and those applied but not yet committed
            history = lambda hid=hid: [*(() if hid in w.reordered else self.repo.event_ops(hid)), *w.uncommitted.get(hid, ())]  # noqa: E731
            prefix = f"events[{i}]" if len(req.events) > 1 else ""
            try:
                out, rebuild = order.apply(mon, ev, st, history, lambda hid=hid: self._applied(hid, w), prefix, req.replay_budget)
            except InputError as e:
                req.results.append({"index": i, "status": "refused", "household_id": hid, "errors": e.to_dict()["errors"]})
                continue
            except (TypeError, ValueError, ArithmeticError) as e:
                # A value validation let through that the rules engine cannot hold (its session was dropped
                # and is rebuilt from the stored events): refuse this event, not the group.
                log.exception("event %d of a request could not be processed", i)
                item = error_item(prefix or "(event)", "事件中的值无法处理，未记录", f"the event holds a value that cannot be processed ({type(e).__name__}): nothing recorded", "unprocessable")
                req.results.append({"index": i, "status": "refused", "household_id": hid, "errors": [item]})
                continue
            w.touched[hid] = out.state
            if rebuild is not None:
                order.replace_uncommitted(rebuild, [a for _e, a in w.mine.get(hid, ())])
                w.uncommitted[hid] = [o.ops for o in rebuild.outcomes]
                w.reordered.add(hid)
            else:
                w.uncommitted.setdefault(hid, []).append(out.ops)
            acc = Accepted(out, st is None, ev.raw, ev.member, ev.type, ev.date, req.caller_key_id, req.caller_name)
            w.accepted.append(acc)
            w.mine.setdefault(hid, []).append((ev, acc))
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
                w.rebuilds.append((rebuild, res))
            if ev.event_id is not None:
                w.seen_keys[(hid, ev.event_id)] = res
            req.results.append(res)

    def _commit(self, requests: list[Request]) -> None:
        applied = list({id(r.applied): r.applied for r in requests}.values())  # requests of ``handle`` share one
        accepted = [a for w in applied for a in w.accepted]
        if not accepted:
            return
        touched = {h: st for w in applied for h, st in w.touched.items()}
        now = dt.datetime.now(dt.UTC)
        try:
            with writing(self.repo.engine) as conn, conn.begin():
                self.repo.write(conn, accepted, self.monitor.version, now)
                for rebuild, res in (rb for w in applied for rb in w.rebuilds):
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

    def _scope_refusal(self, scope: str, ev: Event, st: HouseholdState | None, prefix: str) -> list[dict] | None:
        """The errors refusing ``ev`` to a caller scoped ``scope``, or None when it may proceed.

        A register event for a locality outside the scope is refused naming that field (the
        caller wrote it). A household registered outside the scope is answered as the monitor
        answers for one it does not know (a register event: as a change of locality, since the
        household id is taken), never with its events or alerts: existence does not leak."""
        if ev.type == "register":
            hh = ev.data.get("household")
            loc = hh.get("locality") if isinstance(hh, dict) else None
            if is_valid(loc) and not covers(scope, loc):  # a malformed code gets the monitor's own 422
                e = out_of_scope(f"{prefix}.household.locality" if prefix else "household.locality")
                return [error_item(e.field, e.zh, e.en, e.code)]
        if st is None or covers(scope, st.locality):
            return None
        try:
            # the monitor's own refusal, word for word: of an unknown household, or of a moved one
            self.monitor.process(ev, None if ev.type != "register" else st, None, prefix)
        except InputError as e:
            return e.to_dict()["errors"]
        raise AssertionError("an event for a household outside the caller's scope was not refused")

    def _applied(self, hid: str, w: _Applied) -> tuple[list, set[str]]:
        """A household's events applied so far: those stored, then those applied but not yet committed."""
        stored = order.stored_events(self.repo, hid, (rb for rb, _res in w.rebuilds))
        keys = {t[1] for t in stored}
        return [*stored, *((e, a.outcome.key, a.outcome.seq, a.outcome.ops) for e, a in w.mine.get(hid, ()))], keys

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
    """Embedded use (tests, one process): the service runs in a thread of its own, in turns as in the
    monitor process (api/monitoring/turns.py)."""

    def __init__(self, make_service, slice_events: int = SLICE_EVENTS):
        self._make = make_service
        self._service: MonitorService | None = None
        self._init = threading.Lock()
        self.slice_events = slice_events
        self.turns: MonitorTurns | None = None
        self._q: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    @property
    def service(self) -> MonitorService:
        with self._init:
            if self._service is None:  # the monitor's rule book loads on the first event, not at start
                self._service = self._make()
            return self._service

    async def submit(self, raw_events: list[dict], caller) -> list[dict]:
        def parse() -> Request:
            events = parse_events(raw_events) if len(raw_events) != 1 else [parse_event(raw_events[0])]
            req = Request(events, caller.key_id, caller.name, scope=caller.scope.code)
            self.service.pseudonymise(req)  # the service loads here, in a pool thread, not holding up the turns
            return req

        req = await anyio.to_thread.run_sync(parse)
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        with self._init:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="jiuzhu-monitor", daemon=True)
                self._thread.start()
        self._q.put((req, (fut, loop)))
        req = await fut
        if req.error is not None:
            raise RuntimeError(req.error)
        return req.results

    def _run(self) -> None:
        turns = self.turns = MonitorTurns(self.service, self.slice_events)
        stop = False
        while not (stop and not turns.busy):
            if not turns.busy:
                item = self._q.get()
                if item is _STOP:
                    break
                turns.add(*item)
            while True:
                try:
                    item = self._q.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stop = True
                else:
                    turns.add(*item)
            for req, (fut, loop) in turns.turn():
                with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                    loop.call_soon_threadsafe(_settle, fut, req)

    async def aclose(self) -> None:
        if self._thread is not None:
            self._q.put(_STOP)
            await asyncio.to_thread(self._thread.join, 60)
        if self._service is not None:
            self._service.close()


_STOP = object()


def _settle(fut: asyncio.Future, req: Request) -> None:
    if not fut.done():
        fut.set_result(req)

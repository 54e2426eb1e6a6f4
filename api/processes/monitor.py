"""The monitor process of `jiuzhu serve`: one process applies every worker's events.

A household's events must be applied one after another, and its durable-rules
session lives in one process's memory: so workers validate an event, then hand
it to this process over a Unix socket and await the answer, which comes after
the commit. Everything that arrived while a transaction was being written goes
into the next one (group commit), as in the writer process; both are built on
api/processes/sidecar.py.
"""

from __future__ import annotations

import asyncio
import logging

from api.core.config import Settings
from api.core.logmask import configure_logging
from api.monitoring.repo import MonitorRepository
from api.monitoring.service import MonitorService, Request
from api.monitoring.turns import SLICE_EVENTS, MonitorTurns
from api.processes.sidecar import GroupServer, RemoteCaller, serve, supervised
from api.storage.db import make_engine
from api.storage.id_secret import load_id_secret
from engine.monitor.events import parse_event, parse_events
from engine.monitor.monitor import Monitor
from engine.schema.model import InputError

log = logging.getLogger("jiuzhu.api.monitor")


class RemoteMonitor(RemoteCaller):
    """The workers' side: ``submit(events, caller)`` -> per-event results, after the commit."""

    def __init__(self, path: str):
        super().__init__(path, "monitor", log)

    async def submit(self, raw_events: list[dict], caller) -> list[dict]:
        return await self.call(raw_events, caller.key_id, caller.name, caller.scope.code)


class _Server(GroupServer):
    """Requests are applied in turns (api/monitoring/turns.py): after each turn the loop reads the frames
    that arrived meanwhile, so a small request sent during a large one is answered after one turn."""

    def __init__(self, service, slice_events: int):
        super().__init__()
        self.service = service
        self.turns = MonitorTurns(service, slice_events)

    def receive(self, transport: asyncio.Transport, seq: int, args: tuple) -> None:
        raw, key_id, name, scope = args
        try:
            events = parse_events(raw) if len(raw) != 1 else [parse_event(raw[0])]
        except InputError as e:  # refused whole, at once: nothing to apply
            self.reply(transport, seq, True, [{"index": None, "status": "refused", "errors": e.to_dict()["errors"]}])
            return
        req = Request(events, key_id, name, scope=scope)
        self.service.pseudonymise(req)  # before the turns reserve its households
        self.add(transport, seq, (req,))

    def flush(self) -> None:
        self.scheduled = False
        items, self.pending = self.pending, []
        for transport, seq, (req,) in items:
            self.turns.add(req, (transport, seq))
        if not self.turns.busy:
            return
        for req, (transport, seq) in self.turns.turn():
            self.reply(transport, seq, *((False, req.error) if req.error is not None else (True, req.results)))
        if self.turns.busy and not self.scheduled:
            self.scheduled = True
            self.loop.call_soon(self.flush)  # the next turn, after reading what has arrived

    def drain(self) -> None:
        self.flush()
        while self.turns.busy:
            self.flush()


def run_monitor(settings: Settings, path: str, parent: int, ready) -> None:
    """Entry point of the monitor process (started by ``jiuzhu serve``, which hands it its settings)."""
    configure_logging(settings.log_format)
    db = make_engine(settings)
    service = make_service(settings, db)
    slice_events = settings.monitor_slice_events or SLICE_EVENTS
    try:
        asyncio.run(serve(lambda: _Server(service, slice_events), path, parent, ready))
    finally:
        service.close()
        db.dispose()
        log.info("monitor process stopped after %d transactions", service.transactions)


def make_service(settings: Settings, db):
    monitor = Monitor(settings.home, capacity=settings.monitor_sessions)
    return MonitorService(monitor, MonitorRepository(db, load_id_secret(db, settings)))


def running(settings: Settings):
    """Run the monitor process for the workers of `jiuzhu serve` (restarted if it dies); yields its socket."""
    return supervised(run_monitor, settings, "monitor", "监测进程 / the monitor process", 120)

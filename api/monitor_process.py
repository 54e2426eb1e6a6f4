"""The monitor process of `jiuzhu serve`: one process applies every worker's events.

A household's events must be applied one after another, and its durable-rules
session lives in one process's memory: so workers validate an event, then hand
it to this process over a Unix socket and await the answer, which comes after
the commit. Everything that arrived while a transaction was being written goes
into the next one (group commit), as in the writer process (api/writer_process.py,
whose framing this reuses).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import signal

from .writer_process import _LEN, _frame, _read_frame

log = logging.getLogger("jiuzhu.api.monitor")


class RemoteMonitor:
    """The workers' side: ``submit(events, caller)`` -> per-event results, after the commit."""

    def __init__(self, path: str):
        self.path = path
        self._reader = None
        self._writer = None
        self._pending: dict[int, asyncio.Future] = {}
        self._next = 0
        self._task = None
        self._connecting = asyncio.Lock()

    @property
    def alive(self) -> bool:
        return self._writer is not None and not self._writer.is_closing()

    async def connect(self) -> None:
        async with self._connecting:
            if self.alive:
                return
            self._reader, self._writer = await asyncio.open_unix_connection(self.path)
            self._task = asyncio.create_task(self._receive(self._reader))

    async def submit(self, raw_events: list[dict], caller) -> list[dict]:
        if not self.alive:
            await self.connect()
        self._next += 1
        n = self._next
        fut = asyncio.get_running_loop().create_future()
        self._pending[n] = fut
        self._writer.write(_frame((n, raw_events, caller.key_id, caller.name)))
        await self._writer.drain()
        return await fut

    async def _receive(self, reader) -> None:
        try:
            while True:
                n, ok, payload = await _read_frame(reader)
                fut = self._pending.pop(n, None)
                if fut is None or fut.done():
                    continue
                if ok:
                    fut.set_result(payload)
                else:
                    fut.set_exception(RuntimeError(payload))
        except (asyncio.IncompleteReadError, ConnectionError, OSError) as e:
            log.error("lost the monitor process: %s", e)
        finally:
            if self._writer is not None:
                self._writer.close()
            pending, self._pending = self._pending, {}
            for fut in pending.values():
                if not fut.done():
                    fut.set_exception(ConnectionError("monitor process unavailable"))

    async def aclose(self) -> None:
        if self._writer is not None:
            self._writer.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task


class _Server:
    def __init__(self, service):
        self.service = service
        self.pending: list = []
        self.scheduled = False
        self.loop = asyncio.get_running_loop()

    def connection(self) -> asyncio.Protocol:
        server = self

        class Conn(asyncio.Protocol):
            def connection_made(self, transport) -> None:
                self.transport = transport
                self.buf = bytearray()

            def data_received(self, data: bytes) -> None:
                buf = self.buf
                buf += data
                while len(buf) >= _LEN.size:
                    (n,) = _LEN.unpack_from(buf)
                    if len(buf) < _LEN.size + n:
                        break
                    seq, raw, key_id, name = pickle.loads(bytes(buf[_LEN.size : _LEN.size + n]))
                    del buf[: _LEN.size + n]
                    server.add(self.transport, seq, raw, key_id, name)

        return Conn()

    def add(self, transport, seq, raw, key_id, name) -> None:
        from engine.model import InputError
        from engine.monitor.events import parse_event, parse_events

        from .monitoring import Request

        try:
            events = parse_events(raw) if len(raw) != 1 else [parse_event(raw[0])]
        except InputError as e:
            transport.write(_frame((seq, True, [{"index": None, "status": "refused", "errors": e.to_dict()["errors"]}])))
            return
        self.pending.append((transport, seq, Request(events, key_id, name)))
        if not self.scheduled:
            self.scheduled = True
            self.loop.call_soon(self.flush)

    def flush(self) -> None:
        self.scheduled = False
        items, self.pending = self.pending, []
        if not items:
            return
        self.service.handle([r for _t, _s, r in items])
        for transport, seq, req in items:
            if transport.is_closing():
                continue
            msg = (seq, False, req.error) if req.error is not None else (seq, True, req.results)
            transport.write(_frame(msg))


async def _serve(service, path: str, parent: int, ready) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, lambda: None)  # wait for the parent's SIGTERM, after the workers
    server = _Server(service)
    listener = await loop.create_unix_server(server.connection, path=path)
    os.chmod(path, 0o600)
    ready.set()
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1.0)
        if os.getppid() != parent:
            break
    listener.close()
    await asyncio.sleep(0.2)
    server.flush()


def run_monitor(path: str, parent: int, ready) -> None:
    """Entry point of the monitor process (started by ``jiuzhu serve``)."""
    from .app import _configure_logging
    from .db import make_engine
    from .settings import Settings

    _configure_logging()
    settings = Settings.from_env()
    db = make_engine(settings)
    service = make_service(settings, db)
    try:
        asyncio.run(_serve(service, path, parent, ready))
    finally:
        service.close()
        db.dispose()
        log.info("monitor process stopped after %d transactions", service.transactions)


def make_service(settings, db):
    from engine.monitor.monitor import Monitor

    from .monitor_repo import MonitorRepository
    from .monitoring import MonitorService

    capacity = int(os.environ.get("JIUZHU_MONITOR_SESSIONS") or 2000)
    return MonitorService(Monitor(settings.home, capacity=capacity), MonitorRepository(db))


@contextlib.contextmanager
def running():
    """Run the monitor process for the workers of `jiuzhu serve` (restarted if it dies)."""
    import multiprocessing
    import shutil
    import sys
    import tempfile
    import threading

    import click

    where = tempfile.mkdtemp(prefix="jiuzhu-monitor-")
    path = os.path.join(where, "monitor.sock")
    ctx = multiprocessing.get_context("spawn")
    stopping = threading.Event()

    def start():
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        ready = ctx.Event()
        proc = ctx.Process(target=run_monitor, args=(path, os.getpid(), ready), name="jiuzhu-monitor")
        proc.start()
        return proc, ready.wait(120)

    current, ok = start()
    if not ok:
        current.terminate()
        click.echo("监测进程未能启动 / the monitor process did not start", err=True)
        sys.exit(4)

    def watch() -> None:
        nonlocal current
        while not stopping.wait(1.0):
            if not current.is_alive():
                click.echo(f"监测进程已退出（{current.exitcode}），正在重启 / monitor process died, restarting", err=True)
                current, _ = start()

    watcher = threading.Thread(target=watch, name="jiuzhu-monitor-watch", daemon=True)
    watcher.start()
    os.environ["JIUZHU_MONITOR_SOCKET"] = path
    try:
        yield
    finally:
        stopping.set()
        watcher.join(5)
        current.terminate()
        current.join(40)
        shutil.rmtree(where, ignore_errors=True)

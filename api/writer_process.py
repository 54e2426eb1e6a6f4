"""The writer process: one process commits for every worker, over a Unix socket.

Evaluation is CPU work under the GIL; committing is mostly waiting for the
disk. In one process the two fight over the GIL (the writer thread waits up to
a switch interval each time it returns from SQLite), so `jiuzhu serve` runs
the group-commit writer in a process of its own. Workers send each request's
rows and await the acknowledgement, which comes only after the commit.

Frames are a 4-byte length and a pickle; the socket lives in a private 0700
directory of the serving user, and both ends are this program.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import signal
import struct

from .writer import Committer, Job

log = logging.getLogger("jiuzhu.api.writer")
_LEN = struct.Struct(">I")


def _frame(obj) -> bytes:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    return _LEN.pack(len(data)) + data


async def _read_frame(reader: asyncio.StreamReader):
    head = await reader.readexactly(_LEN.size)
    return pickle.loads(await reader.readexactly(_LEN.unpack(head)[0]))


class RemoteWriter:
    """The workers' side: same ``write`` as GroupCommitWriter, carried out by the writer process."""

    def __init__(self, path: str):
        self.path = path
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._pending: dict[int, asyncio.Future] = {}
        self._next = 0
        self._task: asyncio.Task | None = None
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

    async def write(self, rows: list[dict], batch: dict | None = None, idem: tuple[str, str, bool] | None = None):
        if not self.alive:
            await self.connect()
        self._next += 1
        n = self._next
        fut = asyncio.get_running_loop().create_future()
        self._pending[n] = fut
        assert self._writer is not None
        self._writer.write(_frame((n, rows, batch, idem)))
        await self._writer.drain()
        return await fut

    async def _receive(self, reader: asyncio.StreamReader) -> None:
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
            log.error("lost the writer process: %s", e)
        finally:
            if self._writer is not None:
                self._writer.close()
            pending, self._pending = self._pending, {}
            for fut in pending.values():
                if not fut.done():
                    fut.set_exception(ConnectionError("writer process unavailable"))

    async def aclose(self) -> None:
        if self._writer is not None:
            self._writer.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


class _Server:
    """Reads jobs from every worker; commits whatever has arrived, in one transaction, on the loop.

    This process has nothing else to do while a transaction commits, so the commit runs on
    the event loop itself: meanwhile the workers' frames wait in the socket buffers, and the
    next loop iteration reads them all into the next transaction. No threads, no hand-offs.
    """

    def __init__(self, committer: Committer):
        self.committer = committer
        self.pending: list[Job] = []
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
                    seq, rows, batch, idem = pickle.loads(bytes(buf[_LEN.size : _LEN.size + n]))
                    del buf[: _LEN.size + n]
                    server.add(Job(rows, batch, idem, (self.transport, seq)))

        return Conn()

    def add(self, job: Job) -> None:
        self.pending.append(job)
        if not self.scheduled:
            self.scheduled = True
            self.loop.call_soon(self.flush)  # after this iteration's reads: everything that has arrived

    def flush(self) -> None:
        self.scheduled = False
        jobs, self.pending = self.pending, []
        if not jobs:
            return
        self.committer.commit(jobs)
        for j in jobs:
            transport, seq = j.reply
            if transport.is_closing():
                continue
            if j.error is not None:
                msg = (seq, False, f"{type(j.error).__name__}: {j.error}")
            else:
                msg = (seq, True, j.result)
            transport.write(_frame(msg))


async def _serve(committer: Committer, path: str, parent: int, ready) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    # Ctrl-C reaches the whole process group: the workers still finish their requests, so the
    # writer waits for the parent's SIGTERM, sent once they are done.
    loop.add_signal_handler(signal.SIGINT, lambda: None)
    server = _Server(committer)
    listener = await loop.create_unix_server(server.connection, path=path)
    os.chmod(path, 0o600)
    ready.set()
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1.0)
        if os.getppid() != parent:  # the server that started us is gone
            break
    listener.close()
    await asyncio.sleep(0.2)  # let the last frames arrive
    server.flush()


def run_writer(path: str, parent: int, ready) -> None:
    """Entry point of the writer process (started by ``jiuzhu serve``)."""
    from .app import _configure_logging
    from .db import make_engine
    from .repository import Repository
    from .settings import Settings

    _configure_logging()
    settings = Settings.from_env()
    db = make_engine(settings)
    committer = Committer(Repository(db))
    try:
        asyncio.run(_serve(committer, path, parent, ready))
    finally:
        committer.close()
        db.dispose()
        log.info("writer process stopped: %d jobs in %d transactions", committer.jobs, committer.commits)

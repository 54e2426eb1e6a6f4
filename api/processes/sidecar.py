"""Helper processes of `jiuzhu serve` (the writer, the monitor), reached over a Unix socket.

Both are built the same way: the workers send a request frame and await the answer frame,
which the helper sends only after its commit; the helper reads every worker's frames on one
event loop and handles whatever has arrived as one group. This module holds what they share:
the framing, the workers' client, the helper's serving loop and the supervisor that starts
the helper, restarts it if it dies and stops it after the workers.

Frames are a 4-byte length and a pickle; the socket lives in a private 0700 directory of the
serving user, and both ends are this program.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import pickle
import shutil
import signal
import struct
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from typing import Any

import click

_LEN = struct.Struct(">I")


def frame(obj: Any) -> bytes:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    return _LEN.pack(len(data)) + data


async def read_frame(reader: asyncio.StreamReader) -> Any:
    head = await reader.readexactly(_LEN.size)
    return pickle.loads(await reader.readexactly(_LEN.unpack(head)[0]))


class RemoteCaller:
    """The workers' side: ``call(*args)`` sends ``(seq, *args)`` and returns the helper's answer
    ``(seq, ok, payload)``: the payload, or a ``RuntimeError`` carrying it when not ok."""

    def __init__(self, path: str, what: str, log: logging.Logger):
        self.path = path
        self._what = what  # "writer" / "monitor", for messages
        self._log = log
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

    async def call(self, *args: Any) -> Any:
        if not self.alive:
            await self.connect()
        self._next += 1
        n = self._next
        fut = asyncio.get_running_loop().create_future()
        self._pending[n] = fut
        assert self._writer is not None
        self._writer.write(frame((n, *args)))
        await self._writer.drain()
        return await fut

    async def _receive(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                n, ok, payload = await read_frame(reader)
                fut = self._pending.pop(n, None)
                if fut is None or fut.done():
                    continue
                if ok:
                    fut.set_result(payload)
                else:
                    fut.set_exception(RuntimeError(payload))
        except (asyncio.IncompleteReadError, ConnectionError, OSError) as e:
            self._log.error("lost the %s process: %s", self._what, e)
        finally:
            if self._writer is not None:
                self._writer.close()
            pending, self._pending = self._pending, {}
            for fut in pending.values():
                if not fut.done():
                    fut.set_exception(ConnectionError(f"{self._what} process unavailable"))

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


class GroupServer:
    """The helper's side: frames from every worker are queued with ``add``; ``handle`` (a
    subclass's) gets all that arrived in one loop iteration, as ``(transport, seq, args)``,
    and returns one ``(ok, payload)`` answer per item, sent back in order."""

    def __init__(self) -> None:
        self.pending: list[tuple[asyncio.Transport, int, tuple]] = []
        self.scheduled = False
        self.loop = asyncio.get_running_loop()

    def receive(self, transport: asyncio.Transport, seq: int, args: tuple) -> None:
        """One decoded frame; a subclass may answer at once instead (``reply``) and not queue it."""
        self.add(transport, seq, args)

    def add(self, transport: asyncio.Transport, seq: int, args: tuple) -> None:
        self.pending.append((transport, seq, args))
        if not self.scheduled:
            self.scheduled = True
            self.loop.call_soon(self.flush)  # after this iteration's reads: everything that has arrived

    def handle(self, items: list[tuple[asyncio.Transport, int, tuple]]) -> list[tuple[bool, Any]]:
        raise NotImplementedError

    def flush(self) -> None:
        self.scheduled = False
        items, self.pending = self.pending, []
        if not items:
            return
        answers = self.handle(items)
        for (transport, seq, _args), (ok, payload) in zip(items, answers, strict=True):
            self.reply(transport, seq, ok, payload)

    def drain(self) -> None:
        """Answer everything queued (the helper is stopping)."""
        self.flush()

    @staticmethod
    def reply(transport: asyncio.Transport, seq: int, ok: bool, payload: Any) -> None:
        if not transport.is_closing():
            transport.write(frame((seq, ok, payload)))

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
                    seq, *args = pickle.loads(bytes(buf[_LEN.size : _LEN.size + n]))
                    del buf[: _LEN.size + n]
                    server.receive(self.transport, seq, tuple(args))

        return Conn()


async def serve(server_factory: Callable[[], GroupServer], path: str, parent: int, ready) -> None:
    """The helper's main loop: listen on ``path`` until SIGTERM or the parent is gone, then answer
    what is still queued."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    # Ctrl-C reaches the whole process group: the workers still finish their requests, so the
    # helper waits for the parent's SIGTERM, sent once they are done.
    loop.add_signal_handler(signal.SIGINT, lambda: None)
    server = server_factory()
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
    server.drain()


@contextlib.contextmanager
def supervised(target: Callable, settings, name: str, label: str, start_timeout: float) -> Iterator[str]:
    """Run ``target(settings, path, parent_pid, ready)`` in a process of its own for the workers of
    `jiuzhu serve`, and yield its socket's path (for the workers' settings); restarted if it dies;
    stopped (SIGTERM: it answers what is queued, then exits) after the workers. ``settings`` reach it
    in the spawn arguments (a pipe, not its command line or environment). ``label`` names it in
    messages, e.g. "写入进程 / the writer process"."""

    where = tempfile.mkdtemp(prefix=f"jiuzhu-{name}-")  # 0700: only this user reaches the socket
    path = os.path.join(where, f"{name}.sock")
    ctx = multiprocessing.get_context("spawn")
    stopping = threading.Event()
    zh, en = label.split(" / ")

    def start():
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        ready = ctx.Event()
        proc = ctx.Process(target=target, args=(settings, path, os.getpid(), ready), name=f"jiuzhu-{name}")
        proc.start()
        return proc, ready.wait(start_timeout)

    current, ok = start()
    if not ok:
        current.terminate()
        click.echo(f"{zh}未能启动 / {en} did not start", err=True)
        sys.exit(4)

    def watch() -> None:
        nonlocal current
        while not stopping.wait(1.0):
            if not current.is_alive():
                # Workers answer 503 until it is back; they reconnect by themselves.
                click.echo(f"{zh}已退出（{current.exitcode}），正在重启 / {en} died, restarting", err=True)
                current, _ = start()

    watcher = threading.Thread(target=watch, name=f"jiuzhu-{name}-watch", daemon=True)
    watcher.start()
    try:
        yield path
    finally:
        stopping.set()
        watcher.join(5)
        current.terminate()
        current.join(40)
        shutil.rmtree(where, ignore_errors=True)

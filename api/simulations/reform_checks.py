"""Reading and checking an uploaded reform, in a process of its own, off the worker's event loop.

Parsing a reform's YAML, applying it to a copy of the rules and loading the rule book
it makes is about half a second of CPU under the GIL (more for a large document): in
a thread of the worker it still took the interpreter from the evaluations that worker
serves (four policy clients raised their p99 from 25 to 95 ms). So each worker keeps
one checking process, at a lower CPU priority, started on the first check. A check
that runs over its time limit, or whose process dies (a document built to exhaust
memory), has the process killed and is refused; the next check starts a new one.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import multiprocessing
import os
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from api.core.config import Settings
from api.core.errors import error_item
from api.simulations.request import RequestInvalid, SimulationRequest, check_reform, parse_body

log = logging.getLogger("jiuzhu.api.simulations")
NICENESS = 5  # below the window requests, above a running simulation (nice 10)


_settings: Settings | None = None  # in the checking process: the worker's, from the spawn arguments


def _start(settings: Settings) -> None:
    global _settings
    _settings = settings
    with contextlib.suppress(OSError):
        os.nice(NICENESS)


def _parse(body: bytes) -> tuple[bool, object]:
    try:
        return True, parse_body(body)
    except RequestInvalid as e:  # its errors travel back, not the exception (which does not pickle whole)
        return False, e.errors


def _check(req: SimulationRequest, home: Path) -> tuple[bool, object]:
    try:
        return True, check_reform(req, home)
    except RequestInvalid as e:
        return False, e.errors


def _pid() -> int:
    return os.getpid()


def _settings_here() -> Settings | None:
    return _settings


class ReformChecker:
    """``settings``: the worker's, handed to the checking process when it starts (not its environment)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.timeout = settings.reform_check_timeout_seconds
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        self.checks = 0  # calls answered by the checking process (tests, logs)

    def _executor(self) -> concurrent.futures.ProcessPoolExecutor:
        if self._pool is None:
            self._pool = concurrent.futures.ProcessPoolExecutor(
                max_workers=1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_start,
                initargs=(self.settings,),
            )
        return self._pool

    async def _call(self, fn, *args):
        pool = self._executor()
        try:
            ok, out = await asyncio.wait_for(asyncio.wrap_future(pool.submit(fn, *args)), self.timeout)
        except TimeoutError:
            log.warning("a reform check ran over %s s: its process is stopped", self.timeout)
            self._discard(kill=True)
            raise RequestInvalid(
                [
                    error_item(
                        "reform",
                        f"改革方案检查超过时限（{self.timeout:g}秒），未排队；请精简方案后重试",
                        f"checking the reform took over {self.timeout:g} s: nothing queued; simplify the reform",
                        "check_timeout",
                    )
                ]
            ) from None
        except BrokenProcessPool:
            log.warning("the reform check process died (out of memory?)")
            self._discard(kill=True)
            raise RequestInvalid(
                [
                    error_item(
                        "reform",
                        "改革方案检查进程意外终止（方案可能过大），未排队",
                        "the process checking the reform died (the reform may be too large): nothing queued",
                        "check_failed",
                    )
                ]
            ) from None
        self.checks += 1
        if not ok:
            raise RequestInvalid(out)
        return out

    async def parse(self, body: bytes) -> SimulationRequest:
        """``parse_body`` in the checking process (a reform may be a large YAML text)."""
        return await self._call(_parse, body)

    async def check(self, req: SimulationRequest, home: Path) -> dict:
        """``check_reform`` in the checking process; raises ``RequestInvalid`` as it does."""
        return await self._call(_check, req, home)

    async def pid(self) -> int:
        """The checking process's id."""
        return await asyncio.wrap_future(self._executor().submit(_pid))

    async def process_settings(self) -> Settings | None:
        """The settings the checking process holds (tests)."""
        return await asyncio.wrap_future(self._executor().submit(_settings_here))

    def _discard(self, kill: bool) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        if kill:
            # ProcessPoolExecutor has no way to stop a running call: end its process (a private
            # attribute, stable since Python 3.8) so the next check gets a fresh one.
            for proc in list(getattr(pool, "_processes", {}).values()):
                with contextlib.suppress(Exception):
                    proc.kill()
        pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        self._discard(kill=True)

"""Group commit: many requests' records in one transaction, answered only after it commits.

``Committer.commit(jobs)`` writes a group of jobs in one transaction (one fsync)
and settles each job: recorded, a replay of an earlier answer with the same
Idempotency-Key, or an error. Two drivers use it:

* ``GroupCommitWriter``: a thread in this process (embedded use, tests);
* the writer process (``api/processes/writer.py``), which `jiuzhu serve` runs
  for all its workers.

While one transaction commits, new jobs queue up; the next transaction takes
them all, so under load transactions grow and the fsync is shared.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import fcntl
import logging
import os
import queue
import threading
from dataclasses import dataclass, field
from time import perf_counter
from typing import Any

from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError

from api.core.errors import Unrecordable, is_bad_data
from api.core.metrics import WRITER_BATCH_JOBS, WRITER_COMMIT_SECONDS
from api.storage.db import writing
from api.storage.repository import Repository

log = logging.getLogger("jiuzhu.api.writer")


@dataclass(slots=True)
class Replay:
    """The first answer recorded under the same caller and Idempotency-Key."""

    row: dict  # a determination row, or a batch row when ``batch``
    batch: bool


@dataclass(slots=True)
class Job:
    rows: list[dict]
    batch: dict | None
    idem: tuple[str, str, bool] | None  # caller key id, Idempotency-Key, is batch
    reply: Any = None  # how the driver answers (a future, a connection...)
    result: Replay | None = None
    error: BaseException | None = None
    same_as: Job | None = field(default=None, repr=False)


class _FileLock:
    """An exclusive lock shared by processes writing one SQLite file without a writer process.

    SQLite's own busy handler polls with sleeps of up to 100 ms, which turns two
    writers into long tail latencies; a blocking flock() wakes the next writer
    as soon as the lock is released.
    """

    def __init__(self, path: str):
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)

    def __enter__(self) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def __exit__(self, *exc) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)


class Committer:
    def __init__(self, repo: Repository, lock_path: str | None = None):
        self.repo = repo
        self._lock = _FileLock(lock_path) if lock_path else contextlib.nullcontext()
        self.commits = 0  # transactions committed (for tests and the benchmark)
        self.jobs = 0
        self._conn = None  # kept open: a pool check-out and its reset per transaction cost more than the insert

    def _connection(self):
        if self._conn is None or self._conn.closed or self._conn.invalidated:
            self._conn = writing(self.repo.engine)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def commit(self, jobs: list[Job]) -> None:
        """Write ``jobs`` in one transaction and settle each (``result`` / ``error``).

        When the transaction fails for a reason other than the database being unreachable, its jobs
        are redone one at a time: another process may have committed the same Idempotency-Key between
        our look-up and insert (only the duplicate turns into a replay), or one job holds a value the
        database refuses (only that job fails, with ``Unrecordable``: its request is answered 422)."""
        try:
            self._transaction(jobs)
        except (OperationalError, InterfaceError) as e:
            log.exception("could not record %d job(s)", len(jobs))
            self.close()  # start afresh next time (the database may have restarted)
            for j in jobs:
                j.error = e
        except Exception as e:
            if not isinstance(e, IntegrityError):
                log.warning("a group of %d job(s) failed (%s: %s); recording them one at a time", len(jobs), type(e).__name__, e)
            for j in jobs:
                j.result = j.same_as = None
                try:
                    self._transaction([j])
                except Exception as e1:
                    j.error = _settled(e1)
        for j in jobs:
            if j.same_as is not None and j.error is None:
                first = j.same_as
                j.result = first.result or Replay(
                    first.batch if first.batch is not None else first.rows[0], first.batch is not None
                )
                j.error = first.error

    def _transaction(self, jobs: list[Job]) -> None:
        repo = self.repo
        seen: dict[tuple[str, str, bool], Job] = {}
        rows: list[dict] = []
        conn = self._connection()
        start = perf_counter()
        with self._lock, conn.begin():
            for j in jobs:
                if j.idem is not None:
                    first = seen.get(j.idem)
                    if first is not None:
                        j.same_as = first
                        continue
                    row = repo.existing_idempotent(conn, j.idem[0], j.idem[1], j.idem[2])
                    if row is not None:
                        j.result = Replay(dict(row._mapping), j.idem[2])
                        continue
                    seen[j.idem] = j
                if j.batch is not None:
                    repo.insert(conn, [], j.batch)
                rows.extend(j.rows)
            repo.insert(conn, rows)
        WRITER_COMMIT_SECONDS.observe(perf_counter() - start)
        WRITER_BATCH_JOBS.observe(len(jobs))
        self.commits += 1
        self.jobs += len(jobs)


def _settled(e: Exception) -> Exception:
    """The error a job that failed alone is answered with: its own bad data, or the database's failure."""
    if is_bad_data(e):
        log.warning("a request holds a value the database refused: %s: %s", type(e).__name__, e)
        return Unrecordable(f"{type(e).__name__}: {e}")
    log.error("could not record a job: %s: %s", type(e).__name__, e)
    return e


_STOP = object()


class GroupCommitWriter:
    """A writer thread in this process, for embedded use (``jiuzhu serve`` uses the writer process)."""

    def __init__(self, repo: Repository, max_jobs: int = 512, lock_path: str | None = None):
        self.committer = Committer(repo, lock_path)
        self.max_jobs = max_jobs
        self._q: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="jiuzhu-writer", daemon=True)
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    async def write(self, rows: list[dict], batch: dict | None = None, idem: tuple[str, str, bool] | None = None):
        """Commit ``rows`` (and ``batch``); returns None, or a Replay when the Idempotency-Key was used before."""
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self._q.put(Job(rows, batch, idem, (fut, loop)))
        return await fut

    def write_sync(self, rows: list[dict], batch: dict | None = None, idem: tuple[str, str, bool] | None = None):
        fut: concurrent.futures.Future = concurrent.futures.Future()
        self._q.put(Job(rows, batch, idem, (fut, None)))
        return fut.result()

    def close(self, timeout: float = 30.0) -> None:
        """Write what is queued, then stop."""
        self._q.put(_STOP)
        self._thread.join(timeout)

    def _run(self) -> None:
        stop = False
        while not stop:
            first = self._q.get()
            if first is _STOP:
                break
            jobs = [first]
            while len(jobs) < self.max_jobs:
                try:
                    j = self._q.get_nowait()
                except queue.Empty:
                    break
                if j is _STOP:
                    stop = True
                    break
                jobs.append(j)
            self.committer.commit(jobs)
            for j in jobs:
                _resolve(j)
        self.committer.close()


def _resolve(j: Job) -> None:
    fut, loop = j.reply
    if loop is None:
        if j.error is not None:
            fut.set_exception(j.error)
        else:
            fut.set_result(j.result)
        return

    def done(fut=fut, result=j.result, error=j.error) -> None:
        if fut.cancelled():
            return
        if error is not None:
            fut.set_exception(error)
        else:
            fut.set_result(result)

    with contextlib.suppress(RuntimeError):  # the loop closed during shutdown; the record is committed
        loop.call_soon_threadsafe(done)

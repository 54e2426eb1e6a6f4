"""Fanning the partitions of a population out: one task per partition, on a Dask cluster or in this process.

Tasks get what they need as data: the rule and policy root (a path every worker sees, as it sees the
population), the program subset, and for a simulation the reform as parsed data with the text of the rule
files it brings (never code). Each worker process loads a rule book once and keeps it (``engine_at``,
``reform_engine_at``). Results come back to the caller, which merges and writes them in partition order,
whichever worker finishes first: a task Dask retries after its worker died writes nothing, so no partition
is written twice or half.

Without a cluster the same task functions run in this process, one partition after another, so a run on
a cluster and a run in one process compute every partition the same way and merge in the same order.
"""

from __future__ import annotations

import dataclasses
import hashlib
import tempfile
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.book.rules import default_root, load_rulebook
from engine.executors.evaluate import Engine

from .reform import Reform, reform_rulebook


class FanoutError(ValueError):
    """The population cannot be fanned out, or the cluster cannot be reached."""


@dataclass(frozen=True)
class Cluster:
    """Where to fan out: ``workers`` local processes (a ``LocalCluster``), or the scheduler at ``address``."""

    workers: int | None = None
    address: str | None = None


@dataclass(frozen=True)
class ReformData:
    """A reform as data for the workers: the parsed reform and the text of each rule file it brings."""

    reform: Reform
    rule_files: tuple[tuple[str, bytes], ...]

    @classmethod
    def of(cls, reform: Reform) -> ReformData:
        return cls(reform, tuple((name, Path(src).read_bytes()) for name, src in sorted(reform.rules.items())))

    def digest(self) -> str:
        h = hashlib.sha256(repr(self.reform).encode())
        for name, text in self.rule_files:
            h.update(name.encode() + b"\0" + text)
        return h.hexdigest()


_ENGINES: dict[tuple[str, str], Engine] = {}  # per worker process: (root, reform digest) -> engine


def engine_at(home: str) -> Engine:
    """The engine of the rules and policies under ``home``, loaded once per process."""
    key = (home, "")
    if key not in _ENGINES:
        _ENGINES[key] = Engine(load_rulebook(Path(home)))
    return _ENGINES[key]


def reform_engine_at(home: str, data: ReformData) -> Engine:
    """The engine of ``home`` with the reform applied, built once per process and reform."""
    key = (home, data.digest())
    if key not in _ENGINES:
        # the reform's rule files are written where this process can read them; they are checked as
        # rule files, exactly as on the machine that sent them
        where = Path(tempfile.mkdtemp(prefix="jiuzhu-reform-rules-"))
        for name, text in data.rule_files:
            (where / name).write_bytes(text)
        reform = dataclasses.replace(data.reform, rules={name: where / name for name, _text in data.rule_files})
        book, _root = reform_rulebook(reform, Path(home))
        _ENGINES[key] = Engine(book)
    return _ENGINES[key]


@dataclass(frozen=True)
class EngineSpec:
    """How a worker loads an engine: the rules and policies under ``home``, with ``reform`` applied if given."""

    home: str
    reform: ReformData | None = None

    def engine(self) -> Engine:
        return engine_at(self.home) if self.reform is None else reform_engine_at(self.home, self.reform)


def home_of(engine: Engine) -> str:
    """The root (holding rules/ and policies/) an engine was loaded from, to ship to the workers."""
    return str(Path(engine.book.dir).parent.resolve() if engine.book.dir else default_root())


class Fanout:
    """Runs task functions over partitions, returning results in the order submitted.

    ``cluster=None`` runs them here; otherwise a Dask client is opened (a ``LocalCluster`` of
    ``workers`` processes with one thread each, or the scheduler at ``address``) and closed on exit."""

    def __init__(self, cluster: Cluster | None):
        self.cluster = cluster
        self.client: Any = None
        self._local: Any = None

    def __enter__(self) -> Fanout:
        if self.cluster is None:
            return self
        try:
            # Dask takes about a second to import: loaded only when a run is fanned out
            from distributed import Client, LocalCluster
        except ImportError as e:  # pragma: no cover - a dependency of the project
            raise FanoutError(f"需要 dask[distributed] / dask[distributed] is not installed: {e}") from None
        try:
            if self.cluster.address:
                self.client = Client(self.cluster.address, timeout="20s")
            else:
                self._local = LocalCluster(
                    n_workers=self.cluster.workers or 1,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=None,
                )
                self.client = Client(self._local)
        except OSError as e:
            self.__exit__(None, None, None)
            where = self.cluster.address or "LocalCluster"
            raise FanoutError(f"无法连接 Dask 调度器 {where} / cannot reach the Dask scheduler {where}: {e}") from None
        return self

    def __exit__(self, *_exc) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None
        if self._local is not None:
            self._local.close()
            self._local = None

    @property
    def workers(self) -> int:
        if self.client is None:
            return 1
        if self.cluster is not None and self.cluster.workers:
            return self.cluster.workers  # a new LocalCluster's workers are still starting
        return max(1, len(self.client.scheduler_info().get("workers", {})))

    def map(self, fn: Callable[..., Any], calls: Iterable[tuple], window: int | None = None) -> Iterator[Any]:
        """``fn(*args)`` for each ``args`` of ``calls``, yielded in the order of ``calls``.

        On a cluster at most ``window`` tasks (default: twice the workers) are out at a time, and each
        result is released as soon as it is taken, so neither the workers nor the caller hold more than
        a few partitions' results."""
        if self.client is None:
            for args in calls:
                yield fn(*args)
            return
        ahead = window or 2 * self.workers
        pending: deque = deque()
        it = iter(calls)
        try:
            for args in it:
                pending.append(self.client.submit(fn, *args, pure=False))
                if len(pending) >= ahead:
                    yield _take(pending.popleft())
            while pending:
                yield _take(pending.popleft())
        finally:
            for f in pending:
                f.cancel()


def _take(future) -> Any:
    try:
        return future.result()
    finally:
        future.release()

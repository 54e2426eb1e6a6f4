"""The writer process: one process commits for every worker, over a Unix socket.

Evaluation is CPU work under the GIL; committing is mostly waiting for the
disk. In one process the two fight over the GIL (the writer thread waits up to
a switch interval each time it returns from SQLite), so `jiuzhu serve` runs
the group-commit writer in a process of its own. Workers send each request's
rows and await the acknowledgement, which comes only after the commit (framing,
client, serving loop and supervision: api/processes/sidecar.py).
"""

from __future__ import annotations

import asyncio
import logging

from api.core.config import Settings
from api.core.errors import Unrecordable
from api.core.logmask import configure_logging
from api.processes.sidecar import GroupServer, RemoteCaller, serve
from api.storage.db import make_engine
from api.storage.group_commit import Committer, Job
from api.storage.repository import Repository

log = logging.getLogger("jiuzhu.api.writer")


class RemoteWriter(RemoteCaller):
    """The workers' side: same ``write`` as GroupCommitWriter, carried out by the writer process."""

    def __init__(self, path: str):
        super().__init__(path, "writer", log)

    async def write(self, rows: list[dict], batch: dict | None = None, idem: tuple[str, str, bool] | None = None):
        out = await self.call(rows, batch, idem)
        if isinstance(out, Unrecordable):
            raise out
        return out


class _Server(GroupServer):
    """Commits whatever has arrived, in one transaction, on the loop.

    This process has nothing else to do while a transaction commits, so the commit runs on
    the event loop itself: meanwhile the workers' frames wait in the socket buffers, and the
    next loop iteration reads them all into the next transaction. No threads, no hand-offs.
    """

    def __init__(self, committer: Committer):
        super().__init__()
        self.committer = committer

    def handle(self, items: list[tuple[asyncio.Transport, int, tuple]]) -> list[tuple[bool, object]]:
        jobs = [Job(rows, batch, idem, None) for _t, _s, (rows, batch, idem) in items]
        self.committer.commit(jobs)
        return [
            (True, j.result) if j.error is None else (True, j.error) if isinstance(j.error, Unrecordable) else (False, f"{type(j.error).__name__}: {j.error}")
            for j in jobs
        ]


def run_writer(settings: Settings, path: str, parent: int, ready) -> None:
    """Entry point of the writer process (started by ``jiuzhu serve``, which hands it its settings)."""
    configure_logging(settings.log_format)
    db = make_engine(settings)
    committer = Committer(Repository(db))
    try:
        asyncio.run(serve(lambda: _Server(committer), path, parent, ready))
    finally:
        committer.close()
        db.dispose()
        log.info("writer process stopped: %d jobs in %d transactions", committer.jobs, committer.commits)

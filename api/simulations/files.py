"""Where a finished simulation's files live, so that every replica can serve them.

The simulation's child process writes its files to the running worker's scratch directory; the
runner then keeps them in the configured store (``JIUZHU_SIMULATION_STORE``):

* ``db`` (the default): the ``simulation_files`` table, cut into parts of ``PART_BYTES``, written in
  the same transaction that marks the job done, so the files appear exactly when the job does;
* ``dir:/path``: a directory every replica mounts (NFS, a shared volume): ``/path/<id>/files/<name>``,
  copied to a staging directory first and renamed into place when the job is marked done.

Either way a download is read a part at a time: one request holds at most ``PART_BYTES`` of a file
in memory, however large the file is.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from sqlalchemy import Connection, Engine, delete, func, insert, select

from api.core.config import Settings
from api.storage.models import SimulationFile

PART_BYTES = 1 << 20  # a part of a file in the database, and what a download reads at a time
_FILES = SimulationFile.__table__


@dataclass(frozen=True, slots=True)
class StoredFile:
    """A file as a download reads it: its size, then its bytes a part at a time."""

    size: int
    parts: Iterable[bytes]


class Staged(Protocol):
    def commit(self, conn: Connection) -> None:
        """Make the files the job's, inside the transaction that marks it done (``conn``)."""

    def discard(self) -> None:
        """The job was not marked done here: leave nothing behind."""


class SimulationFiles(Protocol):
    def stage(self, job_id: str, out: Path, names: Iterable[str]) -> Staged: ...

    def open(self, job_id: str, name: str) -> StoredFile | None: ...


# -- in the database ----------------------------------------------------------------------------------------


class DatabaseFiles:
    def __init__(self, engine: Engine):
        self.engine = engine

    def stage(self, job_id: str, out: Path, names: Iterable[str]) -> Staged:
        return _DatabaseStaged(job_id, [(name, out / name) for name in names if (out / name).is_file()])

    def open(self, job_id: str, name: str) -> StoredFile | None:
        where = (_FILES.c.simulation_id == job_id, _FILES.c.name == name)
        with self.engine.connect() as conn:
            parts, size = conn.execute(select(func.count(), func.sum(func.length(_FILES.c.data))).where(*where)).one()
        if not parts:
            return None
        return StoredFile(int(size or 0), self._parts(where, parts))

    def _parts(self, where: tuple, parts: int) -> Iterator[bytes]:
        # A connection per part, not one held for the whole download: a slow client must not keep a
        # pooled connection for minutes.
        for part in range(parts):
            with self.engine.connect() as conn:
                data = conn.execute(select(_FILES.c.data).where(*where, _FILES.c.part == part)).scalar_one()
            yield bytes(data)


@dataclass
class _DatabaseStaged:
    job_id: str
    paths: list[tuple[str, Path]]

    def commit(self, conn: Connection) -> None:
        # A re-run (after an interruption) replaces whatever an earlier attempt left.
        conn.execute(delete(_FILES).where(_FILES.c.simulation_id == self.job_id))
        for name, path in self.paths:
            with path.open("rb") as f:
                part = 0
                while True:
                    data = f.read(PART_BYTES)
                    if not data and part:
                        break
                    conn.execute(insert(_FILES).values(simulation_id=self.job_id, name=name, part=part, data=data))
                    part += 1
                    if len(data) < PART_BYTES:
                        break

    def discard(self) -> None:
        pass


# -- in a shared directory ----------------------------------------------------------------------------------


class DirectoryFiles:
    """``<root>/<id>/files/<name>``; also reads files that older versions left in a worker's data
    directory (``<root>/<id>/out/<name>``, with ``legacy``)."""

    def __init__(self, root: Path, folder: str = "files"):
        self.root = root
        self.folder = folder

    def stage(self, job_id: str, out: Path, names: Iterable[str]) -> Staged:
        job = self.root / job_id
        staging = job / f".staging-{secrets.token_hex(4)}"
        staging.mkdir(parents=True)
        try:
            for name in names:
                if (out / name).is_file():
                    shutil.copyfile(out / name, staging / name)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return _DirectoryStaged(staging, job / self.folder)

    def open(self, job_id: str, name: str) -> StoredFile | None:
        path = self.root / job_id / self.folder / name
        try:
            size = path.stat().st_size
        except OSError:
            return None
        return StoredFile(size, _read_parts(path)) if path.is_file() else None


def _read_parts(path: Path) -> Iterator[bytes]:
    with path.open("rb") as f:
        while data := f.read(PART_BYTES):
            yield data


@dataclass
class _DirectoryStaged:
    staging: Path
    target: Path

    def commit(self, conn: Connection) -> None:
        if not self.staging.exists():  # a retry: the files went in place before the database failed
            return
        old = self.target.with_name(f".old-{secrets.token_hex(4)}")
        with contextlib.suppress(FileNotFoundError):
            os.rename(self.target, old)  # an earlier attempt's files
        os.rename(self.staging, self.target)
        shutil.rmtree(old, ignore_errors=True)

    def discard(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)


# -- from the settings ----------------------------------------------------------------------------------------


def shared_directory(settings: Settings) -> Path | None:
    """The directory of ``JIUZHU_SIMULATION_STORE=dir:/path``; None for the database."""
    kind, _, path = settings.simulation_store.partition(":")
    return Path(path).resolve() if kind == "dir" else None


def make_files(settings: Settings, engine: Engine) -> SimulationFiles:
    directory = shared_directory(settings)
    return DirectoryFiles(directory) if directory is not None else DatabaseFiles(engine)


def legacy_files(settings: Settings) -> SimulationFiles:
    """Files of jobs finished before they were kept in a shared store: in this worker's data directory."""
    return DirectoryFiles(settings.simulations_path, folder="out")

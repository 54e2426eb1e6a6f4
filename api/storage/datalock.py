"""One service per data directory: an exclusive lock on ``<data dir>/jiuzhu.lock`` held by `jiuzhu serve`.

Two services on one SQLite file would each run their own writer process and group commit, and each
believe its caches (keys, the monitor's sessions) are the only truth. ``flock`` is released by the kernel
when the process ends however it ends, so a crash never leaves a stale lock behind; the file keeps the
holder's PID only so that the refusal can name it.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

LOCK_NAME = "jiuzhu.lock"


class DataDirInUse(Exception):
    def __init__(self, path: Path, pid: str):
        self.path = path
        self.pid = pid
        super().__init__(f"{path} is locked by process {pid}")


def lock_data_dir(data_dir: Path):
    """Take the data directory's lock for the life of this process; returns the open lock file (keep it).
    Raises DataDirInUse, naming the holder's PID, when another process holds it."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / LOCK_NAME
    f = open(path, "a+")  # noqa: SIM115 - held open for the life of the service
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.seek(0)
        pid = f.read().strip() or "?"
        f.close()
        raise DataDirInUse(path, pid) from None
    f.seek(0)
    f.truncate()
    f.write(f"{os.getpid()}\n")
    f.flush()
    return f

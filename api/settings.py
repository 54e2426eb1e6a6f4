"""Service settings, read from the environment once at start.

Every setting has a default that runs a single-machine service on an embedded
SQLite file; docs/service.md documents them in its table.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

MIB = 1024 * 1024


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise SystemExit(f"环境变量 {name} 应为整数 / {name} must be an integer, got {raw!r}") from None


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise SystemExit(f"环境变量 {name} 应为数值 / {name} must be a number, got {raw!r}") from None


def _path(name: str) -> Path | None:
    raw = os.environ.get(name)
    return Path(raw) if raw else None


def default_data_dir() -> Path:
    """``$JIUZHU_DATA_DIR``, else ``$XDG_DATA_HOME/jiuzhu``, else ``~/.local/share/jiuzhu``: never the working
    directory, so that ``jiuzhu keys list`` run from another directory finds the same database as the
    service instead of quietly creating an empty one. (The image sets ``JIUZHU_DATA_DIR=/data``.)"""
    if raw := os.environ.get("JIUZHU_DATA_DIR"):
        return Path(raw)
    xdg = os.environ.get("XDG_DATA_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".local" / "share"  # XDG: ignore relative
    return base / "jiuzhu"


def normalise_database_url(url: str) -> str:
    """Accept the URLs operators write (``postgres://``, ``postgresql://``) and pick the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


@dataclass(frozen=True)
class Settings:
    data_dir: Path = field(default_factory=default_data_dir)
    database_url: str = ""
    home: Path | None = None  # rules/ and policies/; None: engine's default
    max_body_bytes: int = MIB
    max_batch_body_bytes: int = 32 * MIB
    max_batch_households: int = 1000
    # What a batch may cost, not only what it may send: members across its households, and fewer when
    # the answer carries every rule's reason (about 10 kB of JSON per member, against 2.4 kB without).
    max_batch_members: int = 20_000
    max_explained_batch_members: int = 5_000
    key_cache_seconds: float = 5.0
    sqlite_synchronous: str = "FULL"
    # Reform simulations: populations a caller may name, where jobs write their outputs, how many run at once
    # (across every worker process), and how long a running job may go without a heartbeat before it counts
    # as interrupted.
    populations_dir: Path | None = None  # None: data_dir / "populations"
    simulations_dir: Path | None = None  # None: data_dir / "simulations"
    simulation_concurrency: int = 1
    simulation_poll_seconds: float = 2.0
    simulation_stale_seconds: float = 30.0
    # Keys the hashes stored next to masked resident ID numbers; empty: made on first start and kept in
    # the database (api/id_secret.py). Set it only to share one value across databases; never change it.
    id_hash_secret: str = ""
    # What one caller may hold of the simulation queue (queued or running jobs of one key), how long one job
    # may run before its process is killed and the job fails, and how long checking a reform may take.
    simulations_per_caller: int = 2
    simulation_timeout_seconds: float = 1800.0
    reform_check_timeout_seconds: float = 60.0
    # People's sign-in sessions (api/accounts/): how long one lasts at most, how long it may sit idle, and
    # whether the site is served over HTTPS (then the cookie is marked Secure and never sent in clear).
    session_hours: float = 12.0
    session_idle_minutes: float = 30.0
    secure_cookies: bool = False

    @property
    def populations_path(self) -> Path:
        return (self.populations_dir or self.data_dir / "populations").resolve()

    @property
    def simulations_path(self) -> Path:
        return (self.simulations_dir or self.data_dir / "simulations").resolve()

    @property
    def url(self) -> str:
        if self.database_url:
            return normalise_database_url(self.database_url)
        return f"sqlite:///{(self.data_dir / 'jiuzhu.sqlite3').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")

    @property
    def sqlite_path(self) -> str | None:
        """The database file, for an SQLite file database."""
        if not self.is_sqlite:
            return None
        path = self.url.removeprefix("sqlite:///")
        return path if path and path != ":memory:" else None

    @classmethod
    def from_env(cls) -> Settings:
        home = os.environ.get("JIUZHU_HOME")
        sync = os.environ.get("JIUZHU_SQLITE_SYNCHRONOUS", "FULL").upper()
        if sync not in ("FULL", "NORMAL", "EXTRA"):
            raise SystemExit("JIUZHU_SQLITE_SYNCHRONOUS 只能为 FULL、NORMAL 或 EXTRA / must be FULL, NORMAL or EXTRA")
        return cls(
            data_dir=default_data_dir(),
            database_url=os.environ.get("DATABASE_URL", ""),
            home=Path(home) if home else None,
            max_body_bytes=_int("JIUZHU_MAX_BODY_BYTES", MIB),
            max_batch_body_bytes=_int("JIUZHU_MAX_BATCH_BODY_BYTES", 32 * MIB),
            max_batch_households=_int("JIUZHU_MAX_BATCH_HOUSEHOLDS", 1000),
            max_batch_members=_int("JIUZHU_MAX_BATCH_MEMBERS", 20_000),
            max_explained_batch_members=_int("JIUZHU_MAX_EXPLAINED_BATCH_MEMBERS", 5_000),
            key_cache_seconds=_float("JIUZHU_KEY_CACHE_SECONDS", 5.0),
            sqlite_synchronous=sync,
            populations_dir=_path("JIUZHU_POPULATIONS_DIR"),
            simulations_dir=_path("JIUZHU_SIMULATIONS_DIR"),
            simulation_concurrency=max(1, _int("JIUZHU_SIMULATION_CONCURRENCY", 1)),
            id_hash_secret=os.environ.get("JIUZHU_ID_HASH_SECRET", ""),
            simulations_per_caller=max(1, _int("JIUZHU_SIMULATIONS_PER_CALLER", 2)),
            simulation_timeout_seconds=_float("JIUZHU_SIMULATION_TIMEOUT_SECONDS", 1800.0),
            reform_check_timeout_seconds=_float("JIUZHU_REFORM_CHECK_TIMEOUT_SECONDS", 60.0),
            session_hours=_float("JIUZHU_SESSION_HOURS", 12.0),
            session_idle_minutes=_float("JIUZHU_SESSION_IDLE_MINUTES", 30.0),
            secure_cookies=os.environ.get("JIUZHU_SECURE_COOKIES", "").strip().lower() in ("1", "true", "yes", "on"),
        )

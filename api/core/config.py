"""Service settings: one typed object, read from the environment once at start and passed explicitly.

``Settings.from_env()`` reads and validates every variable (pydantic-settings) when a command starts
(`jiuzhu serve`, `jiuzhu keys`, ...); a bad value is a ``SettingsError`` naming its variable. From there
the object is handed down: to ``create_app``, to the writer and monitor processes and the workers
(multiprocessing spawn arguments), to simulation children (JSON on their stdin, ``to_child``/``from_child``)
and to the reform-checking process. Nothing below a command reads the environment or changes it.
Constructing ``Settings(...)`` directly reads no environment (tests, embeddings): what is passed, else
the defaults (the data directory's default follows XDG, see ``default_data_dir``). The database URL and the ID-hash secret stay out of ``repr`` (logs) and never go on a
command line. docs/service.md documents every variable in its table.
"""

from __future__ import annotations

import os
from dataclasses import field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, ConfigDict, Field, TypeAdapter, ValidationError, create_model, field_validator
from pydantic.dataclasses import dataclass
from pydantic_settings import BaseSettings, SettingsConfigDict

MIB = 1024 * 1024


class SettingsError(ValueError):
    """A setting's value is invalid: ``variable`` names the environment variable (or option) to fix."""

    def __init__(self, variable: str, zh: str, en: str):
        kind = "选项" if variable.startswith("--") else "环境变量"
        super().__init__(f"{kind} {variable} {zh} / {variable}: {en}")
        self.variable, self.zh, self.en = variable, zh, en


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


def _upper(v: Any) -> Any:
    return v.strip().upper() if isinstance(v, str) else v


_Count = Annotated[int, Field(ge=1)]
_Seconds = Annotated[float, Field(gt=0)]


class _Invalid(ValueError):
    """A validator's refusal, worded in both languages for ``SettingsError``."""

    def __init__(self, zh: str, en: str):
        super().__init__(en)
        self.zh, self.en = zh, en


@dataclass(frozen=True, config=ConfigDict(extra="forbid"))
class Settings:
    """Every setting, typed and validated (a pydantic dataclass: ``dataclasses.replace`` validates too)."""

    data_dir: Path = field(default_factory=default_data_dir)
    database_url: str = field(default="", repr=False)  # DATABASE_URL; may hold a password
    home: Path | None = None  # rules/ and policies/; None: engine's default
    max_body_bytes: _Count = MIB
    max_batch_body_bytes: _Count = 32 * MIB
    max_batch_households: _Count = 1000
    # What a batch may cost, not only what it may send: members across its households, and fewer when
    # the answer carries every rule's reason (about 10 kB of JSON per member, against 2.4 kB without).
    max_batch_members: _Count = 20_000
    max_explained_batch_members: _Count = 5_000
    key_cache_seconds: Annotated[float, Field(ge=0)] = 5.0
    sqlite_synchronous: Annotated[Literal["FULL", "NORMAL", "EXTRA"], BeforeValidator(_upper)] = "FULL"
    # Reform simulations: populations a caller may name, where jobs write their outputs, how many run at once
    # (across every worker process), and how long a running job may go without a heartbeat before it counts
    # as interrupted.
    populations_dir: Path | None = None  # None: data_dir / "populations"
    simulations_dir: Path | None = None  # None: data_dir / "simulations"
    simulation_concurrency: int = 1
    simulation_poll_seconds: _Seconds = 2.0
    simulation_stale_seconds: _Seconds = 30.0
    # Where finished simulations' files are kept for every replica to serve (api/simulations/files.py):
    # "db" (the database) or "dir:/absolute/path" (a directory every replica mounts). simulations_dir is
    # then only the running job's scratch.
    simulation_store: str = "db"
    # A Dask scheduler (tcp://host:port) that runs the partitions of a partitioned population
    # (engine/batch/fanout.py); empty: every simulation runs in its own process here. Its workers must
    # see the populations directory and the rule files at the same paths as the replicas.
    dask_scheduler: str = ""
    # Keys the hashes stored next to masked resident ID numbers; empty: made on first start and kept in
    # the database (api/storage/id_secret.py). Set it only to share one value across databases; never change it.
    id_hash_secret: str = field(default="", repr=False)
    # What one caller may hold of the simulation queue (queued or running jobs of one key), how long one job
    # may run before its process is killed and the job fails, and how long checking a reform may take.
    simulations_per_caller: int = 2
    simulation_timeout_seconds: _Seconds = 1800.0
    reform_check_timeout_seconds: _Seconds = 60.0
    # People's sign-in sessions (api/accounts/): how long one lasts at most, how long it may sit idle, and
    # whether the site is served over HTTPS (then the cookie is marked Secure and never sent in clear).
    session_hours: _Seconds = 12.0
    session_idle_minutes: _Seconds = 30.0
    secure_cookies: bool = False
    # Whether `jiuzhu serve` (and an embedded app) brings the schema to head when it starts. None: yes on
    # SQLite (one machine, one service), no on PostgreSQL, where replicas must not race: there the
    # operator runs `jiuzhu db upgrade` first (api/cli/database.py).
    auto_migrate: bool | None = None
    # GET /metrics (Prometheus) answers without a key only when this is set (a scraper on a private
    # network); otherwise it takes an admin key, like the other operator endpoints.
    metrics_public: bool = False
    # Log lines as text (a terminal) or JSON objects (a log shipper: api/core/logformat.py), and whether
    # each HTTP request writes one line (request id, key or user id, locality, route, status, duration).
    log_format: Literal["text", "json"] = "text"
    access_log: bool = False
    # The monitor: households whose rule sessions stay in memory, and events applied per turn.
    monitor_sessions: _Count = 2000
    monitor_slice_events: _Count | None = None  # None: api/monitoring/turns.py's default
    # Monitoring streams on Redis (api/streams/): where they are (empty: POST /v1/events/bulk answers 503),
    # how many partitions a first publisher makes, the consumer group whose backlog bounds publishing, that
    # bound (un-acknowledged events per partition), and the events one bulk request may carry.
    redis_url: str = field(default="", repr=False)  # may hold a password
    stream_partitions: Annotated[int, Field(ge=1, le=4096)] = 8
    stream_group: Annotated[str, Field(min_length=1, max_length=64)] = "monitor"
    stream_max_unacked: _Count = 10_000
    max_bulk_events: _Count = 10_000
    # Set by `jiuzhu serve` for its workers (never read from the environment): the Unix sockets of the
    # writer and monitor processes. Empty: the worker writes and monitors in its own process.
    writer_socket: str = ""
    monitor_socket: str = ""

    @field_validator("simulation_concurrency", "simulations_per_caller", mode="after")
    @classmethod
    def _at_least_one(cls, v: int) -> int:
        return max(1, v)  # as before: 0 or less means one

    @field_validator("simulation_store", mode="after")
    @classmethod
    def _store_spec(cls, v: str) -> str:
        kind, colon, path = v.strip().partition(":")
        if (kind == "db" and not colon) or (kind == "dir" and Path(path).is_absolute()):
            return v.strip()
        raise _Invalid("应为 db 或 dir:/绝对路径", "must be db or dir:/absolute/path")

    @field_validator("dask_scheduler", mode="after")
    @classmethod
    def _scheduler_address(cls, v: str) -> str:
        v = v.strip()
        scheme, sep, rest = v.partition("://")
        host, colon, port = rest.rpartition(":")
        if not v or (sep and scheme in ("tcp", "tls") and host and colon and port.isdigit() and 0 < int(port) < 65536):
            return v
        raise _Invalid("应为 tcp://主机:端口（Dask 调度器地址）或留空", "must be tcp://host:port (a Dask scheduler) or empty")

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
    def migrates_on_start(self) -> bool:
        return self.is_sqlite if self.auto_migrate is None else self.auto_migrate

    @property
    def sqlite_path(self) -> str | None:
        """The database file, for an SQLite file database."""
        if not self.is_sqlite:
            return None
        path = self.url.removeprefix("sqlite:///")
        return path if path and path != ":memory:" else None

    @classmethod
    def from_env(cls, **given: Any) -> Settings:
        """Every setting from the environment, read here once; ``given`` (command-line options) wins
        over it, None meaning "not given". Raises SettingsError naming the first bad variable."""
        values = {k: v for k, v in dict(_Environment()).items() if v is not None}
        values.update({k: v for k, v in given.items() if v is not None})
        try:
            return cls(**values)
        except ValidationError as e:
            raise _settings_error(e, given) from None

    def to_child(self) -> bytes:
        """For a child process, on its stdin or in its spawn arguments (never its command line): every
        field, secrets included (``repr``, hence logs, leaves them out; this must not)."""
        return _ADAPTER.dump_json(self)

    @classmethod
    def from_child(cls, data: bytes | str) -> Settings:
        """The parent's settings, whatever this process's environment says."""
        return _ADAPTER.validate_json(data)


_ADAPTER = TypeAdapter(Settings)
_NOT_FROM_ENV = ("writer_socket", "monitor_socket")
_SECRET = ("database_url", "id_hash_secret", "redis_url")
_ALIASES = {"database_url": "DATABASE_URL"}


def variable(name: str) -> str:
    """The environment variable of a setting."""
    return _ALIASES.get(name, f"JIUZHU_{name.upper()}")


# The reader (pydantic-settings): which variables are set, under the names above; blank ones count as unset.
# It takes the strings as they are: Settings itself converts and checks them, so there is one declaration.
_Environment = create_model(
    "_Environment",
    __base__=BaseSettings,
    __config__=None,
    **{
        name: (Any, Field(None, validation_alias=_ALIASES.get(name)))
        for name in Settings.__pydantic_fields__
        if name not in _NOT_FROM_ENV
    },
)
_Environment.model_config = SettingsConfigDict(env_prefix="JIUZHU_", env_ignore_empty=True, extra="ignore")
_Environment.model_rebuild(force=True)


_KINDS = {
    "int_parsing": ("应为整数", "must be an integer"),
    "int_from_float": ("应为整数", "must be an integer"),
    "float_parsing": ("应为数值", "must be a number"),
    "greater_than": ("应大于0", "must be greater than 0"),
}


def _settings_error(e: ValidationError, given: dict) -> SettingsError:
    err = e.errors()[0]
    name = str(err["loc"][0]) if err["loc"] else ""
    where = f"--{name.replace('_', '-')}" if given.get(name) is not None else variable(name)  # the option won
    zh, en = _KINDS.get(err["type"], ("取值无效", err["msg"]))
    if err["type"] == "literal_error":
        zh, en = f"只能为 {err['ctx']['expected']}", f"must be {err['ctx']['expected']}"
    if isinstance(why := err.get("ctx", {}).get("error"), _Invalid):
        zh, en = why.zh, why.en
    if err["type"] == "greater_than_equal":
        zh, en = f"应不小于 {err['ctx']['ge']}", f"must be at least {err['ctx']['ge']}"
    if name not in _SECRET:
        en += f", got {err.get('input')!r}"
    return SettingsError(where, zh, en)

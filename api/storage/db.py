"""Database engines and migrations: an SQLite file by default, PostgreSQL when DATABASE_URL says so."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url

from api.core.config import Settings

MIGRATIONS = Path(__file__).parent / "migrations"
_PG_MIGRATION_LOCK = 0x6A69757A  # any constant; serialises concurrent first starts


def make_engine(settings: Settings) -> Engine:
    url = settings.url
    if not url.startswith("sqlite"):
        return create_engine(url, pool_size=8, max_overflow=8, pool_pre_ping=True)

    path = make_url(url).database
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
    synchronous = settings.sqlite_synchronous

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record) -> None:
        # Let SQLAlchemy, not the sqlite3 module, say when transactions begin (see _on_begin).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit reaches the disk before the answer leaves; group commit pays one fsync per batch.
        cur.execute(f"PRAGMA synchronous={synchronous}")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn) -> None:
        # Writers take the write lock up front: a deferred transaction that later needs it can fail
        # with SQLITE_BUSY instead of waiting, when several worker processes share the file.
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("write") else "BEGIN")

    return engine


def writing(engine: Engine):
    """A connection context whose transaction may write (BEGIN IMMEDIATE on SQLite)."""
    return engine.connect().execution_options(write=True)


def _alembic_config():
    from alembic.config import Config  # alembic is heavy and needed only to migrate: loaded on use

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def migrate(engine: Engine, revision: str = "head") -> bool:
    """Bring the schema to ``revision``; safe to call from several processes at once: they queue on a
    lock (PostgreSQL: an advisory lock; SQLite: the write lock of BEGIN IMMEDIATE), and whoever comes
    after the first finds the schema there. Returns whether this call changed the schema."""
    from alembic import command

    cfg = _alembic_config()
    with writing(engine) as conn, conn.begin():
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
        before = current_revision(conn)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
        return current_revision(conn) != before


class SchemaBehind(RuntimeError):
    """The database's schema is not the code's: `jiuzhu db upgrade` brings it there."""

    def __init__(self, current: str | None, head: str | None):
        self.current, self.head = current, head
        super().__init__(
            f"数据库结构版本为 {current or '（空）'}，本程序需要 {head}；请先运行 jiuzhu db upgrade / "
            f"the database schema is at {current or '(empty)'}, this program needs {head}: run jiuzhu db upgrade first"
        )


def require_head(engine: Engine) -> None:
    """Raise SchemaBehind unless the schema is at head (no lock, nothing written)."""
    current, head = current_revision(engine), head_revision()
    if current != head:
        raise SchemaBehind(current, head)


def current_revision(bind: Engine | Connection) -> str | None:
    """The schema's revision, read on ``bind`` (a connection: inside its transaction)."""
    from alembic.runtime.migration import MigrationContext

    if isinstance(bind, Connection):
        return MigrationContext.configure(bind).get_current_revision()
    with bind.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


class BulkInsert:
    """An INSERT (or upsert) compiled once for a dialect, whose rows go straight to the driver's
    ``executemany``, converted only where their column types need it (dates and times on SQLite).

    SQLAlchemy's own ``execute(stmt, rows)`` builds and processes every row's parameters in Python
    (``construct_params``): about half the CPU of a bulk replay's writes, for rows that are already
    plain values. Same statement text, same stored values; rows are dicts keyed by column name
    and must give every column.
    """

    def __init__(self, stmt, dialect):
        compiled = stmt.compile(dialect=dialect)
        self.sql = compiled.string
        table = stmt.table
        names = [c.key for c in table.columns]
        processors = {}
        for c in table.columns:
            proc = c.type.dialect_impl(dialect).bind_processor(dialect)
            if proc is not None:
                processors[c.key] = proc
        self.processors = processors
        order = compiled.positiontup  # positional paramstyles (SQLite's qmark): the order of the ?s
        self.order = list(order) if order is not None else None
        if set(self.order or compiled.binds) != set(names):
            raise ValueError(f"BulkInsert: {self.sql!r} does not bind exactly the columns of {table.name}")

    def params(self, rows: list[dict]) -> list:
        procs = self.processors.items()
        memo: dict = {}  # a batch repeats its timestamps and dates: convert each value once

        def convert(r: dict) -> dict:
            r = dict(r)
            for k, p in procs:
                v = r[k]
                try:
                    r[k] = memo[k, v]
                except KeyError:
                    r[k] = memo[k, v] = p(v)
            return r

        converted = map(convert, rows) if procs else rows
        if self.order is None:
            return list(converted)  # named paramstyles (PostgreSQL's pyformat) take the dicts as they are
        order = self.order
        return [tuple([r[k] for k in order]) for r in converted]

    def execute(self, conn, rows: list[dict]):
        """Run it for ``rows`` in ``conn``'s transaction; returns the driver's cursor result."""
        return conn.exec_driver_sql(self.sql, self.params(rows))

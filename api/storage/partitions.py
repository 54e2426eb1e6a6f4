"""Monthly range partitions of ``determinations`` on PostgreSQL (`jiuzhu db partition-determinations`,
`jiuzhu db add-partitions`); docs/deployment.md says when and how.

An opt-in step, not an Alembic migration: converting copies the whole table under an exclusive lock
(a maintenance window once the table is large; instant on a new deployment), and the partitioned
table keeps idempotency keys unique per month only, since PostgreSQL cannot enforce a unique index
across partitions unless it holds the partition key. The service's own check (the writer looks the
key up before it inserts) still finds a retry from any month; only two first attempts racing across
a month's boundary could both be recorded.

Layout: ``determinations`` partitioned by range of ``created_at`` (UTC months), one partition
``determinations_YYYYMM`` per month and ``determinations_default`` for rows of a month not made yet
(a late monthly job never makes a write fail); the primary key is (id, created_at). The indexes are the
model's (api/storage/models.py): non-unique ones on the parent, which PostgreSQL copies to every
partition; unique ones on each partition. Adding a month moves that month's rows out of the default.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, text
from sqlalchemy.schema import CreateIndex

from api.storage.db import _PG_MIGRATION_LOCK, writing
from api.storage.models import DeterminationRecord

TABLE = "determinations"
DEFAULT = f"{TABLE}_default"
_INDEXES = sorted(DeterminationRecord.__table__.indexes, key=lambda i: i.name)


class PartitionError(RuntimeError):
    """The database cannot be partitioned as asked (not PostgreSQL, or not partitioned yet)."""


@dataclass(frozen=True)
class Converted:
    rows: int
    partitions: list[str]


def month_of(day: dt.date) -> dt.date:
    return day.replace(day=1)


def next_month(month: dt.date) -> dt.date:
    return (month.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


def partition_name(month: dt.date) -> str:
    return f"{TABLE}_{month:%Y%m}"


def _months(first: dt.date, last: dt.date) -> list[dt.date]:
    out, m = [], month_of(first)
    while m <= last:
        out.append(m)
        m = next_month(m)
    return out


def _begin(engine: Engine):
    if engine.dialect.name != "postgresql":
        raise PartitionError("只有 PostgreSQL 数据库可以分区 / only a PostgreSQL database can be partitioned")
    return writing(engine)


def _lock(conn: Connection) -> None:
    # The migrations' lock: no `jiuzhu db upgrade` and no other partitioning run meanwhile.
    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})


def is_partitioned(conn: Connection) -> bool:
    kind = conn.execute(text("SELECT relkind FROM pg_class WHERE oid = to_regclass(:t)"), {"t": TABLE}).scalar()
    return kind == "p"


def partitions(conn: Connection) -> list[str]:
    """The partitions of ``determinations``, by name."""
    rows = conn.execute(
        text("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = to_regclass(:t)"),
        {"t": TABLE},
    )
    return sorted(r[0] for r in rows)


def _unique_indexes(conn: Connection, partition: str) -> None:
    for index in _INDEXES:
        if index.unique:
            cols = ", ".join(c.name for c in index.columns)
            conn.execute(
                text(f"CREATE UNIQUE INDEX IF NOT EXISTS {index.name}_{partition[len(TABLE) + 1 :]} ON {partition} ({cols})")
            )


def _bounds(month: dt.date) -> str:
    return f"FROM ('{month:%Y-%m-%d} 00:00:00+00') TO ('{next_month(month):%Y-%m-%d} 00:00:00+00')"


def _add_month(conn: Connection, month: dt.date, parent: str = TABLE) -> bool:
    """One month's partition, unless it exists; rows of that month in the default partition move into it."""
    name = partition_name(month)
    if conn.execute(text("SELECT to_regclass(:n)"), {"n": name}).scalar() is not None:
        return False
    lo, hi = dt.datetime.combine(month, dt.time(), dt.UTC), dt.datetime.combine(next_month(month), dt.time(), dt.UTC)
    # PostgreSQL refuses a new partition while the default holds rows of its range: take them out first.
    conn.execute(text(f"CREATE TEMP TABLE _moving (LIKE {parent}) ON COMMIT DROP"))
    conn.execute(
        text(
            f"WITH m AS (DELETE FROM {DEFAULT} WHERE created_at >= :lo AND created_at < :hi RETURNING *) INSERT INTO _moving SELECT * FROM m"
        ),
        {"lo": lo, "hi": hi},
    )
    conn.execute(text(f"CREATE TABLE {name} PARTITION OF {parent} FOR VALUES {_bounds(month)}"))
    conn.execute(text(f"INSERT INTO {parent} SELECT * FROM _moving"))
    conn.execute(text("DROP TABLE _moving"))
    return True


def add_partitions(engine: Engine, months: int, today: dt.date | None = None) -> list[str]:
    """Partitions for this month and the next ``months``, where missing (the monthly job); returns those made."""
    today = today or dt.datetime.now(dt.UTC).date()
    with _begin(engine) as conn, conn.begin():
        _lock(conn)
        if not is_partitioned(conn):
            raise PartitionError(
                "determinations 表尚未分区；请先运行 jiuzhu db partition-determinations / "
                "determinations is not partitioned yet: run jiuzhu db partition-determinations first"
            )
        made = []
        for month in _months(today, _plus_months(month_of(today), months)):
            if _add_month(conn, month):
                made.append(partition_name(month))
                _unique_indexes(conn, partition_name(month))
        return made


def partition_determinations(engine: Engine, months_ahead: int = 3, today: dt.date | None = None) -> Converted | None:
    """Convert ``determinations`` into the partitioned layout in one transaction (None: it already is).
    Partitions cover every month holding rows, through ``months_ahead`` months after this one."""
    today = today or dt.datetime.now(dt.UTC).date()
    with _begin(engine) as conn, conn.begin():
        _lock(conn)
        if is_partitioned(conn):
            return None
        conn.execute(text(f"LOCK TABLE {TABLE} IN ACCESS EXCLUSIVE MODE"))
        first = conn.execute(text(f"SELECT min(created_at) FROM {TABLE}")).scalar()
        first = min(first.astimezone(dt.UTC).date(), today) if first is not None else today
        last = _plus_months(month_of(today), months_ahead)
        new = f"{TABLE}_partitioned"
        conn.execute(
            text(
                f"CREATE TABLE {new} (LIKE {TABLE} INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE) PARTITION BY RANGE (created_at)"
            )
        )
        conn.execute(text(f"CREATE TABLE {DEFAULT} PARTITION OF {new} DEFAULT"))
        for month in _months(first, last):
            _add_month(conn, month, parent=new)
        # Indexes after the copy: building them once is faster than keeping them up row by row.
        copied = conn.execute(text(f"INSERT INTO {new} SELECT * FROM {TABLE}")).rowcount
        if copied != conn.execute(text(f"SELECT count(*) FROM {TABLE}")).scalar():
            raise PartitionError("copy incomplete")  # cannot happen under the lock; the transaction rolls back
        conn.execute(text(f"DROP TABLE {TABLE}"))
        conn.execute(text(f"ALTER TABLE {new} RENAME TO {TABLE}"))
        conn.execute(text(f"ALTER TABLE {TABLE} ADD CONSTRAINT {TABLE}_pkey PRIMARY KEY (id, created_at)"))
        for index in _INDEXES:
            if not index.unique:
                conn.execute(CreateIndex(index))
        names = partitions(conn)
        for name in names:
            _unique_indexes(conn, name)
        return Converted(copied, names)


def _plus_months(month: dt.date, n: int) -> dt.date:
    for _ in range(n):
        month = next_month(month)
    return month

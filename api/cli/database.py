"""``jiuzhu db``: the database's schema as an explicit step of a deployment.

Replicas of ``jiuzhu serve`` on one PostgreSQL do not migrate when they start (api/core/config.py,
``auto_migrate``); the operator runs ``jiuzhu db upgrade`` once per release. It takes the migration
lock (api/storage/db.py), so two of them started at once never race: one migrates, the other waits
and finds the schema at head.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from api.cli.service import _db_options, _redact, _settings
from api.storage import partitions
from api.storage.db import SchemaBehind, current_revision, head_revision, make_engine, migrate, require_head


@click.group()
def db() -> None:
    """数据库结构（迁移）/ the database schema (migrations)."""


@db.command()
@_db_options
def upgrade(data_dir: Path | None, database_url: str | None) -> None:
    """把数据库结构升级到本程序的版本（加锁，可多处同时运行）/ bring the schema to this program's version, under a lock."""
    settings = _settings(data_dir, database_url)
    try:
        engine = make_engine(settings)
        changed = migrate(engine)
        now = current_revision(engine)
        engine.dispose()
    except Exception as e:
        click.echo(f"无法升级数据库 / cannot upgrade the database: {e}", err=True)
        sys.exit(4)
    where = _redact(settings.url)
    if changed:
        click.echo(f"数据库已升级到 {now} / schema upgraded to {now}: {where}")
    else:
        click.echo(f"数据库已是最新版本 {now}，无需升级 / schema already at {now}: {where}")


@db.command()
@_db_options
def current(data_dir: Path | None, database_url: str | None) -> None:
    """显示数据库结构版本；落后于本程序时退出码为 1 / show the schema's version; exit 1 when behind."""
    settings = _settings(data_dir, database_url)
    try:
        engine = make_engine(settings)
        now = current_revision(engine)
        engine.dispose()
    except Exception as e:
        click.echo(f"无法读取数据库 / cannot read the database: {e}", err=True)
        sys.exit(4)
    head = head_revision()
    click.echo(f"{now or '（空）'}  本程序 / this program: {head}")
    sys.exit(0 if now == head else 1)


def _postgres_engine(data_dir: Path | None, database_url: str | None):
    """The configured PostgreSQL database at the code's schema; exit 2 on SQLite or a schema behind."""
    settings = _settings(data_dir, database_url)
    if settings.is_sqlite:
        click.echo(
            "按月分区只用于 PostgreSQL；SQLite 数据库保持不变 / monthly partitions are for PostgreSQL only: "
            "the SQLite database is left as it is (set DATABASE_URL or --database-url)",
            err=True,
        )
        sys.exit(2)
    try:
        engine = make_engine(settings)
        require_head(engine)
    except SchemaBehind as e:
        click.echo(str(e), err=True)
        sys.exit(2)
    except Exception as e:
        click.echo(f"无法打开数据库 / cannot open the database: {e}", err=True)
        sys.exit(4)
    return engine, _redact(settings.url)


@db.command("partition-determinations")
@click.option(
    "--months-ahead",
    default=3,
    show_default=True,
    type=click.IntRange(0, 120),
    help="除已有数据的月份外，再预建本月之后的几个月 / months after this one to create partitions for",
)
@_db_options
def partition_determinations(months_ahead: int, data_dir: Path | None, database_url: str | None) -> None:
    """把认定记录表改为按月分区（仅 PostgreSQL；复制全表并锁表，请在维护时段运行）/ partition determinations by month.

    一次性操作：在一个事务中建立分区表、复制全部记录、替换原表；已分区时不做任何事。
    One step, in one transaction: build the partitioned table, copy every row, swap it in; a no-op once done.
    """
    engine, where = _postgres_engine(data_dir, database_url)
    try:
        done = partitions.partition_determinations(engine, months_ahead)
    except Exception as e:
        click.echo(f"分区未完成，数据库未改变 / partitioning failed, nothing changed: {e}", err=True)
        sys.exit(4)
    finally:
        engine.dispose()
    if done is None:
        click.echo(f"determinations 已是按月分区表，无需操作 / already partitioned: {where}")
        return
    click.echo(
        f"determinations 已按月分区：复制 {done.rows} 条记录，{len(done.partitions)} 个分区"
        f"（{done.partitions[0]} … {done.partitions[-1]}）/ partitioned: {done.rows} rows, {len(done.partitions)} partitions: {where}"
    )


@db.command("add-partitions")
@click.option(
    "--months",
    default=3,
    show_default=True,
    type=click.IntRange(0, 120),
    help="建立本月及之后几个月的分区（已有的跳过）/ create partitions for this month and the next N",
)
@_db_options
def add_partitions(months: int, data_dir: Path | None, database_url: str | None) -> None:
    """为认定记录表预建月分区（每月运行一次，如 systemd 定时器）/ create the coming months' partitions (a monthly job)."""
    engine, where = _postgres_engine(data_dir, database_url)
    try:
        made = partitions.add_partitions(engine, months)
    except partitions.PartitionError as e:
        click.echo(str(e), err=True)
        sys.exit(2)
    except Exception as e:
        click.echo(f"无法建立分区 / cannot add partitions: {e}", err=True)
        sys.exit(4)
    finally:
        engine.dispose()
    if made:
        click.echo(f"已建立分区 / created: {', '.join(made)}  ({where})")
    else:
        click.echo(f"所需分区都已存在 / every partition exists already ({where})")

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
from api.storage.db import current_revision, head_revision, make_engine, migrate


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

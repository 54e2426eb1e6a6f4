"""``jiuzhu serve`` and ``jiuzhu keys``: the service's commands (joined to `jiuzhu` through the ``jiuzhu.commands`` entry points, pyproject.toml).

Heavy imports (FastAPI, SQLAlchemy) happen inside the commands, so that
``jiuzhu evaluate`` starts as fast as before.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import sys
from pathlib import Path

import click

from api.core.config import Settings, SettingsError
from api.core.metrics import use_directory as use_metrics_directory
from api.processes.server import listen, run_workers
from api.processes.sidecar import supervised
from api.storage.datalock import DataDirInUse, lock_data_dir
from engine import load_rulebook
from engine.cli.params import rules_home
from engine.policies.localities import LocalityError

ROLES = ("window", "caseworker", "policy", "admin")


def _db_options(f):
    f = click.option(
        "--database-url",
        envvar="DATABASE_URL",
        default=None,
        help="数据库地址，如 postgresql://user:pass@host/db（默认：数据目录下的 SQLite 文件）/ database URL",
    )(f)
    f = click.option(
        "--data-dir",
        envvar="JIUZHU_DATA_DIR",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="数据目录（SQLite 文件 jiuzhu.sqlite3 所在），默认 $XDG_DATA_HOME/jiuzhu，即 ~/.local/share/jiuzhu / "
        "data directory (the SQLite file); default $XDG_DATA_HOME/jiuzhu, i.e. ~/.local/share/jiuzhu",
    )(f)
    return f


def _settings(
    data_dir: Path | None, database_url: str | None, home: Path | None = None, access_log: bool | None = None
) -> Settings:
    """The settings, read once here: the options win over the environment. Every process started
    from here gets this object, not the environment (api/core/config.py). A bad value exits 2, naming it."""
    try:
        return Settings.from_env(data_dir=data_dir, database_url=database_url or None, home=home, access_log=access_log)
    except SettingsError as e:
        click.echo(str(e), err=True)
        sys.exit(2)


def _repo(settings, existing: bool = False, serving: bool = False):
    """The service's database, migrated. ``existing``: for commands that only look at what is there
    (listing keys, alerts), refuse a data directory without a database rather than create an empty one
    (most likely the wrong --data-dir). ``serving``: `jiuzhu serve`, which migrates only where
    ``settings.migrates_on_start`` says so (SQLite by default) and otherwise exits 2 on a schema behind
    the code's, naming `jiuzhu db upgrade`: replicas on one PostgreSQL never race to migrate."""
    from api.storage.db import SchemaBehind, make_engine, migrate, require_head
    from api.storage.repository import Repository

    path = settings.sqlite_path
    if existing and path is not None and not Path(path).is_file():
        click.echo(
            f"在 {settings.data_dir} 没有找到数据库；请先运行 jiuzhu serve 或指定 --data-dir（或 JIUZHU_DATA_DIR）/ "
            f"no database in {settings.data_dir}: run jiuzhu serve first, or pass --data-dir (or JIUZHU_DATA_DIR)",
            err=True,
        )
        sys.exit(2)
    try:
        db = make_engine(settings)  # a malformed --database-url fails here, not at the first connection
        if serving and not settings.migrates_on_start:
            require_head(db)
        else:
            migrate(db)
    except SchemaBehind as e:
        click.echo(f"服务未启动：{e}", err=True)
        sys.exit(2)
    except Exception as e:
        click.echo(f"无法连接或初始化数据库 / cannot open or migrate the database: {e}", err=True)
        sys.exit(4)
    return Repository(db)


@click.command()
@click.option("--host", envvar="JIUZHU_HOST", default="127.0.0.1", show_default=True, help="监听地址 / listen address")
@click.option("--port", envvar="JIUZHU_PORT", default=8000, type=click.IntRange(1, 65535), show_default=True, help="端口 / port")
@click.option(
    "--workers",
    envvar="JIUZHU_WORKERS",
    default=None,
    type=click.IntRange(min=1),
    help="工作进程数，默认为 CPU 核数 / worker processes",
)
@click.option(
    "--access-log/--no-access-log",
    default=None,
    help="逐条请求日志（请求编号、密钥或用户、地区、路由、状态、耗时），默认取 JIUZHU_ACCESS_LOG / one log line per request",
)
@click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="JIUZHU_HOME",
    callback=rules_home,
    help="包含 rules/ 与 policies/ 的目录 / directory holding rules/ and policies/",
)
@_db_options
def serve(
    host: str,
    port: int,
    workers: int | None,
    access_log: bool | None,
    home: Path | None,
    data_dir: Path | None,
    database_url: str | None,
) -> None:
    """启动 HTTP 服务（默认使用内置 SQLite）/ start the HTTP service."""
    settings = _settings(data_dir, database_url, home, access_log)
    # Refuse a second service before anything is created or printed (no admin key in a directory it
    # will not serve). The lock is held until this process ends.
    n = workers or os.cpu_count() or 1
    sockets = _listen(host, port, n)
    lock = _lock(settings)  # noqa: F841

    book = load_rulebook(settings.home)
    if book.errors:
        click.echo("规则或政策文件有错误，服务未启动 / rule or policy files have errors:", err=True)
        for err in book.errors:
            click.echo(f"  {err}", err=True)
        sys.exit(3)

    repo = _repo(settings, serving=True)
    from api.auth.keys import Role

    if repo.count_active_keys() == 0:
        row, secret = repo.create_key("初始管理员", Role.ADMIN)
        click.echo("首次启动：已创建管理员密钥（只显示这一次，请妥善保存）/ first start: admin key created (shown once):")
        click.echo(f"  JIUZHU_ADMIN_KEY={secret}")
        click.echo(
            f"  key_id={row.id}  用它创建窗口密钥 / use it to create keys: jiuzhu keys create --role window --name 城关镇窗口"
        )
    repo.engine.dispose()

    where = settings.url if not settings.is_sqlite else settings.url.removeprefix("sqlite:///")
    click.echo(f"jiuzhu 服务 http://{host}:{port}  文档 /docs  工作进程 {n}  数据库 {_redact(where)}  规则版本 {book.version}")
    sys.stdout.flush()

    from api.processes.monitor import running as _monitor_process

    use_metrics_directory(settings.data_dir)  # before any child starts: they all write their metrics there
    with _writer_process(settings) as writer_socket, _monitor_process(settings) as monitor_socket:
        # The workers reach the two helper processes through these sockets: given to them with the rest.
        served = dataclasses.replace(settings, writer_socket=writer_socket, monitor_socket=monitor_socket)
        status = run_workers(sockets, served)
    sys.exit(status)


def _lock(settings):
    """One service per SQLite data directory (api/storage/datalock.py); exit 4 naming the other service's PID.
    With PostgreSQL several services may share the database, so nothing is locked."""
    if settings.sqlite_path is None:
        return None
    try:
        return lock_data_dir(settings.data_dir)
    except DataDirInUse as e:
        click.echo(
            f"数据目录 {settings.data_dir} 已被另一个 jiuzhu serve（进程 {e.pid}）使用，服务未启动；"
            f"请先停止它，或用 --data-dir 指定另一个目录 / the data directory {settings.data_dir} is in use by "
            f"another jiuzhu serve (pid {e.pid}); stop it or choose another --data-dir",
            err=True,
        )
        sys.exit(4)
    except OSError as e:
        click.echo(f"无法使用数据目录 {settings.data_dir} / cannot use the data directory: {e}", err=True)
        sys.exit(4)


def _listen(host: str, port: int, workers: int):
    try:
        return listen(host, port, workers)
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            click.echo(
                f"端口 {port} 已被占用（{host}:{port}，可能已有 jiuzhu serve 在运行），服务未启动；"
                f"请用 --port 换一个端口 / port {port} is already in use on {host} (another jiuzhu serve?); "
                "choose another --port",
                err=True,
            )
        else:
            click.echo(f"无法监听 {host}:{port} / cannot listen on {host}:{port}: {e}", err=True)
        sys.exit(4)


def _writer_process(settings: Settings):
    """Run the writer process (see api/processes/writer.py) for the workers; restart it if it dies;
    stop it after them (SIGTERM: it commits what is queued, then exits). Yields its socket's path."""
    from api.processes.writer import run_writer

    return supervised(run_writer, settings, "writer", "写入进程 / the writer process", 60)


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url


@click.group()
def keys() -> None:
    """API 密钥：创建、列出、撤销 / API keys."""


@keys.command("create")
@click.option("--role", type=click.Choice(ROLES), required=True, help="window 窗口 / caseworker 经办 / policy 政策 / admin 管理")
@click.option("--name", required=True, help="使用方名称，如 城关镇窗口 / who uses the key")
@click.option(
    "--locality",
    default="100000",
    show_default=True,
    help="权限范围：行政区划代码，含其下辖地区（210102 和平区，210000 辽宁省，100000 全国）/ scope: a division code and its subtree",
)
@_db_options
def keys_create(role: str, name: str, locality: str, data_dir: Path | None, database_url: str | None) -> None:
    """创建密钥；密钥全文只显示这一次 / create a key (shown once)."""

    from api.auth.keys import Role, Scope

    name = name.strip()
    if not name or len(name) > 200:
        click.echo("--name 不能为空且不超过200字 / --name must be 1-200 characters", err=True)
        sys.exit(2)
    try:
        scope = Scope.of(locality.strip())
    except LocalityError as e:
        click.echo(f"--locality: {e.zh}（请使用 GB/T 2260 的6位代码）/ {e.en}", err=True)
        sys.exit(2)
    repo = _repo(_settings(data_dir, database_url))
    row, secret = repo.create_key(name, Role(role), scope)
    click.echo(secret)
    click.echo(
        f"已创建 {row.id}（{role}，{name}，范围 {scope.code} {scope.label}）。密钥只显示这一次 / created; the key is shown only once",
        err=True,
    )


@keys.command("list")
@_db_options
def keys_list(data_dir: Path | None, database_url: str | None) -> None:
    """列出全部密钥（不显示密钥全文）/ list keys."""
    from api.evaluation.records import iso

    repo = _repo(_settings(data_dir, database_url), existing=True)
    rows = repo.list_keys()
    if not rows:
        click.echo("（没有密钥）/ no keys")
        return
    click.echo(f"{'key_id':<16} {'role':<11} {'locality':<9} {'prefix':<12} {'created_at':<28} {'revoked_at':<28} name")
    for k in rows:
        revoked = iso(k.revoked_at) if k.revoked_at else "-"
        click.echo(f"{k.id:<16} {k.role:<11} {k.locality:<9} {k.prefix + '…':<12} {iso(k.created_at):<28} {revoked:<28} {k.name}")


@keys.command("revoke")
@click.argument("key_id")
@_db_options
def keys_revoke(key_id: str, data_dir: Path | None, database_url: str | None) -> None:
    """撤销密钥（运行中的服务数秒内生效）/ revoke a key.

    KEY_ID：密钥编号，如 k_0123456789ab（见 jiuzhu keys list）/ the key's id, as jiuzhu keys list shows it.
    """
    repo = _repo(_settings(data_dir, database_url), existing=True)
    row = repo.revoke_key(key_id)
    if row is None:
        click.echo(f"未找到密钥 {key_id} / no such key", err=True)
        sys.exit(1)
    click.echo(f"已撤销 {row.id}（{row.role}，{row.name}）/ revoked")

"""``jiuzhu users``: people's accounts from the command line (joined to `jiuzhu` through the
``jiuzhu.commands`` entry points, pyproject.toml)."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import click

from api.cli.service import ROLES, _db_options, _repo, _settings
from engine.policies.localities import LocalityError

from . import passwords


def _accounts(data_dir: Path | None, database_url: str | None, existing: bool = False):
    # Loaded on use: api.auth.keys brings FastAPI and the store SQLAlchemy, and every `jiuzhu` command loads this module.
    from .store import Accounts

    settings = _settings(data_dir, database_url)
    repo = _repo(settings, existing=existing)
    return Accounts(
        repo.engine,
        lifetime=dt.timedelta(hours=settings.session_hours),
        idle=dt.timedelta(minutes=settings.session_idle_minutes),
    )


def _when(ts: dt.datetime | None) -> str:
    if ts is None:
        return "-"
    ts = ts if ts.tzinfo is not None else ts.replace(tzinfo=dt.UTC)  # SQLite hands them back without a zone
    return ts.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@click.group()
def users() -> None:
    """登录账户（经办人员等使用网页工作台）：创建、列出、停用 / people's accounts for the workbench."""


@users.command("create")
@click.option("--name", required=True, help="登录名，如 张三 / the name the person signs in with")
@click.option("--role", type=click.Choice(ROLES), required=True, help="window 窗口 / caseworker 经办 / policy 政策 / admin 管理")
@click.option(
    "--locality",
    required=True,
    help="权限范围：行政区划代码，含其下辖地区（210102 和平区，210000 辽宁省，100000 全国）/ scope: a division code and its subtree",
)
@click.option(
    "--generate-password",
    is_flag=True,
    help="生成随机密码并显示这一次（默认：提示输入两次，输入时不显示）/ generate a password and print it once",
)
@_db_options
def users_create(
    name: str, role: str, locality: str, generate_password: bool, data_dir: Path | None, database_url: str | None
) -> None:
    """创建账户 / create an account."""
    from .store import AccountError, Role, Scope, clean_name  # loaded on use: FastAPI and SQLAlchemy, as above

    # Every typo is refused before the database is opened (or created in the wrong --data-dir).
    try:
        scope = Scope.of(locality.strip())
    except LocalityError as e:
        click.echo(f"--locality: {e.zh}（请使用 GB/T 2260 的6位代码）/ {e.en}", err=True)
        sys.exit(2)
    try:
        name = clean_name(name)
    except AccountError as e:
        click.echo(f"--{e.field}: {e.zh} / {e.en}", err=True)
        sys.exit(2)
    if generate_password:
        password = passwords.generate_password()
    else:
        password = click.prompt("密码 / password", hide_input=True, confirmation_prompt="再输入一次 / repeat", err=True)
        if problem := passwords.password_problem(password):
            click.echo(f"{problem} / the password must be {passwords.MIN_LENGTH}-{passwords.MAX_LENGTH} characters", err=True)
            sys.exit(2)
    store = _accounts(data_dir, database_url)
    try:
        user = store.create_user(name, Role(role), scope, password)
    except AccountError as e:
        click.echo(f"--{e.field}: {e.zh} / {e.en}", err=True)
        sys.exit(2)
    if generate_password:
        click.echo(password)
    click.echo(
        f"已创建账户 {user.name}（{user.id}，{role}，范围 {scope.code} {scope.label}）"
        + ("。密码只显示这一次，请转交本人并提醒其妥善保管" if generate_password else "")
        + " / created",
        err=True,
    )


@users.command("list")
@_db_options
def users_list(data_dir: Path | None, database_url: str | None) -> None:
    """列出全部账户（不显示密码）/ list accounts."""
    rows = _accounts(data_dir, database_url, existing=True).list_users()
    if not rows:
        click.echo("（没有账户）/ no users")
        return
    click.echo(f"{'user_id':<16} {'role':<11} {'locality':<9} {'created_at':<28} {'last_sign_in':<28} {'disabled_at':<28} name")
    for u in rows:
        click.echo(
            f"{u.id:<16} {u.role:<11} {u.locality:<9} {_when(u.created_at):<28} {_when(u.last_sign_in_at):<28} "
            f"{_when(u.disabled_at):<28} {u.name}"
        )


@users.command("disable")
@click.argument("name")
@_db_options
def users_disable(name: str, data_dir: Path | None, database_url: str | None) -> None:
    """停用账户：其登录立即失效，不能再登录 / disable an account; its sessions end at once.

    NAME：登录名或账户编号（见 jiuzhu users list）/ the name or user id, as jiuzhu users list shows it.
    """
    user = _accounts(data_dir, database_url, existing=True).disable_user(name.strip())
    if user is None:
        click.echo(f"未找到账户 {name} / no such user", err=True)
        sys.exit(1)
    click.echo(f"已停用 {user.name}（{user.id}，{user.role}）/ disabled")

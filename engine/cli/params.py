"""Command-line pieces shared by the commands (engine/cli/main.py, engine/cli/batch.py, api/cli/service.py): checks of
their values and loading the engine they evaluate with."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from engine.book.rules import RuleBookError, load_rulebook
from engine.executors.evaluate import Engine


def rules_home(_ctx: click.Context, _param: click.Parameter, value: Path | None) -> Path | None:
    """``--home`` / ``JIUZHU_HOME`` must hold ``rules/`` and ``policies/``: a usage error (exit 2) naming the
    directory, rather than a traceback from the first file the loader opens."""
    if value is None:
        return None
    missing = [d for d in ("rules", "policies") if not (value / d).is_dir()]
    if missing:
        names = "、".join(f"{d}/" for d in missing)
        raise click.BadParameter(f"{value} 中没有 {names} / {value} holds no {' or '.join(missing)} directory")
    return value


def load_engine(home: Path | None, programs: str | None = None) -> Engine:
    """The engine for ``--home`` and ``--programs``; exit 3 listing the errors of broken rule files."""
    subset = {p.strip() for p in programs.split(",") if p.strip()} if programs else None
    try:
        return Engine(load_rulebook(home, programs=subset))
    except RuleBookError as e:
        if subset:
            # A typo in --programs is the caller's mistake, not the rule files'. Only on this path, so a
            # good --programs costs nothing extra; when the files themselves are broken, those are reported.
            book = load_rulebook(home)
            if not book.errors:
                refuse_unknown_programs(book, subset)
        click.echo("规则或政策文件有错误，无法评估 / rule or policy files have errors:", err=True)
        for err in e.errors:
            click.echo(f"  {err}", err=True)
        sys.exit(3)


def refuse_unknown_programs(book, subset: set[str] | None, what: str = "--programs") -> None:
    """Exit 2 naming the unknown program codes of ``what`` (an option or argument) and the valid ones."""
    valid = [p.code for p in book.programs]
    unknown = sorted((subset or set()) - set(valid))
    if unknown:
        click.echo(
            f"{what} 中有未知的项目：{', '.join(unknown)}；可选：{', '.join(valid)} / "
            f"unknown program(s) in {what}: {', '.join(unknown)}; valid: {', '.join(valid)}",
            err=True,
        )
        sys.exit(2)

"""Checks of command-line values shared by the commands (engine/cli.py, engine/batch/cli.py, api/cli.py)."""

from __future__ import annotations

from pathlib import Path

import click


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

"""deploy/: the compose file, the systemd units and the sample environment file cannot be run here;
these checks keep them consistent with the code: YAML and unit files parse, every jiuzhu command
and option they run exists, every JIUZHU_* variable (and DATABASE_URL) they set is one jiuzhu reads."""

from __future__ import annotations

import configparser
import re
import shlex
from pathlib import Path

import click
import pytest
import yaml

from api.core.config import _NOT_FROM_ENV, Settings, variable
from engine.cli.main import main

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
UNITS = sorted((DEPLOY / "systemd").glob("*.service"))


def _envvars(command: click.Command) -> set[str]:
    out = {p.envvar for p in command.params if isinstance(p.envvar, str)}
    if isinstance(command, click.Group):  # listed as click lists them: the service's commands load on demand
        ctx = click.Context(command)
        for name in command.list_commands(ctx):
            out |= _envvars(command.get_command(ctx, name))
    return out


KNOWN = {variable(n) for n in Settings.__pydantic_fields__ if n not in _NOT_FROM_ENV} | _envvars(main)


def _ours(name: str) -> bool:
    return name.startswith("JIUZHU_") or name == "DATABASE_URL"


def _check_command(args: list[str]) -> None:
    """``args`` after the program name: every subcommand and option exists in the `jiuzhu` command."""
    command: click.Command = main
    ctx = click.Context(main)
    rest = list(args)
    while isinstance(command, click.Group) and rest and not rest[0].startswith("-"):
        name = rest.pop(0)
        sub = command.get_command(ctx, name)
        assert sub is not None, f"no command {name!r} in jiuzhu {' '.join(args)}"
        command = sub
    assert not isinstance(command, click.Group), f"jiuzhu {' '.join(args)} names a group, not a command"
    options = {o for p in command.params for o in (*p.opts, *p.secondary_opts)}
    for arg in rest:
        if arg.startswith("--"):
            assert arg.split("=")[0] in options, f"jiuzhu {' '.join(args)}: no option {arg}"


def _compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))


def test_compose_parses_and_has_the_provincial_topology():
    services = _compose()["services"]
    assert {"lb", "serve", "postgres", "redis", "consume", "dask-scheduler", "dask-worker", "migrate"} <= set(services)
    assert services["serve"]["deploy"]["replicas"] >= 2 and services["consume"]["deploy"]["replicas"] >= 2
    # Replicas start only after `jiuzhu db upgrade` has finished, and never migrate themselves.
    assert services["serve"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["migrate"]["command"] == ["db", "upgrade"]
    for name, service in services.items():
        for other in service.get("depends_on", {}):
            assert other in services, f"{name} depends on unknown {other}"
        assert "JIUZHU_AUTO_MIGRATE" not in (service.get("environment") or {})


def test_every_jiuzhu_command_and_variable_in_compose_exists():
    services = _compose()["services"]
    seen = 0
    for service in services.values():
        if service.get("image") != "jiuzhu:latest":
            continue
        env = service.get("environment") or {}
        assert "DATABASE_URL" in env
        unknown = {k for k in env if _ours(k)} - KNOWN
        assert not unknown, f"compose sets variables no setting reads: {unknown}"
        if "entrypoint" not in service:  # the image's entrypoint is `jiuzhu`
            _check_command(service["command"])
            seen += 1
    assert seen >= 3  # migrate, serve, consume


@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
def test_every_unit_parses_and_runs_an_existing_command(unit):
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read_string(unit.read_text(encoding="utf-8"))
    assert parser.has_section("Unit") and parser.has_section("Service")
    start = shlex.split(parser["Service"]["ExecStart"])
    program = Path(start[0]).name
    assert program in ("jiuzhu", "dask")
    if program == "jiuzhu":
        _check_command(start[1:])
    used = set(re.findall(r"\$\{?([A-Z_][A-Z0-9_]*)", unit.read_text(encoding="utf-8")))
    assert not ({v for v in used if _ours(v)} - KNOWN)


def test_the_sample_environment_file_sets_only_known_variables():
    names = {
        line.split("=", 1)[0].lstrip("# ").strip()
        for line in (DEPLOY / "jiuzhu.env.example").read_text(encoding="utf-8").splitlines()
        if re.match(r"#? ?[A-Z_]+=", line)
    }
    assert {"DATABASE_URL", "JIUZHU_LOG_FORMAT", "JIUZHU_KEY_CACHE_SECONDS"} <= names
    assert not ({n for n in names if _ours(n)} - KNOWN)


def test_the_checks_catch_a_misspelt_variable_and_option():
    assert "JIUZHU_KEY_CACHE_SECOND" not in KNOWN and "JIUZHU_LOG_FORMAT" in KNOWN and "JIUZHU_REDIS_URL" in KNOWN
    with pytest.raises(AssertionError):
        _check_command(["serve", "--prot", "8000"])
    with pytest.raises(AssertionError):
        _check_command(["db", "add-partition"])

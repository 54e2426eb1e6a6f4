"""The ``jiuzhu`` command line."""

from __future__ import annotations

import datetime as dt
import sys
from importlib.metadata import entry_points
from pathlib import Path

import click
import orjson

from engine.book.cases import CaseFileError, run_cases
from engine.book.rules import default_root, load_rulebook
from engine.book.yamlio import YamlError
from engine.cli.batch import register as _register_batch
from engine.cli.params import load_engine as _engine
from engine.cli.params import refuse_unknown_programs, rules_home
from engine.executors.codegen import NULLABLE_FACTS
from engine.explain.render import render_report
from engine.monitor.rules import load_monitoring
from engine.policies import localities
from engine.schema.model import InputError

_JSON_OPTS = orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS


def _read_json(path: str):
    try:
        raw = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except OSError as e:
        click.echo(f"{path}: 无法读取 / cannot read: {e.strerror}", err=True)
        sys.exit(2)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        click.echo(f"{path}: 不是有效的 JSON / invalid JSON: {e}", err=True)
        sys.exit(2)


def _input_error(e: InputError, prefix: str = "") -> None:
    click.echo("输入有误，未作评估 / invalid input, nothing evaluated:", err=True)
    for err in e.errors:
        field = err.field if not prefix else prefix if err.field == "(root)" else f"{prefix}.{err.field}"
        click.echo(f"  {field}: {err.message_zh} ({err.message_en})", err=True)


programs_option = click.option(
    "--programs",
    metavar="CODES",
    help="只评估这些项目（逗号分隔，如 dibao,tekun；其依赖的项目一并评估）/ only these programs (comma-separated)",
)
# A household file: click refuses a missing file or a directory (exit 2, with a message) before any work.
input_file = click.argument("file", default="-", type=click.Path(exists=True, dir_okay=False, allow_dash=True))
home_option = click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="JIUZHU_HOME",
    callback=rules_home,
    help="包含 rules/ 与 policies/ 的目录（默认：本项目目录）/ directory holding rules/ and policies/",
)


class _Commands(click.Group):
    """The engine's commands, and those other packages declare in the ``jiuzhu.commands`` entry-point group
    (the HTTP service's serve, keys, monitor, alerts, users, db from api/): they join without the engine
    importing the service, and each is imported only when it is run or listed. Importing the service's
    modules costs about half a second, which every ``jiuzhu batch`` paid before it read a row."""

    def _plugins(self) -> dict:
        return {ep.name: ep for ep in entry_points(group="jiuzhu.commands") if ep.name not in self.commands}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self._plugins()})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        ep = self._plugins().get(cmd_name)
        return ep.load() if ep is not None else None


@click.group(cls=_Commands)
@click.version_option(package_name="jiuzhu")
def main() -> None:
    """jiuzhu 救助：社会救助资格规则引擎 / eligibility rules engine for social assistance."""


@main.command()
@input_file
@home_option
@programs_option
def evaluate(file: str, home: Path | None, programs: str | None) -> None:
    """评估一户（或一个数组中的多户）并输出 JSON 认定结果 / evaluate household(s), print JSON.

    FILE：家庭 JSON 文件（对象，或多户的数组）；省略或为 - 时读标准输入 / a household JSON file (an object, or
    an array of them); - or nothing reads standard input.
    """
    data = _read_json(file)
    engine = _engine(home, programs)
    if isinstance(data, list):
        out = []
        for i, item in enumerate(data):
            try:
                out.append(engine.evaluate(item))
            except InputError as e:
                _input_error(e, f"[{i}]")
                sys.exit(2)
        sys.stdout.buffer.write(orjson.dumps(out, option=_JSON_OPTS) + b"\n")
        return
    try:
        det = engine.evaluate(data)
    except InputError as e:
        _input_error(e)
        sys.exit(2)
    sys.stdout.buffer.write(orjson.dumps(det, option=_JSON_OPTS) + b"\n")


@main.command()
@input_file
@home_option
@programs_option
def explain(file: str, home: Path | None, programs: str | None) -> None:
    """以中文报告说明认定结果（可打印给家庭）/ print a readable Chinese report.

    FILE：家庭 JSON 文件（对象，或多户的数组）；省略或为 - 时读标准输入 / a household JSON file (an object, or
    an array of them); - or nothing reads standard input.
    """

    data = _read_json(file)
    engine = _engine(home, programs)
    items = data if isinstance(data, list) else [data]
    for i, item in enumerate(items):
        try:
            det = engine.evaluate(item)
        except InputError as e:
            _input_error(e, f"[{i}]" if isinstance(data, list) else "")
            sys.exit(2)
        if i:
            click.echo("\n" + "-" * 40 + "\n")
        click.echo(render_report(det, item), nl=False)


@main.group()
def rules() -> None:
    """规则与政策文件 / rule and policy files."""


@rules.command("check")
@home_option
def rules_check(home: Path | None) -> None:
    """校验全部规则与政策文件，有错误时以非零状态退出 / validate every rule and policy file."""

    book = load_rulebook(home)
    watch = load_monitoring((home or default_root()) / "rules" / "monitoring")
    errors = [*book.errors, *watch.errors]
    if errors:
        for err in errors:
            click.echo(f"✗ {err}", err=True)
        click.echo(f"共 {len(errors)} 处错误 / {len(errors)} error(s)", err=True)
        sys.exit(1)
    n_rules = sum(1 for p in book.programs for s in p.steps if s.kind == "check")
    n_facts = len(book.facts.steps) if book.facts else 0
    n_params = len(book.policies.schema)
    click.echo(
        f"✓ 规则文件通过校验：{len(book.programs)} 个项目、{n_rules} 条规则、{n_facts} 项家庭事实；"
        f"{len(book.policies.files)} 个地区政策文件、{n_params} 个参数"
    )
    click.echo(f"✓ 动态监测规则通过校验：{len(watch.rules)} 条预警规则、{len(watch.milestones)} 个年龄节点（rules/monitoring/）")
    click.echo(f"  规则版本 ruleset_version: {book.version}")


@rules.command("show-compiled")
@click.argument("program")
@click.option("--locality", required=True, help="行政区划代码 / division code, e.g. 210102")
@click.option("--date", "on", required=True, type=click.DateTime(["%Y-%m-%d"]), help="评估日期 as_of（YYYY-MM-DD）")
@click.option(
    "--detail",
    type=click.Choice(["full", "decisions", "outline"]),
    default="full",
    show_default=True,
    help="完整说明、仅认定或仅概要 / full explanations, decisions only, or outline",
)
@click.option("--no-assets", is_flag=True, help="家庭未申报财产时的版本 / the variant for a household that declared no assets")
@click.option(
    "--unknown",
    type=click.Choice(NULLABLE_FACTS),
    multiple=True,
    help="有成员未填此项时的版本（可重复）/ the variant where some member left this fact out (repeatable)",
)
@home_option
def rules_show_compiled(
    program: str, locality: str, on: dt.datetime, detail: str, no_assets: bool, unknown: tuple[str, ...], home: Path | None
) -> None:
    """打印某项目编译后的 Python 源码（快速路径实际运行的代码）/ print the generated source of the compiled fast path.

    PROGRAM：项目代码（如 dibao；逗号分隔可列多个），依赖的项目一并编译 / program code(s); the programs
    they depend on are compiled with them. The source goes to standard output exactly as it runs (it
    compiles); the file name that tracebacks from it name goes to standard error.
    """
    subset = {p.strip() for p in program.split(",") if p.strip()}
    book = load_rulebook(home)
    if not book.errors:  # broken files are reported (exit 3) by loading the engine below
        refuse_unknown_programs(book, subset, "PROGRAM")
    try:
        localities.division(locality)
    except localities.LocalityError as e:
        raise click.BadParameter(f"{e.zh} / {e.en}", param_hint="--locality") from None
    engine = _engine(home, ",".join(sorted(subset)))
    fast = engine.fast
    key = fast.variant_of(engine.parameters(locality, on.date()), assets=not no_assets, absent=frozenset(unknown))
    filename, source = fast.source(key, detail)
    click.echo(f"# {filename}: {program} @ {locality} {on.date().isoformat()} ({detail})", err=True)
    sys.stdout.write(source)


@main.command("test")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@home_option
@click.option("-v", "--verbose", is_flag=True, help="列出每个用例 / list every case")
def test_cmd(paths: tuple[Path, ...], home: Path | None, verbose: bool) -> None:
    """运行 YAML 测试用例（默认 tests/cases）/ run YAML test cases.

    PATHS：用例文件或目录，可多个（默认 tests/cases）/ case files or directories (default: tests/cases).
    """

    engine = _engine(home)
    targets = list(paths) or [(home or default_root()) / "tests" / "cases"]
    total = failed = 0
    for target in targets:
        try:
            results = run_cases(engine, target)
        except YamlError as e:
            click.echo(f"✗ {e}", err=True)
            sys.exit(2)
        except CaseFileError as e:
            click.echo("用例文件有错误，未运行 / errors in the case file, nothing run:", err=True)
            for err in e.errors:
                click.echo(f"✗ {err}", err=True)
            sys.exit(2)
        for r in results:
            total += 1
            where = f"{r.case.file}:{r.case.line}"
            if r.passed:
                if verbose:
                    click.echo(f"✓ {r.case.name}  ({where})")
                continue
            failed += 1
            click.echo(f"✗ {r.case.name}  ({where})")
            for f in r.failures:
                click.echo(f"    {f}")
    click.echo(f"{total - failed}/{total} 个用例通过 / cases passed")
    if failed or total == 0:
        sys.exit(1)


# policy-staff commands (batch, synth, simulate, diff) live in engine/cli/batch.py
_register_batch(main)


if __name__ == "__main__":  # pragma: no cover
    main()

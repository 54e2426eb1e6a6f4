"""``jiuzhu batch``, ``synth``, ``simulate`` and ``diff``: the policy-staff commands.

Registered on the main command group by ``engine.cli``; heavy imports (numpy,
pyarrow) happen inside the commands so the rest of the CLI starts fast.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import click
import orjson

_JSON = orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS


def _date(_ctx, _param, value):
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"日期格式应为 YYYY-MM-DD / expected YYYY-MM-DD: {value}") from None


_home = click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="JIUZHU_HOME",
    help="包含 rules/ 与 policies/ 的目录（默认：本项目目录）/ directory holding rules/ and policies/",
)
_as_of = click.option("--as-of", callback=_date, help="评估日期（覆盖数据中的 as_of）/ evaluation date for every household")


def _population_error(e) -> None:
    click.echo("人口数据有误，未作评估、未写入结果 / invalid population, nothing evaluated or written:", err=True)
    for err in e.errors:
        click.echo(f"  {err}", err=True)
    if e.total > len(e.errors):
        click.echo(f"  ……共 {e.total} 处错误 / {e.total} errors in all", err=True)
    sys.exit(2)


def _progress(total: int | None, label: str):
    """A progress bar on stderr for long runs (a no-op for short ones); a running count when the size is unknown."""
    if total is not None and total < 200_000:
        return None, None
    if total is None:
        done = [0, 0]

        def count(n: int) -> None:
            done[0] += n
            if done[0] - done[1] >= 500_000:
                done[1] = done[0]
                click.echo(f"{label}: {done[0]:,} 户", err=True)

        return None, count
    bar = click.progressbar(length=total, label=label, file=sys.stderr, show_pos=True)
    bar.__enter__()
    return bar, bar.update


def _programs(value: str | None) -> list[str] | None:
    return [p.strip() for p in value.split(",") if p.strip()] if value else None


def register(main: click.Group) -> None:
    from engine.cli import _engine

    @main.command("batch")
    @click.argument("population", type=click.Path(exists=True, path_type=Path))
    @click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="结果目录 / results directory")
    @_as_of
    @click.option("--format", "fmt", type=click.Choice(["parquet", "csv"]), default="parquet", show_default=True)
    @click.option("--programs", help="只评估这些项目（逗号分隔，自动包含其依赖）/ only these programs (and what they depend on)")
    @click.option(
        "--part-size", type=int, default=500_000, show_default=True, help="每批读入的户数（控制内存）/ households per part"
    )
    @click.option(
        "--verify",
        type=int,
        default=0,
        help="抽样 N 户用逐户评估器复核 / re-check N sampled households with the single evaluator",
    )
    @click.option("--explain", "explain_ids", multiple=True, help="打开某一户的完整说明（可多次）/ explain one household in full")
    @click.option(
        "--export",
        "export_ids",
        multiple=True,
        help="以 docs/contract.md 格式导出这些户（JSON 数组）/ export households as contract JSON",
    )
    @click.option("--json", "as_json", is_flag=True, help="与 --explain 同用：输出 JSON / with --explain: print JSON")
    @_home
    def batch(population, out, as_of, fmt, programs, part_size, verify, explain_ids, export_ids, as_json, home):
        """批量评估一个人口数据（Parquet/CSV 两张表或 JSON lines）/ evaluate a population in bulk.

        写出 OUT/households.<fmt> 与 OUT/members.<fmt>：每户、每人各项目的状态、金额和第一条未满足的规则。
        列说明见 README（或 jiuzhu batch-columns）。--explain / --export 也可给结果目录（按 run.json 找到人口数据）。
        """
        from .tables import PopulationError, Source, find_households

        engine = _engine(home)
        if (explain_ids or export_ids) and (population / "run.json").is_file():
            # a results directory: open households of that run (its population, its date)
            run_info = orjson.loads((population / "run.json").read_bytes())
            population = Path(run_info["population"])
            if as_of is None and run_info.get("as_of"):
                as_of = dt.date.fromisoformat(run_info["as_of"])
        if explain_ids or export_ids:
            src = Source(population)
            ids = list(explain_ids) + list(export_ids)
            found = {h["household_id"]: h for h in find_households(src, ids, as_of)}
            missing = [i for i in ids if i not in found]
            if missing:
                click.echo(f"人口数据中没有这些户 / not in the population: {', '.join(missing)}", err=True)
                sys.exit(2)
            if export_ids:
                sys.stdout.buffer.write(orjson.dumps([found[i] for i in export_ids], option=_JSON) + b"\n")
            for i, hid in enumerate(explain_ids):
                det = engine.evaluate(found[hid])
                if as_json:
                    sys.stdout.buffer.write(orjson.dumps({"household": found[hid], "determination": det}, option=_JSON) + b"\n")
                else:
                    from engine.explain import render_report

                    if i:
                        click.echo("\n" + "-" * 40 + "\n")
                    click.echo(render_report(det), nl=False)
            return
        if out is None:
            raise click.UsageError("需要 --out 结果目录 / --out is required")
        from .job import run_batch

        src = Source(population)
        bar, update = _progress(src.count(), "评估 evaluating")
        try:
            s = run_batch(engine, population, out, as_of, fmt, _programs(programs), part_size, update, verify)
        except PopulationError as e:
            _population_error(e)
        finally:
            if bar is not None:
                bar.__exit__(None, None, None)
        _print_summary(s)
        if s.mismatches:
            click.echo(
                f"✗ 复核发现 {len(s.mismatches)} 户与逐户评估不一致，详见 run.json / batch and single evaluator differ", err=True
            )
            sys.exit(1)

    @main.command("batch-columns")
    def batch_columns():
        """列出人口数据表的全部列及其对应的契约字段 / the population columns and their contract fields."""
        from .schema import markdown

        click.echo(markdown())

    @main.command("synth")
    @click.option("--locality", required=True, help="行政区划代码（省、市或县）/ division code")
    @click.option("--households", type=int, required=True)
    @click.option("--seed", type=int, default=1, show_default=True)
    @click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True)
    @_as_of
    @_home
    def synth_cmd(locality, households, seed, out, as_of, home):
        """生成合成人口（非真实数据）/ write a SYNTHETIC population (no real person in it)."""
        from engine import localities
        from engine.policy import PolicyStore
        from engine.rules import default_root

        from . import synth

        try:
            localities.division(locality)
        except localities.LocalityError as e:
            raise click.BadParameter(f"{e.zh} / {e.en}", param_hint="--locality") from None
        store = PolicyStore((home or default_root()) / "policies")
        s = synth.write(out, locality, households, seed, as_of or synth.DEFAULT_AS_OF, store)
        click.echo(
            f"⚠ 合成数据（非真实人口）/ SYNTHETIC population: {s.households} 户 households, {s.members} 人 members, "
            f"{s.localities} 个县级地区, as_of {s.as_of} → {out}/households.parquet, {out}/members.parquet"
        )

    @main.command("simulate")
    @click.option("--population", type=click.Path(exists=True, path_type=Path), required=True)
    @click.option("--reform", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True)
    @click.option(
        "--out", type=click.Path(file_okay=False, path_type=Path), help="输出目录（默认 simulation-<改革名>）/ output directory"
    )
    @_as_of
    @_home
    def simulate_cmd(population, reform, out, as_of, home):
        """改革试算：基线与改革方案的人数、金额与受影响的户 / what-if: baseline versus a reform."""
        from .reform import ReformError
        from .simulate import run_simulation
        from .tables import PopulationError

        engine = _engine(home)
        out = out or Path(f"simulation-{reform.stem}")
        try:
            result = run_simulation(population, reform, as_of=as_of, out_dir=out, engine=engine)
        except ReformError as e:
            click.echo(f"改革方案有误 / invalid reform: {e}", err=True)
            sys.exit(2)
        except PopulationError as e:
            _population_error(e)
        click.echo(result.report_text())

    @main.command("diff")
    @click.option("--base", required=True, help="基准版本：git 引用（如 main、HEAD~1）或包含 rules/ 与 policies/ 的目录")
    @click.option("--head", type=click.Path(exists=True, file_okay=False, path_type=Path), default=Path("."), show_default=True)
    @click.option(
        "--population", type=click.Path(exists=True, path_type=Path), help="同时比较一个人口数据 / also compare a population"
    )
    @click.option("--cases", type=click.Path(exists=True, path_type=Path), help="用例目录（默认 HEAD 的 tests/cases）")
    @_as_of
    @click.option(
        "--out", type=click.Path(file_okay=False, path_type=Path), help="写出变化明细（CSV/JSON）/ write the changes here"
    )
    def diff_cmd(base, head, population, cases, as_of, out):
        """两个版本的规则与政策之间：哪些用例、多少户的结论发生变化 / what changes between two rule versions."""
        from .diff import DiffError, run_diff

        try:
            result = run_diff(base, head, population=population, cases=cases, as_of=as_of, out_dir=out)
        except DiffError as e:
            click.echo(f"✗ {e}", err=True)
            sys.exit(2)
        click.echo(result.report_text())


def _print_summary(s) -> None:
    d = s.to_dict()
    tag = "（合成数据 SYNTHETIC）" if s.synthetic else ""
    click.echo(f"✓ 评估 {d['households']} 户、{d['members']} 人{tag}；规则版本 {d['ruleset_version'][:19]}…")
    sec = d["seconds"]
    rate = d["households_per_second_evaluate"]
    click.echo(
        f"  读取 {sec['read']:.2f}s，分组 {sec['prepare']:.2f}s，评估 {sec['evaluate']:.2f}s"
        + (f"（{rate:,} 户/秒）" if rate else "")
        + f"，整理 {sec['assemble']:.2f}s，写出 {sec['write']:.2f}s"
    )
    if d["single_evaluator_households"]:
        click.echo(f"  其中 {d['single_evaluator_households']} 户由逐户评估器计算（列式计算可能溢出或不支持）")
    kinds = {"monthly": "每月发放", "annual": "每学年发放", "one_off": "一次性发放", "in_kind": "每月服务折合", "none": ""}
    for code, counts in d["counts"].items():
        parts = "，".join(f"{k} {v}" for k, v in counts.items() if v)
        kind = kinds.get(d["pays"].get(code, "monthly"), "")
        money = f"；{kind}合计 {d['paid_amount'][code]} 元（不含不重复发放的）" if kind else ""
        click.echo(f"  {code}: {parts}{money}")
    if d["verified"]:
        click.echo(
            f"  抽样复核 {d['verified']} 户：{'全部一致' if not d['mismatches'] else str(len(d['mismatches'])) + ' 户不一致'}"
        )
    for o in d["outputs"]:
        click.echo(f"  → {o}")

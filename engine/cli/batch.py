"""``jiuzhu batch``, ``synth``, ``simulate`` and ``diff``: the policy-staff commands.

Registered on the main command group by ``engine.cli.main``; heavy imports (numpy,
pyarrow) happen inside the commands so the rest of the CLI starts fast.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import click
import orjson

from engine.batch.allocator import tune_for_bulk
from engine.batch.fanout import Cluster, FanoutError
from engine.book.rules import default_root
from engine.cli.params import load_engine as _engine
from engine.cli.params import refuse_unknown_programs, rules_home
from engine.explain.render import render_report
from engine.policies import localities
from engine.policies.parameters import PolicyStore

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
    callback=rules_home,
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


def _source(source_type, population: Path):
    """The population's files (``source_type``: tables.Source, imported by the command), or exit 2 saying
    what a population looks like."""
    try:
        return source_type(population)
    except FileNotFoundError as e:
        click.echo(str(e), err=True)
        sys.exit(2)


def _population_argument(required: bool = True):
    return click.argument("population", required=required, type=click.Path(exists=True, path_type=Path))


def _one_population(argument: Path | None, option: Path | None) -> Path:
    if argument is not None and option is not None and argument != option:
        raise click.UsageError("人口数据只能给一个 / give the population once (POPULATION)")
    if option is not None:
        click.echo(
            "提示：--population 已改为位置参数：jiuzhu simulate POPULATION --reform … / "
            "note: the population is now an argument, as in jiuzhu batch",
            err=True,
        )
    population = argument or option
    if population is None:
        raise click.UsageError("缺少人口数据 POPULATION / missing the population (POPULATION)")
    return population


def _workers(f):
    f = click.option(
        "--cluster",
        metavar="ADDRESS",
        help="连接已有的 Dask 调度器（如 tcp://10.0.0.5:8786），按分区分发 / fan the partitions out to this Dask scheduler",
    )(f)
    return click.option(
        "--workers",
        type=click.IntRange(min=1),
        help="在本机启动 N 个 Dask 工作进程（每个 1 线程），按分区分发；人口数据须按地区分区 / "
        "start a local Dask cluster of N worker processes and fan the partitions out",
    )(f)


def _cluster(workers: int | None, address: str | None):
    """The Dask cluster asked for (``engine.batch.fanout.Cluster``), or None to run in this process."""
    if workers is not None and address:
        raise click.UsageError("--workers 与 --cluster 只能选一个 / give --workers or --cluster, not both")
    if workers is None and not address:
        return None
    return Cluster(workers=workers, address=address or None)


def _programs(value: str | None) -> list[str] | None:
    return [p.strip() for p in value.split(",") if p.strip()] if value else None


def register(main: click.Group) -> None:
    @main.command("batch")
    @_population_argument()
    @click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="结果目录 / results directory")
    @_as_of
    @click.option(
        "--format",
        "fmt",
        type=click.Choice(["parquet", "csv"]),
        default="parquet",
        show_default=True,
        help="结果文件的格式 / format of the result files",
    )
    @click.option(
        "--programs",
        metavar="CODES",
        help="只评估这些项目（逗号分隔，自动包含其依赖）/ only these programs (and what they depend on)",
    )
    @click.option(
        "--part-size",
        type=click.IntRange(min=1),
        default=100_000,
        show_default=True,
        help="每批读入的户数（控制内存）/ households per part",
    )
    @click.option(
        "--verify",
        type=click.IntRange(min=0),
        default=0,
        help="抽样 N 户用逐户评估器复核 / re-check N sampled households with the single evaluator",
    )
    @click.option(
        "--members",
        "member_shape",
        type=click.Choice(["long", "wide"]),
        default="long",
        show_default=True,
        help="成员结果的形状：long 每人每项目一行（member_programs.<fmt>），wide 每人一行（members.<fmt>）"
        " / member results: one row per member × program checked, or one row per member",
    )
    @click.option("--explain", "explain_ids", multiple=True, help="打开某一户的完整说明（可多次）/ explain one household in full")
    @click.option(
        "--export",
        "export_ids",
        multiple=True,
        help="以 docs/contract.md 格式导出这些户（JSON 数组）/ export households as contract JSON",
    )
    @click.option("--json", "as_json", is_flag=True, help="与 --explain 同用：输出 JSON / with --explain: print JSON")
    @_workers
    @_home
    def batch(
        population,
        out,
        as_of,
        fmt,
        programs,
        part_size,
        verify,
        member_shape,
        explain_ids,
        export_ids,
        as_json,
        workers,
        cluster,
        home,
    ):
        """批量评估一个人口数据（Parquet/CSV 两张表或 JSON lines）/ evaluate a population in bulk.

        POPULATION：人口数据目录（households 与 members 两张 Parquet/CSV 表，或 households.jsonl），
        或一个 JSON Lines 文件（每行一户）/ a population directory or a JSON Lines file (one household per line).

        写出 OUT/households.<fmt> 与 OUT/member_programs.<fmt>（--members wide：OUT/members.<fmt>）：每户、每人各项目的状态、金额和第一条未满足的规则。
        列说明见 docs/batch.md（或 jiuzhu batch-columns）。--explain / --export 也可给结果目录（按 run.json 找到人口数据）。
        """
        from engine.batch.tables import PopulationError, Source, find_households

        engine = _engine(home)
        refuse_unknown_programs(engine.book, set(_programs(programs) or ()))
        if (explain_ids or export_ids) and (population / "run.json").is_file():
            # a results directory: open households of that run (its population, its date)
            run_info = orjson.loads((population / "run.json").read_bytes())
            population = Path(run_info["population"])
            if as_of is None and run_info.get("as_of"):
                as_of = dt.date.fromisoformat(run_info["as_of"])
        if explain_ids or export_ids:
            src = _source(Source, population)
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
                    if i:
                        click.echo("\n" + "-" * 40 + "\n")
                    click.echo(render_report(det), nl=False)
            return
        if out is None:
            raise click.UsageError("需要 --out 结果目录 / --out is required")
        from engine.batch.job import run_batch

        tune_for_bulk()
        where = _cluster(workers, cluster)
        src = _source(Source, population)
        bar, update = _progress(src.count(), "评估 evaluating")
        try:
            s = run_batch(
                engine,
                population,
                out,
                as_of,
                fmt,
                _programs(programs),
                part_size,
                update,
                verify,
                members=member_shape,
                cluster=where,
            )
        except PopulationError as e:
            _population_error(e)
        except FanoutError as e:
            click.echo(f"✗ {e}", err=True)
            sys.exit(2)
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
        from engine.batch.schema import markdown

        click.echo(markdown())

    @main.command("synth")
    @click.option("--locality", required=True, help="行政区划代码（省、市或县）/ division code")
    @click.option("--households", type=click.IntRange(min=1), required=True, help="生成的户数 / households to generate")
    @click.option("--seed", type=int, default=1, show_default=True, help="随机种子（相同种子生成相同人口）/ random seed")
    @click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True, help="输出目录 / output directory")
    @click.option(
        "--partition-by",
        type=click.Choice(["county", "prefecture"]),
        help="按县或地市分区写出（OUT/county=210102/…，每个分区是完整的人口数据，可分发给 Dask 并行评估）"
        " / write one population per county or prefecture, hive style",
    )
    @_as_of
    @_home
    def synth_cmd(locality, households, seed, out, partition_by, as_of, home):
        """生成合成人口（非真实数据）/ write a SYNTHETIC population (no real person in it)."""

        from engine.batch import synth

        try:
            localities.division(locality)
        except localities.LocalityError as e:
            raise click.BadParameter(f"{e.zh} / {e.en}", param_hint="--locality") from None
        store = PolicyStore((home or default_root()) / "policies")
        s = synth.write(out, locality, households, seed, as_of or synth.DEFAULT_AS_OF, store, partition_by=partition_by)
        where = (
            f"{out}/{partition_by}=…/ 共 {s.partitions} 个分区 partitions"
            if partition_by
            else f"{out}/households.parquet, {out}/members.parquet"
        )
        click.echo(
            f"⚠ 合成数据（非真实人口）/ SYNTHETIC population: {s.households} 户 households, {s.members} 人 members, "
            f"{s.localities} 个县级地区, as_of {s.as_of} → {where}"
        )

    @main.command("simulate")
    @_population_argument(required=False)  # required unless the old --population is given
    @click.option(
        "--population",
        "population_option",
        type=click.Path(exists=True, path_type=Path),
        hidden=True,  # the old spelling, kept so that scripts keep working; POPULATION is the argument, as in batch
    )
    @click.option(
        "--reform",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        required=True,
        help="改革方案文件（YAML）/ the reform file",
    )
    @click.option(
        "--out", type=click.Path(file_okay=False, path_type=Path), help="输出目录（默认 simulation-<改革名>）/ output directory"
    )
    @_as_of
    @_workers
    @_home
    def simulate_cmd(population, population_option, reform, out, as_of, workers, cluster, home):
        """改革试算：基线与改革方案的人数、金额与受影响的户 / what-if: baseline versus a reform.

        POPULATION：人口数据目录或 JSON Lines 文件，与 jiuzhu batch 相同 / a population, as for jiuzhu batch.
        """
        from engine.batch.reform import ReformError
        from engine.batch.simulate import run_simulation
        from engine.batch.tables import PopulationError, Source

        population = _one_population(population, population_option)
        where = _cluster(workers, cluster)
        engine = _engine(home)
        tune_for_bulk()
        out = out or Path(f"simulation-{reform.stem}")
        try:
            _source(Source, population)
            result = run_simulation(population, reform, as_of=as_of, out_dir=out, engine=engine, cluster=where)
        except ReformError as e:
            click.echo(f"改革方案有误 / invalid reform: {e}", err=True)
            sys.exit(2)
        except FanoutError as e:
            click.echo(f"✗ {e}", err=True)
            sys.exit(2)
        except PopulationError as e:
            _population_error(e)
        click.echo(result.report_text())

    @main.command("diff")
    @click.option(
        "--base",
        required=True,
        help="基准版本：git 引用（如 main、HEAD~1）或包含 rules/ 与 policies/ 的目录 / base: a git ref or a directory",
    )
    @click.option(
        "--head",
        type=click.Path(exists=True, file_okay=False, path_type=Path),
        default=Path("."),
        show_default=True,
        help="新版本：包含 rules/ 与 policies/ 的目录 / the new version's directory",
    )
    @click.option(
        "--population", type=click.Path(exists=True, path_type=Path), help="同时比较一个人口数据 / also compare a population"
    )
    @click.option(
        "--cases",
        type=click.Path(exists=True, path_type=Path),
        help="用例目录或文件（默认 HEAD 的 tests/cases）/ YAML cases (default: HEAD's tests/cases)",
    )
    @_as_of
    @click.option(
        "--out", type=click.Path(file_okay=False, path_type=Path), help="写出变化明细（CSV/JSON）/ write the changes here"
    )
    def diff_cmd(base, head, population, cases, as_of, out):
        """两个版本的规则与政策之间：哪些用例、多少户的结论发生变化 / what changes between two rule versions."""
        from engine.batch.diff import DiffError, run_diff

        if population is not None:
            tune_for_bulk()
        try:
            result = run_diff(base, head, population=population, cases=cases, as_of=as_of, out_dir=out)
        except DiffError as e:
            click.echo(f"✗ {e}", err=True)
            sys.exit(2)
        click.echo(result.report_text())
        if result.cases == 0:
            _no_cases_warning(cases or head / "tests" / "cases")


def _no_cases_warning(case_dir: Path) -> None:
    """A diff that compared no case says nothing about the rules: say so, and why, rather than let
    "0 changed" read as "nothing changed"."""
    if not case_dir.exists():
        why = f"{case_dir} 不存在 / {case_dir} does not exist"
    elif case_dir.is_dir() and not any(case_dir.rglob("*.yaml")):
        why = f"{case_dir} 中没有 .yaml 用例文件 / {case_dir} holds no .yaml case files"
    else:
        why = f"{case_dir} 中的用例文件没有用例 / the case files in {case_dir} hold no cases"
    click.echo(
        f"⚠ 没有比较任何测试用例：{why.split(' / ')[0]}；用 --cases 指定用例目录 / "
        f"no test case was compared: {why.split(' / ')[1]}; name the cases with --cases",
        err=True,
    )


def _print_summary(s) -> None:
    d = s.to_dict()
    tag = "（合成数据 SYNTHETIC）" if s.synthetic else ""
    click.echo(f"✓ 评估 {d['households']} 户、{d['members']} 人{tag}；规则版本 {d['ruleset_version'][:19]}…")
    sec = d["seconds"]
    rate = d["households_per_second_evaluate"]
    if d.get("wall_seconds"):
        click.echo(
            f"  共用时 {d['wall_seconds']:.2f}s（{d['households_per_second']:,} 户/秒）；下列各阶段在读取、评估、写出三个线程上重叠进行"
        )
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

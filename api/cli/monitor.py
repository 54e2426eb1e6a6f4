"""``jiuzhu monitor ...`` and ``jiuzhu alerts ...`` (joined to the ``jiuzhu`` command through the
``jiuzhu.commands`` entry-point group, see pyproject.toml).

Storage goes through the service's database, so the commands live with the service (``api/``) and take
the same ``--data-dir`` / ``--database-url`` options as ``jiuzhu serve``. The database modules
(SQLAlchemy) are imported inside the commands, so that ``jiuzhu evaluate`` starts as fast as before.
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from pathlib import Path

import click
import orjson

from api.cli.service import _db_options, _settings
from api.cli.service import _repo as open_repo
from api.core.config import Settings
from engine.monitor.events import Event
from engine.monitor.synth import generate
from engine.policies.localities import covers
from engine.schema.jsonlines import first_line, looks_like_plain_json


def _repo(settings: Settings):
    """An existing database (tick, alerts): a data directory without one is refused, not created."""
    # SQLAlchemy: loaded on use (see the module's docstring)
    from api.monitoring.repo import MonitorRepository
    from api.storage.id_secret import load_id_secret

    db = open_repo(settings, existing=True).engine
    return MonitorRepository(db, load_id_secret(db, settings))


@click.group()
def monitor() -> None:
    """低收入人口动态监测：回放事件、推进时钟、生成合成事件 / dynamic monitoring."""


@monitor.command("replay")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--workers", type=click.IntRange(min=1), default=None, help="进程数，默认为 CPU 核数（按家庭分区）/ processes")
@click.option("--batch", type=click.IntRange(min=1), default=2000, show_default=True, help="每个事务的事件数 / events per transaction")
@click.option("--clock", type=click.DateTime(["%Y-%m-%d"]), default=None, help="回放后把每户时钟推进到该日期（检查到期事项）/ advance clocks to this date")
@_db_options
def replay_cmd(file: Path, workers: int | None, batch: int, clock, data_dir, database_url) -> None:
    """按文件顺序回放事件（JSON Lines，每行一个事件），写入数据库并产生预警 / replay events.jsonl.

    FILE：事件文件，JSON Lines，每行一个事件 / the events, JSON Lines (one event per line).
    """
    from api.monitoring.replay import ReplayError, replay  # SQLAlchemy: loaded on use

    first = first_line(file)
    if first is not None and looks_like_plain_json(first[1]):
        click.echo(
            f"{file.name}:{first[0]}: 这是普通 JSON（数组或跨行的对象），回放需要 JSON Lines：每行一个事件 / "
            "this is plain JSON (an array or an object over several lines); expected JSON Lines: one event per line",
            err=True,
        )
        sys.exit(2)
    settings = _settings(data_dir, database_url)
    open_repo(settings).engine.dispose()  # migrate once, before the workers start
    t = time.perf_counter()
    try:
        stats = replay(file, workers, batch, clock.date() if clock else None, settings=settings)
    except ReplayError as e:
        click.echo("事件文件有误，未写入任何事件 / malformed events, nothing written:", err=True)
        for line in e.lines[:200]:
            click.echo(f"  {line}", err=True)
        if len(e.lines) > 200:
            click.echo(f"  …（共 {len(e.lines)} 处）", err=True)
        sys.exit(2)
    wall = time.perf_counter() - t
    rate = stats.events / wall if wall else 0
    click.echo(
        f"回放 {stats.events} 个事件（{stats.households} 户）：记录 {stats.recorded}，重复跳过 {stats.duplicates}，"
        f"拒绝 {stats.refused}；重新认定 {stats.evaluated} 次；新预警 {stats.alerts} 条；{stats.transactions} 个事务"
    )
    click.echo(
        f"用时 {wall:.1f} 秒，{rate:,.0f} 事件/秒（读取校验 {stats.seconds_read:.1f} s，规则与认定 {stats.seconds_process:.1f} s，"
        f"写入 {stats.seconds_write:.1f} s，按最慢的进程计）/ {rate:,.0f} events/s"
    )
    for line in stats.refusals[:20]:
        click.echo(f"  拒绝 refused: {line}", err=True)


@monitor.command("tick")
@click.option("--date", "date_", type=click.DateTime(["%Y-%m-%d"]), required=True, help="今天的日期 / today's date")
@click.option("--locality", default=None, help="只处理该地区（及下辖）的家庭 / only this locality")
@_db_options
def tick_cmd(date_, locality: str | None, data_dir, database_url) -> None:
    """把每户的时钟推进到该日期：到期的年满18/60/80周岁、渐退期届满、定期核查产生预警 / advance every household's clock."""
    # SQLAlchemy and the monitoring service: loaded on use
    from api.monitoring.repo import Accepted
    from api.processes.monitor import make_service
    from api.storage.db import writing

    settings = _settings(data_dir, database_url)
    repo = _repo(settings)
    service = make_service(settings, repo.engine)
    mon = service.monitor
    day = date_.date()
    pending: list = []
    new_alerts = households = 0
    after = None
    while True:
        ids = repo.households(None, after, 1000)
        if not ids:
            break
        after = ids[-1]
        for hid in ids:
            state = repo.household(hid)
            if state is None or (locality and not covers(locality, state.locality)):
                continue
            key = f"tick:{day.isoformat()}"
            if repo.event_by_key(hid, key) is not None:
                continue
            if state.last_date is not None and state.last_date > day.isoformat():
                continue  # its clock is past that day already (events are applied in date order)
            ev = Event(hid, "tick", day, key, None, {}, None, {"household_id": hid, "type": "tick", "date": day.isoformat()})
            out = mon.process(ev, state, lambda hid=hid: repo.event_ops(hid))
            mon.drop(hid)
            pending.append(Accepted(out, False, ev.raw, None, "tick", day, "cli", "jiuzhu monitor tick"))
            households += 1
        if pending:
            with writing(repo.engine) as conn, conn.begin():
                new_alerts += repo.write(conn, pending, mon.version, dt.datetime.now(dt.UTC))
            pending.clear()
    click.echo(f"已推进 {households} 户的时钟至 {day.isoformat()}，新预警 {new_alerts} 条 / clocks advanced, {new_alerts} new alert(s)")


@monitor.command("synth")
@click.option("--households", type=click.IntRange(min=1), default=1000, show_default=True, help="户数 / households")
@click.option("--events", type=click.IntRange(min=1), default=20000, show_default=True, help="事件总数（含每户的 register）/ events in all")
@click.option("--seed", type=int, default=1, show_default=True, help="随机种子（相同种子生成相同事件）/ random seed")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="输出文件（JSON Lines）/ output file")
def synth_cmd(households: int, events: int, seed: int, out: Path) -> None:
    """生成合成事件流（SYNTHETIC，不含任何真实家庭）/ write a SYNTHETIC event stream (JSON lines)."""
    n = 0
    with open(out, "wb") as f:
        for line in generate(households, events, seed):
            f.write(line)
            n += 1
    click.echo(f"已写入 {n} 个合成事件（{households} 户，SYNTHETIC）到 {out}")


# -- alerts -----------------------------------------------------------------------------------


def _redis_option(f):
    return click.option(
        "--redis-url", envvar="JIUZHU_REDIS_URL", default="redis://127.0.0.1:6379/0", show_default=True,
        help="Redis 地址（事件流）/ Redis URL of the event streams",
    )(f)


def _group_option(f):
    return click.option("--group", default="monitor", show_default=True, help="消费组名称 / consumer group")(f)


@monitor.command("publish")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--partitions", type=click.IntRange(min=1), default=8, show_default=True, help="分区（流）数，按家庭散列 / streams, by household")
@click.option("--max-unacked", type=click.IntRange(min=1), default=10_000, show_default=True,
              help="某分区未确认的事件超过此数时等待消费者 / wait while a partition holds more un-acknowledged events")
@_group_option
@_redis_option
def publish_cmd(file: Path, partitions: int, max_unacked: int, group: str, redis_url: str) -> None:
    """把事件文件（JSON Lines）发布到 Redis 事件流，同一家庭的事件进同一分区、保持文件顺序 / publish events to Redis streams.

    FILE：事件文件，JSON Lines，每行一个事件；整个文件先校验，有误则一个也不发布 / the events, JSON Lines,
    checked whole first: a malformed file publishes nothing.
    """
    from api.monitoring.replay import ReplayError  # SQLAlchemy: loaded on use
    from api.streams import bus

    try:
        stats = bus.publish(bus.connect(redis_url), file, partitions, group, max_unacked)
    except ReplayError as e:
        click.echo("事件文件有误，未发布任何事件 / malformed events, nothing published:", err=True)
        for line in e.lines[:200]:
            click.echo(f"  {line}", err=True)
        sys.exit(2)
    except ValueError as e:
        click.echo(f"无法发布 / cannot publish: {e}", err=True)
        sys.exit(2)
    rate = stats.events / stats.seconds if stats.seconds else 0
    click.echo(f"发布 {stats.events} 个事件到 {partitions} 个分区，等待消费者 {stats.waits} 次；{stats.seconds:.1f} 秒，{rate:.0f} 事件/秒")


@monitor.command("consume")
@_group_option
@click.option("--consumer", default=None, help="消费者名称，默认 主机名-进程号 / consumer name (default host-pid)")
@click.option("--count", type=click.IntRange(min=1), default=200, show_default=True, help="每批（每个事务）最多事件数 / events per batch")
@click.option("--claim-idle-ms", type=click.IntRange(min=1), default=30_000, show_default=True,
              help="其他消费者未确认的事件闲置超过此毫秒数即接手 / claim others' pending entries idle this long")
@click.option("--until-empty", is_flag=True, help="所有分区都已读完并确认时退出 / exit once every partition is read and acknowledged")
@_redis_option
@_db_options
def consume_cmd(group: str, consumer: str | None, count: int, claim_idle_ms: int, until_empty: bool, redis_url: str,
                data_dir, database_url) -> None:
    """从 Redis 事件流消费事件：先写入数据库，再确认（XACK）/ consume the event streams (commit, then XACK)."""
    import os
    import socket

    from api.processes.monitor import make_service  # SQLAlchemy: loaded on use
    from api.streams import bus

    settings = _settings(data_dir, database_url)
    db = open_repo(settings).engine
    service = make_service(settings, db)
    name = consumer or f"{socket.gethostname()}-{os.getpid()}"
    try:
        stats = bus.consume(bus.connect(redis_url), service, group, name, count=count, claim_idle_ms=claim_idle_ms,
                            until_empty=until_empty)
    except ValueError as e:
        click.echo(f"无法消费 / cannot consume: {e}", err=True)
        sys.exit(2)
    finally:
        service.close()
        db.dispose()
    rate = stats.events / stats.seconds if stats.seconds else 0
    click.echo(
        f"消费 {stats.events} 个事件：记录 {stats.recorded}，重复跳过 {stats.duplicates}，拒绝 {stats.refused}，"
        f"接手 {stats.claimed}；{stats.batches} 个事务（重试 {stats.retries} 次）；{stats.seconds:.1f} 秒，{rate:.0f} 事件/秒"
    )


@monitor.command("lag")
@_group_option
@_redis_option
def lag_cmd(group: str, redis_url: str) -> None:
    """每个分区的积压：流长度、未读、已读未确认 / lag per partition."""
    from api.streams import bus

    rows = bus.lag(bus.connect(redis_url), group)
    if not rows:
        click.echo("尚无事件流 / no streams yet")
        return
    click.echo("分区  长度  未读  未确认 / partition length undelivered pending")
    for p in rows:
        click.echo(f"{p.partition:>4} {p.length:>6} {p.undelivered:>6} {p.pending:>6}")
    click.echo(f"合计积压 {sum(p.unacked for p in rows)} / total lag")


@click.group(invoke_without_command=True)
@click.option("--locality", default=None, help="行政区划代码（市、省级代码包含下辖地区）")
@click.option("--status", type=click.Choice(["open", "acknowledged", "closed"]), default="open", show_default=True, help="处理状态 / status")
@click.option("--household", "household_id", default=None, help="只看该户的预警 / only this household")
@click.option("--level", type=click.Choice(["red", "orange", "yellow"]), default=None, help="预警级别 / level")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True, help="最多列出几条 / at most this many")
@click.option("--json", "as_json", is_flag=True, help="输出 JSON / print JSON")
@_db_options
@click.pass_context
def alerts(ctx, locality, status, household_id, level, limit, as_json, data_dir, database_url) -> None:
    """查看预警（默认：待处理的），或确认、关闭预警 / list, acknowledge or close alerts."""
    ctx.ensure_object(dict)
    ctx.obj["db"] = (data_dir, database_url)
    if ctx.invoked_subcommand is not None:
        return
    from api.monitoring.service import alert_out  # SQLAlchemy: loaded on use

    repo = _repo(_settings(data_dir, database_url))
    rows = repo.alerts(locality, status, household_id, level, None, limit)
    if as_json:
        sys.stdout.buffer.write(orjson.dumps([alert_out(r) for r in rows], option=orjson.OPT_INDENT_2) + b"\n")
        return
    if not rows:
        click.echo("（没有符合条件的预警）/ no alerts")
        return
    for r in rows:
        a = alert_out(r)
        who = f" 成员{a['member']}" if a["member"] else ""
        click.echo(f"[{a['level_zh']}] {a['alert_id']}  {a['household_id']}{who}  {a['event_date']}  {a['title']}（{a['status']}）")
        click.echo(f"    {a['text']}")
        click.echo(f"    建议：{a['action']}")
        click.echo(f"    依据：{a['citation']}")


def _set(ctx, alert_id: str, status: str, note: str | None) -> None:
    from api.monitoring.service import alert_out  # SQLAlchemy: loaded on use

    repo = _repo(_settings(*ctx.obj["db"]))
    row, problem = repo.set_status(alert_id, status, note, "命令行 (cli)")
    if problem == "not_found":
        click.echo(f"未找到预警 {alert_id} / no such alert", err=True)
        sys.exit(1)
    if problem == "closed":
        click.echo(f"预警 {alert_id} 已关闭，不能再更改 / the alert is closed", err=True)
        sys.exit(1)
    a = alert_out(row)
    click.echo(f"{a['alert_id']}: {a['status']}")


@alerts.command("ack")
@click.argument("alert_id")
@click.option("--note", default=None, help="说明 / note")
@click.pass_context
def alerts_ack(ctx, alert_id: str, note: str | None) -> None:
    """确认预警 / acknowledge an alert.

    ALERT_ID：预警编号（见 jiuzhu alerts）/ the alert's id, as jiuzhu alerts shows it.
    """
    _set(ctx, alert_id, "acknowledged", note)


@alerts.command("close")
@click.argument("alert_id")
@click.option("--note", required=True, help="处置说明（必填）/ what was done")
@click.pass_context
def alerts_close(ctx, alert_id: str, note: str) -> None:
    """关闭预警（须附处置说明）/ close an alert with a note.

    ALERT_ID：预警编号（见 jiuzhu alerts）/ the alert's id, as jiuzhu alerts shows it.
    """
    if not note.strip():
        click.echo("--note 不能为空 / --note must not be empty", err=True)
        sys.exit(2)
    _set(ctx, alert_id, "closed", note.strip())

"""`jiuzhu monitor replay events.jsonl`: a file of events through the monitor, into the database.

Households are independent (no rule reads two households), so the replay
partitions them over worker processes (``--workers``, default: one per CPU) by
a hash of ``household_id``; each worker applies its households' events in date
order (ties: file order; an event dated before the household's stored ones makes
it be applied again in date order, as in the service: ``api/monitoring/order.py``),
one household at a time (so that one durable-rules session is live per
household while its events are applied), and commits every ``--batch`` events
in one transaction. The whole file is validated first: a malformed event
refuses the file (every bad line named) and nothing is written. An event that
cannot apply (unknown household or member) is refused on its own and reported.
An event whose ``event_id`` is already stored for its household is skipped, so
a replay interrupted half-way can be run again.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from api.core.config import Settings
from api.monitoring import order
from api.monitoring.repo import Accepted
from api.processes.monitor import make_service
from api.storage.db import make_engine, migrate, writing
from engine.monitor.events import Event, parse_event, pseudonymous, today
from engine.monitor.monitor import Outcome
from engine.schema.model import InputError


@dataclass
class ReplayStats:
    events: int = 0
    recorded: int = 0
    duplicates: int = 0
    refused: int = 0
    evaluated: int = 0
    alerts: int = 0
    households: int = 0
    transactions: int = 0
    replays: int = 0  # households applied again in date order (events dated before stored ones)
    seconds_read: float = 0.0
    seconds_process: float = 0.0
    seconds_write: float = 0.0
    refusals: list[str] = field(default_factory=list)  # first few, "line N: field: message"

    def add(self, o: ReplayStats) -> None:
        for k in ("events", "recorded", "duplicates", "refused", "evaluated", "alerts", "households", "transactions", "replays"):
            setattr(self, k, getattr(self, k) + getattr(o, k))
        for k in ("seconds_read", "seconds_process", "seconds_write"):
            setattr(self, k, max(getattr(self, k), getattr(o, k)))
        self.refusals.extend(o.refusals[: max(0, 20 - len(self.refusals))])


class ReplayError(Exception):
    def __init__(self, lines: list[str]):
        super().__init__("\n".join(lines))
        self.lines = lines


def partition(household_id: str, n: int) -> int:
    return zlib.crc32(household_id.encode()) % n if n > 1 else 0


def read_partition(path: Path, k: int, n: int, clock: dt.date | None) -> dict[str, list[tuple[int, Event]]]:
    """This worker's households: their events in file order, validated (ReplayError names every bad line)."""
    groups: dict[str, list[tuple[int, Event]]] = {}
    bad: list[str] = []
    latest = max(today(), clock) if clock else today()
    with open(path, "rb") as f:
        for no, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError as e:
                if k == 0:
                    bad.append(f"{path.name}:{no}: 不是有效的 JSON / invalid JSON: {e}")
                continue
            hid = obj.get("household_id") if isinstance(obj, dict) else None
            if not isinstance(hid, str):
                if k == 0:  # refused once, by the first worker
                    try:
                        parse_event(obj, "", latest)
                    except InputError as e:
                        bad.extend(f"{path.name}:{no}: {x.field}: {x.message_zh} ({x.message_en})" for x in e.errors)
                continue
            if partition(hid.upper(), n) != k:  # ``…123x`` and ``…123X`` are one household
                continue
            try:
                ev = parse_event(obj, "", latest)
            except InputError as e:
                bad.extend(f"{path.name}:{no}: {x.field}: {x.message_zh} ({x.message_en})" for x in e.errors)
                continue
            groups.setdefault(hid, []).append((no, ev))
    if bad:
        raise ReplayError(bad)
    return groups


def _pseudonymous_groups(groups: dict[str, list[tuple[int, Event]]], secret: bytes) -> dict[str, list[tuple[int, Event]]]:
    """The events as the monitor stores them (ID numbers masked and tagged), grouped by that household id."""
    out: dict[str, list[tuple[int, Event]]] = {}
    for items in groups.values():
        for no, ev in items:
            pev = pseudonymous(ev, secret)
            out.setdefault(pev.household_id, []).append((no, pev))
    for items in out.values():
        items.sort(key=lambda x: x[0])
    return out


def run_partition(
    settings: Settings, path: str, k: int, n: int, batch: int, clock: str | None, caller: tuple[str, str], sync=None
) -> ReplayStats:
    """One worker: read and validate its households' events, then (if no worker found a malformed
    event) apply and commit them. ``sync`` = (barrier, flag) shared by the workers."""

    stats = ReplayStats()
    t0 = time.perf_counter()
    clock_date = dt.date.fromisoformat(clock) if clock else None
    try:
        groups = read_partition(Path(path), k, n, clock_date)
    except ReplayError:
        if sync is not None:
            sync[1].value = 1
            sync[0].wait()
        raise
    if sync is not None:
        sync[0].wait()  # every worker has validated its part
        if sync[1].value:
            return stats  # another worker refused the file: nothing is written
    stats.seconds_read = time.perf_counter() - t0

    db = make_engine(settings)
    migrate(db)
    service = make_service(settings, db)
    mon, repo = service.monitor, service.repo
    groups = _pseudonymous_groups(groups, repo.id_secret)
    pending: list[Accepted] = []
    rebuilds: list = []  # households applied again in date order (an event dated before stored ones)
    t_write = 0.0

    def flush() -> None:
        nonlocal t_write
        if not pending:
            return
        t = time.perf_counter()
        rows = repo.rows(pending, mon.version, dt.datetime.now(dt.UTC))  # outside the write lock
        now = dt.datetime.now(dt.UTC)
        with writing(db) as conn, conn.begin():
            stats.alerts += repo.write_rows(conn, rows)
            for rb in rebuilds:
                stats.alerts += order.write(conn, repo, rb, now)[0]
        t_write += time.perf_counter() - t
        stats.transactions += 1
        pending.clear()
        rebuilds.clear()

    t1 = time.perf_counter()
    known = repo.household_ids()  # one query instead of one per household (most are new in a bulk replay)
    for hid, items in groups.items():
        stats.households += 1
        state = repo.household(hid) if hid in known else None
        stored = repo.events_of(hid) if state is not None else []  # a replay run again: what is there already
        # the household's session operations in the order they apply (date, then arrival), kept up to date below
        ops_now = [orjson.loads(r.ops_json) for r in sorted(stored, key=lambda r: (r.date, r.seq))]
        keys = {r.event_key for r in stored}
        if clock_date is not None:
            items = [*items, (0, Event(hid, "tick", clock_date, f"tick:{clock_date.isoformat()}", None, {}, None, {"household_id": hid, "type": "tick", "date": clock_date.isoformat()}))]
        # applied in date order (ties: file order), as the service applies them (api/monitoring/order.py):
        # sorted here, only an event dated before the stored ones makes the household be applied again
        items.sort(key=lambda t: t[1].date)
        own: list[tuple[Event, Accepted]] = []

        def applied(hid=hid, own=own):
            stored_events = order.stored_events(repo, hid, rebuilds)
            return [*stored_events, *((e, a.outcome.key, a.outcome.seq, a.outcome.ops) for e, a in own)], {t[1] for t in stored_events}

        # several events dated before the stored ones (a file of older events): one replay for them all
        late = [(no, ev) for no, ev in items if order.is_late(ev, state)]
        if len(late) > 1:
            ids = [ev.event_id for _no, ev in late if ev.event_id is not None]
            if len(set(ids)) == len(ids) and not keys.intersection(ids):
                rb = order.apply_all(mon, [ev for _no, ev in late], state, applied)
                if rb is not None:
                    final = rb.outcomes[-1].state
                    mine = {o.key: o for o in rb.outcomes if o.seq > state.seq}
                    for (_no, ev), o in zip(late, sorted(mine.values(), key=lambda o: o.seq), strict=True):
                        out = Outcome(final, o.key, o.seq, o.ops, [], o.evaluated, o.changes)
                        acc = Accepted(out, False, ev.raw, ev.member, ev.type, ev.date, *caller)
                        pending.append(acc)
                        own.append((ev, acc))
                        keys.add(o.key)
                        stats.events += 1
                        stats.recorded += 1
                        stats.evaluated += o.evaluated
                    rebuilds.append(rb)
                    stats.replays += 1
                    ops_now[:] = [o.ops for o in rb.outcomes]
                    state = final
                    items = items[len(late):]
        for no, ev in items:
            stats.events += 1
            if ev.event_id is not None and ev.event_id in keys:
                stats.duplicates += 1
                continue
            try:
                out, rebuild = order.apply(mon, ev, state, lambda ops=ops_now: list(ops), applied)
            except InputError as e:
                stats.refused += 1
                if len(stats.refusals) < 20:
                    stats.refusals.extend(f"line {no}: {x.field}: {x.message_zh} ({x.message_en})" for x in e.errors)
                continue
            if rebuild is not None:
                order.replace_uncommitted(rebuild, [a for _e, a in own])
                rebuilds.append(rebuild)
                stats.replays += 1
                ops_now[:] = [o.ops for o in rebuild.outcomes]
            else:
                ops_now.append(out.ops)
            acc = Accepted(out, state is None, ev.raw, ev.member, ev.type, ev.date, *caller)
            pending.append(acc)
            own.append((ev, acc))
            state = out.state
            keys.add(out.key)
            stats.recorded += 1
            stats.evaluated += out.evaluated
        mon.drop(hid)
        if len(pending) >= batch:
            flush()
    flush()
    stats.seconds_write = t_write
    stats.seconds_process = time.perf_counter() - t1 - t_write
    service.close()
    db.dispose()
    return stats


def replay(path: Path, workers: int | None = None, batch: int = 2000, clock: dt.date | None = None,
           caller: tuple[str, str] = ("cli", "jiuzhu monitor replay"), settings: Settings | None = None) -> ReplayStats:
    """Replay ``path`` with ``workers`` processes; raises ReplayError (nothing written) for a malformed file.
    ``settings``: the command's (None: read from the environment here); every worker gets this object."""
    settings = settings or Settings.from_env()
    n = max(1, workers or os.cpu_count() or 1)
    args = (str(path), batch, clock.isoformat() if clock else None, caller)
    if n == 1:
        return run_partition(settings, args[0], 0, 1, *args[1:])
    ctx = multiprocessing.get_context("spawn")
    barrier, flag, results = ctx.Barrier(n), ctx.Value("i", 0), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(results, settings, args[0], k, n, *args[1:], (barrier, flag)), name=f"jiuzhu-replay-{k}") for k in range(n)]
    for p in procs:
        p.start()
    outcomes = [results.get() for _ in procs]
    for p in procs:
        p.join()
    errors = [line for ok, r in outcomes if not ok for line in r]
    if errors:
        raise ReplayError(errors)
    total = ReplayStats()
    for _ok, r in outcomes:
        total.add(r)
    return total


def _worker(results, *args) -> None:
    try:
        results.put((True, run_partition(*args)))
    except ReplayError as e:
        results.put((False, e.lines))
    except BaseException as e:
        results.put((False, [f"{type(e).__name__}: {e}"]))
        raise

"""Monitoring events through Redis streams, partitioned by household.

``publish`` appends a file of events (JSON Lines, validated as POST /v1/events
validates them; a malformed file is refused whole, nothing sent) to
``partitions`` streams, a household's events all to one partition (a hash of
its ``household_id``, as ``jiuzhu monitor replay`` partitions) in file order.
Streams are never trimmed (no MAXLEN: an event dropped before it is consumed
would be lost); instead the publisher waits while a partition holds more than
``max_unacked`` entries its consumer group has not acknowledged.

``consume`` reads the partitions in a consumer group, applies each batch with
the service's monitor (``MonitorService.handle``: date order, api/monitoring/order.py)
and commits it in the database BEFORE acknowledging it (XACK). A consumer
that dies leaves its entries pending; another claims them (XAUTOCLAIM) once
they have been idle ``claim_idle_ms``. A redelivered event is harmless: its
``event_id`` is stored under a unique key per household, and the monitor answers
it as a duplicate without applying it again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import redis

from api.monitoring.replay import ReplayError, partition
from api.monitoring.service import MonitorService, Request
from engine.monitor.events import parse_event, today
from engine.schema.model import InputError

PREFIX = "jiuzhu:monitor:events"
META = f"{PREFIX}:partitions"  # how many partitions the publisher used (consumers read them all)


def stream_key(k: int) -> str:
    return f"{PREFIX}:{k}"


def connect(url: str) -> redis.Redis:
    return redis.Redis.from_url(url)


def read_events(path: Path) -> Iterator[tuple[str, bytes]]:
    """(household_id, the line) for every event of the file, validated; ReplayError names every bad line."""
    bad: list[str] = []
    good: list[tuple[str, bytes]] = []
    latest = today()
    with open(path, "rb") as f:
        for no, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = orjson.loads(line)
                ev = parse_event(obj, "", latest)
            except orjson.JSONDecodeError as e:
                bad.append(f"{path.name}:{no}: 不是有效的 JSON / invalid JSON: {e}")
                continue
            except InputError as e:
                bad.extend(f"{path.name}:{no}: {x.field}: {x.message_zh} ({x.message_en})" for x in e.errors)
                continue
            good.append((ev.household_id, orjson.dumps(obj)))
    if bad:
        raise ReplayError(bad)
    return iter(good)


def ensure_groups(r: redis.Redis, group: str, n: int) -> None:
    for k in range(n):
        try:
            r.xgroup_create(stream_key(k), group, id="0", mkstream=True)
        except redis.ResponseError as e:
            if "BUSYGROUP" not in str(e):
                raise


@dataclass
class PartitionLag:
    partition: int
    length: int  # entries in the stream
    undelivered: int  # not yet read by the group
    pending: int  # read, not acknowledged (a consumer is on them, or died on them)

    @property
    def unacked(self) -> int:
        return self.undelivered + self.pending


def partitions(r: redis.Redis) -> int:
    n = r.get(META)
    return int(n) if n is not None else 0


def lag(r: redis.Redis, group: str) -> list[PartitionLag]:
    out = []
    for k in range(partitions(r)):
        key = stream_key(k)
        length = r.xlen(key)
        info = next((g for g in r.xinfo_groups(key) if g["name"].decode() == group), None) if length or r.exists(key) else None
        if info is None:
            out.append(PartitionLag(k, length, length, 0))
            continue
        undelivered = info.get("lag")
        if undelivered is None:  # Redis cannot tell (entries deleted): count from the last delivered id
            undelivered = len(r.xrange(key, min=f"({info['last-delivered-id'].decode()}"))
        out.append(PartitionLag(k, length, int(undelivered), int(info["pending"])))
    return out


@dataclass
class PublishStats:
    events: int = 0
    waits: int = 0  # times the publisher waited for the consumers (backpressure)
    seconds: float = 0.0


def publish(r: redis.Redis, path: Path, n: int, group: str, max_unacked: int, chunk: int = 500,
            poll: float = 0.05) -> PublishStats:
    """Append ``path``'s events to ``n`` partitions; waits while a partition is over ``max_unacked``."""
    if n < 1:
        raise ValueError("partitions must be at least 1")
    existing = partitions(r)
    if existing and existing != n:  # another count would move households between partitions: order lost
        raise ValueError(f"the streams already have {existing} partitions, not {n}")
    events = read_events(path)  # the whole file validated before anything is sent
    r.set(META, n)
    ensure_groups(r, group, n)
    stats = PublishStats()
    t0 = time.perf_counter()
    queued: dict[int, int] = dict.fromkeys(range(n), 0)  # appended since the last lag check
    unacked = {p.partition: p.unacked for p in lag(r, group)}
    pipe = r.pipeline(transaction=False)
    size = 0

    def send() -> None:
        nonlocal size
        if size:
            pipe.execute()
            size = 0

    for hid, line in events:
        k = partition(hid.upper(), n)  # ``…123x`` and ``…123X`` are one household
        if unacked[k] + queued[k] >= max_unacked:
            send()
            while True:  # backpressure: wait for the group to acknowledge
                unacked = {p.partition: p.unacked for p in lag(r, group)}
                queued = dict.fromkeys(range(n), 0)
                if unacked[k] < max_unacked:
                    break
                stats.waits += 1
                time.sleep(poll)
        pipe.xadd(stream_key(k), {"e": line})
        queued[k] += 1
        size += 1
        stats.events += 1
        if size >= chunk:
            send()
    send()
    stats.seconds = time.perf_counter() - t0
    return stats


@dataclass
class ConsumeStats:
    events: int = 0  # entries acknowledged
    recorded: int = 0
    duplicates: int = 0  # redelivered (or sent twice): already stored, not applied again
    refused: int = 0
    claimed: int = 0  # entries claimed from dead consumers
    batches: int = 0
    seconds: float = 0.0


def consume(r: redis.Redis, service: MonitorService, group: str, consumer: str, *, count: int = 200,
            block_ms: int = 1000, claim_idle_ms: int = 30_000, until_empty: bool = False,
            on_batch: Callable[[ConsumeStats], None] | None = None) -> ConsumeStats:
    """Consume until stopped (or, ``until_empty``, until every partition is read and acknowledged)."""
    n = partitions(r)
    if n == 0:
        raise ValueError("no streams yet: nothing has been published")
    ensure_groups(r, group, n)
    stats = ConsumeStats()
    t0 = time.perf_counter()
    claim_from = dict.fromkeys(range(n), "0-0")
    while True:
        batch: list[tuple[str, bytes, bytes]] = []  # (stream, entry id, event)
        for k in range(n):  # first the entries dead consumers left behind
            nxt, claimed, _deleted = r.xautoclaim(stream_key(k), group, consumer, claim_idle_ms, claim_from[k], count=count)
            claim_from[k] = nxt.decode() if isinstance(nxt, bytes) else nxt
            stats.claimed += len(claimed)
            batch.extend((stream_key(k), eid, f[b"e"]) for eid, f in claimed if f)
        if not batch:
            got = r.xreadgroup(group, consumer, {stream_key(k): ">" for k in range(n)}, count=count, block=block_ms)
            for key, entries in got or []:
                batch.extend((key.decode(), eid, f[b"e"]) for eid, f in entries)
        if not batch:
            if until_empty and all(p.unacked == 0 for p in lag(r, group)):
                break
            continue
        _apply(r, service, group, consumer, batch, stats)
        if on_batch is not None:
            on_batch(stats)
    stats.seconds = time.perf_counter() - t0
    return stats


def _apply(r: redis.Redis, service: MonitorService, group: str, consumer: str,
           batch: list[tuple[str, bytes, bytes]], stats: ConsumeStats) -> None:
    events, ids = [], []
    for key, eid, raw in batch:
        try:
            events.append(parse_event(orjson.loads(raw)))
        except (orjson.JSONDecodeError, InputError):
            stats.refused += 1  # not from ``publish`` (which validates): acknowledged, never applied
        ids.append((key, eid))
    if events:
        req = Request(events, "stream", f"redis:{group}/{consumer}")
        service.handle([req])
        if req.error is not None:  # not committed: left pending, to be applied again (here or by another)
            raise RuntimeError(req.error)
        for res in req.results:
            status = res.get("status")
            if status == "duplicate":
                stats.duplicates += 1
            elif status == "refused":
                stats.refused += 1
            else:
                stats.recorded += 1
    pipe = r.pipeline(transaction=False)  # committed above: only now acknowledged
    for key, eid in ids:
        pipe.xack(key, group, eid)
    pipe.execute()
    stats.events += len(ids)
    stats.batches += 1

"""Monitoring events through Redis streams, partitioned by household.

``publish`` appends a file of events (JSON Lines, validated as POST /v1/events
validates them; a malformed file is refused whole, nothing sent) to
``partitions`` streams, a household's events all to one partition (a hash of
its ``household_id``, as ``jiuzhu monitor replay`` partitions) in file order.
Streams are never trimmed by length (no MAXLEN: an event dropped before it is
consumed would be lost); instead the publisher waits while a partition holds more
than ``max_unacked`` entries its consumer group has not acknowledged, and the
consumers remove what every group has acknowledged (``trim``), so Redis holds the
backlog, not the history. ``append`` is the bulk endpoint's way in: all or nothing,
refused (``Backpressure``) rather than waiting.

``consume`` reads the partitions in a consumer group, applies each batch with
the service's monitor (``MonitorService.handle``: date order, api/monitoring/order.py)
and commits it in the database BEFORE acknowledging it (XACK). A consumer
that dies leaves its entries pending; another claims them (XAUTOCLAIM) once
they have been idle ``claim_idle_ms``. A redelivered event is harmless: its
``event_id`` is stored under a unique key per household, and the monitor answers
it as a duplicate without applying it again.
"""

from __future__ import annotations

import logging
import threading
import time
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import redis
from sqlalchemy.exc import SQLAlchemyError

from api.monitoring.replay import ReplayError, partition
from api.monitoring.service import MonitorService, Request
from api.streams.known import KnownEvents, stored_keys
from engine.monitor.events import parse_event, today
from engine.policies.localities import NATIONAL
from engine.schema.model import InputError

log = logging.getLogger("jiuzhu.streams")

PREFIX = "jiuzhu:monitor:events"
RETRIES = 20  # a batch applied again at most this often when other consumers keep writing its households
MAX_PARTITIONS = 4096
META = f"{PREFIX}:partitions"  # how many partitions the publisher used (consumers read them all)


def stream_key(k: int) -> str:
    return f"{PREFIX}:{k}"


def connect(url: str) -> redis.Redis:
    return redis.Redis.from_url(url)


def read_events(path: Path, n: int) -> Iterator[tuple[int, bytes]]:
    """(partition, the line) for every event of the file, validated whole first (ReplayError names every
    bad line, and nothing is yielded). Two passes, so that a file of millions of events is not held in
    memory: the first validates and keeps only each event's partition (two bytes); the second reads the
    lines again."""
    bad: list[str] = []
    parts = array("H")
    latest = today()
    stamp = _stamp(path)
    with open(path, "rb") as f:
        for no, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                ev = parse_event(orjson.loads(line), "", latest)
            except orjson.JSONDecodeError as e:
                bad.append(f"{path.name}:{no}: 不是有效的 JSON / invalid JSON: {e}")
                continue
            except InputError as e:
                bad.extend(f"{path.name}:{no}: {x.field}: {x.message_zh} ({x.message_en})" for x in e.errors)
                continue
            if not bad:
                parts.append(household_partition(ev.household_id, n))
    if bad:
        raise ReplayError(bad)
    return _lines(path, stamp, parts)


def _stamp(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns


def household_partition(household_id: str, n: int) -> int:
    return partition(household_id.upper(), n)  # ``…123x`` and ``…123X`` are one household


def _lines(path: Path, stamp: tuple[int, int], parts: array) -> Iterator[tuple[int, bytes]]:
    if _stamp(path) != stamp:
        raise ReplayError([f"{path.name}: 文件在校验后被修改，未发布 / the file changed after it was checked: nothing published"])
    it = iter(parts)
    with open(path, "rb") as f:
        for line in f:
            if line.strip():
                yield next(it), line.strip()


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


def layout(r: redis.Redis, n: int) -> int:
    """The streams' count of partitions: ``n`` if none was set yet (the first publisher sets it, once)."""
    r.set(META, n, nx=True)
    return partitions(r)


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
    if n > MAX_PARTITIONS:
        raise ValueError(f"at most {MAX_PARTITIONS} partitions")
    existing = partitions(r)
    if existing and existing != n:  # another count would move households between partitions: order lost
        raise ValueError(f"the streams already have {existing} partitions, not {n}")
    events = read_events(path, n)  # the whole file validated before anything is sent
    if layout(r, n) != n:
        raise ValueError(f"the streams already have {partitions(r)} partitions, not {n}")
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

    for k, line in events:
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


class Backpressure(Exception):
    """Appending would take a partition over its bound of un-acknowledged entries: nothing appended."""

    def __init__(self, partition: int, unacked: int, adding: int, bound: int):
        super().__init__(f"partition {partition} holds {unacked} un-acknowledged events; {adding} more would pass {bound}")
        self.partition, self.unacked, self.adding, self.bound = partition, unacked, adding, bound


@dataclass
class Sender:
    """Who sent the events of a stream entry: the consumer applies them under this key and scope, as
    POST /v1/events would (``jiuzhu monitor publish`` entries carry none: national, named by the group)."""

    key_id: str
    name: str
    scope: str


def append(r: redis.Redis, entries: list[tuple[int, bytes]], n: int, group: str, max_unacked: int,
           sender: Sender) -> list[str]:
    """Append ``entries`` (partition, event line) all at once (one MULTI/EXEC: all or none), or raise
    ``Backpressure`` and append none when a partition would go over ``max_unacked``; their stream ids.

    The bound is checked, then the entries appended: publishers appending at the same moment may pass
    it by what they append (each at most one request), never more."""
    ensure_groups(r, group, n)
    adding: dict[int, int] = {}
    for k, _line in entries:
        adding[k] = adding.get(k, 0) + 1
    unacked = {p.partition: p.unacked for p in lag(r, group)}
    for k, add in sorted(adding.items()):
        if unacked.get(k, 0) + add > max_unacked:
            raise Backpressure(k, unacked.get(k, 0), add, max_unacked)
    fields = {"k": sender.key_id, "n": sender.name, "s": sender.scope}
    pipe = r.pipeline(transaction=True)
    for k, line in entries:
        pipe.xadd(stream_key(k), {"e": line, **fields})
    return [i.decode() if isinstance(i, bytes) else i for i in pipe.execute()]


@dataclass
class ConsumeStats:
    events: int = 0  # entries acknowledged
    recorded: int = 0
    duplicates: int = 0  # redelivered (or sent twice): already stored, not applied again
    refused: int = 0
    claimed: int = 0  # entries claimed from dead consumers
    batches: int = 0
    retries: int = 0  # batches applied again after another consumer wrote the same households
    seconds: float = 0.0


_RENEW = """if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0"""
_RELEASE = """if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"""


def lease_key(group: str, k: int) -> str:
    return f"{PREFIX}:{k}:owner:{group}"


class Leases:
    """Which partitions this consumer owns. One household's events must be applied by one consumer
    at a time, in order (an event applied before its household's register would be refused), so a
    partition is owned by one live consumer through a lease (SET NX PX ``ttl_ms``) that a thread renews
    while the process lives; a dead consumer's leases lapse and a live one takes them over, with the
    entries it left pending. Each consumer takes its fair share of the partitions (live consumers are
    those with a recent heartbeat) and gives back what is above it between batches."""

    def __init__(self, r: redis.Redis, group: str, consumer: str, n: int, ttl_ms: int):
        self.r, self.group, self.consumer, self.n, self.ttl_ms = r, group, consumer, n, ttl_ms
        self.owned: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._renew, self._release = r.register_script(_RENEW), r.register_script(_RELEASE)
        self._beats = f"{PREFIX}:consumers:{group}"
        self._thread = threading.Thread(target=self._keep, name="jiuzhu-stream-leases", daemon=True)
        self._heartbeat()
        self._thread.start()

    def _heartbeat(self) -> None:
        now = int(time.time() * 1000)
        self.r.zadd(self._beats, {self.consumer: now})
        self.r.zremrangebyscore(self._beats, "-inf", now - 2 * self.ttl_ms)

    def _keep(self) -> None:
        while not self._stop.wait(self.ttl_ms / 4000):
            self._heartbeat()
            with self._lock:
                for k in list(self.owned):
                    if not self._renew(keys=[lease_key(self.group, k)], args=[self.consumer, self.ttl_ms]):
                        self.owned.discard(k)  # lapsed (this process was stalled): another may own it now

    def fair_share(self) -> int:
        live = self.r.zcount(self._beats, int(time.time() * 1000) - self.ttl_ms, "+inf")
        return -(-self.n // max(1, live))

    def balance(self) -> list[int]:
        """Give back partitions above the fair share, take free ones up to it; the partitions newly taken."""
        share = self.fair_share()
        taken = []
        with self._lock:
            for k in sorted(self.owned, reverse=True)[: max(0, len(self.owned) - share)]:
                self._release(keys=[lease_key(self.group, k)], args=[self.consumer])
                self.owned.discard(k)
            for k in range(self.n):
                if len(self.owned) >= share:
                    break
                if k not in self.owned and self.r.set(lease_key(self.group, k), self.consumer, nx=True, px=self.ttl_ms):
                    self.owned.add(k)
                    taken.append(k)
            return taken

    def current(self) -> list[int]:
        with self._lock:
            return sorted(self.owned)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        with self._lock:
            for k in self.owned:
                self._release(keys=[lease_key(self.group, k)], args=[self.consumer])
            self.owned.clear()
        self.r.zrem(self._beats, self.consumer)


def consume(r: redis.Redis, service: MonitorService, group: str, consumer: str, *, count: int = 200,
            block_ms: int = 1000, claim_idle_ms: int = 30_000, until_empty: bool = False,
            on_batch: Callable[[ConsumeStats], None] | None = None) -> ConsumeStats:
    """Consume until stopped (or, ``until_empty``, until every partition is read and acknowledged).

    A partition taken over from a dead consumer (its lease lapsed after ``claim_idle_ms``) is resumed
    with the entries that consumer left pending, claimed (XAUTOCLAIM) and applied first, in order."""
    n = partitions(r)
    if n == 0:
        raise ValueError("no streams yet: nothing has been published")
    ensure_groups(r, group, n)
    stats = ConsumeStats()
    t0 = time.perf_counter()
    leases = Leases(r, group, consumer, n, claim_idle_ms)
    try:
        while True:
            for k in leases.balance():  # taken over: what the previous owner read and did not acknowledge, first
                start = "0-0"
                while True:
                    nxt, claimed, _deleted = r.xautoclaim(stream_key(k), group, consumer, 0, start, count=count)
                    claimed = [(stream_key(k), eid, f) for eid, f in claimed if f]
                    if claimed:
                        stats.claimed += len(claimed)  # left by another (a consumer acknowledges before it gives a partition back)
                        _apply(r, service, group, consumer, claimed, stats)
                    start = nxt.decode() if isinstance(nxt, bytes) else nxt
                    if start == "0-0":
                        break
            owned = leases.current()
            batch: list[tuple[str, bytes, dict]] = []
            if owned:
                got = r.xreadgroup(group, consumer, {stream_key(k): ">" for k in owned}, count=count, block=block_ms)
                for key, entries in got or []:
                    batch.extend((key.decode(), eid, f) for eid, f in entries)
            else:
                time.sleep(block_ms / 1000)
            if not batch:
                if until_empty and all(p.unacked == 0 for p in lag(r, group)):
                    break
                continue
            _apply(r, service, group, consumer, batch, stats)
            if on_batch is not None:
                on_batch(stats)
    finally:
        leases.close()
    stats.seconds = time.perf_counter() - t0
    return stats


def _sender(fields: dict, group: str, consumer: str) -> Sender:
    if b"k" in fields:
        return Sender(fields[b"k"].decode(), fields[b"n"].decode(), fields[b"s"].decode())
    return Sender("stream", f"redis:{group}/{consumer}", NATIONAL)


def _requests(batch: list[tuple[str, bytes, dict]], group: str, consumer: str, stats: ConsumeStats) -> list[Request]:
    """The batch's events as requests, one per run of entries of one sender (in stream order)."""
    out: list[Request] = []
    last: Sender | None = None
    for key, eid, fields in batch:
        try:
            obj = orjson.loads(fields[b"e"])
            if isinstance(obj, dict) and obj.get("event_id") is None:
                # The entry's own id, so that its redelivery (a consumer that died after committing it,
                # before acknowledging it) is a duplicate, as for an event the sender gave an id.
                obj["event_id"] = entry_event_id(key, eid)
            ev = parse_event(obj)
        except (KeyError, orjson.JSONDecodeError, InputError):
            stats.refused += 1  # not from a publisher here (they validate): acknowledged, never applied
            continue
        sender = _sender(fields, group, consumer)
        if sender != last:
            out.append(Request([], sender.key_id, sender.name, scope=sender.scope))
            last = sender
        out[-1].events.append(ev)
    return out


def _apply(r: redis.Redis, service: MonitorService, group: str, consumer: str,
           batch: list[tuple[str, bytes, dict]], stats: ConsumeStats) -> None:
    requests = _requests(batch, group, consumer, stats)
    if requests:
        for attempt in range(RETRIES):
            for req in requests:
                req.reset()
                service.pseudonymise(req)  # the ids as stored, for the look-up below
            real = service.repo
            pairs = ((e.household_id, e.event_id) for req in requests for e in req.events if e.event_id is not None)
            try:
                service.repo = KnownEvents(real, stored_keys(real, pairs))  # one query for the batch, not one per event
            except SQLAlchemyError:  # the database is away: the monitor meets it too, and the batch is retried
                log.warning("looking up the batch's stored events failed", exc_info=True)
            try:
                service.handle(requests)  # on failure the service forgets these households: reloaded from the database
            finally:
                service.repo = real
            error = next((req.error for req in requests if req.error is not None), None)
            if error is None:
                break
            # Another consumer committed events of the same household meanwhile (the group hands a
            # partition's entries to whichever consumer asks): apply the batch again on what is stored.
            stats.retries += 1
            time.sleep(0.05 * (attempt + 1))
        else:  # not committed: left pending, to be claimed and applied again
            raise RuntimeError(error)
        for res in (res for req in requests for res in req.results):
            status = res.get("status")
            if status == "duplicate":
                stats.duplicates += 1
            elif status == "refused":
                stats.refused += 1
                log.warning("stream event refused: %s", orjson.dumps(res.get("errors")).decode())
            else:
                stats.recorded += 1
    _acknowledge(r, group, batch)  # committed above: only now acknowledged
    stats.events += len(batch)
    stats.batches += 1


def _acknowledge(r: redis.Redis, group: str, batch: list[tuple[str, bytes, dict]]) -> None:
    pipe = r.pipeline(transaction=False)
    for key, eid, _f in batch:
        pipe.xack(key, group, eid)
    pipe.execute()
    for key in sorted({key for key, _eid, _f in batch}):
        trim(r, key)


def entry_event_id(key: str, eid: bytes | str) -> str:
    """``redis-3-1764786000000-0``: the event id of an entry published without one (partition, entry id)."""
    return f"redis-{key.rsplit(':', 1)[1]}-{eid.decode() if isinstance(eid, bytes) else eid}"


def _after(stream_id: str) -> str:
    ms, _, seq = stream_id.partition("-")
    return f"{ms}-{int(seq or 0) + 1}"


def trim(r: redis.Redis, key: str) -> int:
    """Remove the entries every consumer group has acknowledged (the streams' memory stays bounded by
    what is not yet acknowledged, which the publishers bound); the number removed.

    What a group has acknowledged is everything before its oldest pending entry, or, with none
    pending, everything up to the last entry delivered to it."""
    floor: str | None = None
    for g in r.xinfo_groups(key):
        name = g["name"]
        if int(g["pending"]):
            oldest = r.xpending(key, name)["min"]
            mark = oldest.decode() if isinstance(oldest, bytes) else oldest
        else:
            last = g["last-delivered-id"]
            mark = _after(last.decode() if isinstance(last, bytes) else last)
        if floor is None or _sid(mark) < _sid(floor):
            floor = mark
    if floor is None or floor == "0-1":
        return 0
    return r.xtrim(key, minid=floor, approximate=False)


def _sid(stream_id: str) -> tuple[int, int]:
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq or 0)

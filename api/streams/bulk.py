"""POST /v1/events/bulk without HTTP: a body of events (a JSON array or JSON Lines) read, counted,
validated and scoped whole, then appended to the streams at once (``bus.append``), or refused whole.

Every event is checked as POST /v1/events checks one; an error names the event (``[3].date`` in an
array, ``line 4.date`` in JSON Lines). The only scope that can be checked before the events are
applied is the one the caller writes: a ``register`` event's ``household.locality``. The rest (a
household registered elsewhere) is checked by the consumer, which applies each event under its
sender's key and scope, exactly as POST /v1/events does (``bus.Sender``), and refuses it there.
What is appended carries no resident ID number: the events are masked and tagged first
(``pseudonymous``), as the monitor stores them; the partition is taken from the id as sent, as
``jiuzhu monitor publish`` takes it, so a household's events meet in one partition whichever way
they came.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from api.auth.keys import out_of_scope
from api.core.errors import error_item
from api.streams import bus
from engine.monitor.events import parse_event, pseudonymous, today
from engine.policies.localities import NATIONAL, covers, is_valid
from engine.schema.model import InputError

MAX_LISTED = 200  # errors listed in one refusal; a count says how many more there were


@dataclass
class Refusal(Exception):
    """The whole body refused: its HTTP status and the error items (nothing was appended)."""

    status: int
    errors: list[dict]


@dataclass
class Published:
    ids: list[str]  # stream ids, in the body's order
    per_partition: dict[int, int]  # events appended per partition
    partitions: int


def _items(body: bytes) -> tuple[list, list[str]]:
    """The body's objects and how each is named in errors (``[i]`` or ``line N``)."""
    text = body.lstrip()
    if text.startswith(b"["):
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as e:
            raise Refusal(
                422, [error_item("(root)", "不是有效的 JSON 数组", f"invalid JSON array: {e}", "json_invalid")]
            ) from None
        return data, [f"[{i}]" for i in range(len(data))]
    items, names, bad = [], [], []
    for no, line in enumerate(body.split(b"\n"), 1):
        if not line.strip():
            continue
        try:
            items.append(orjson.loads(line))
        except orjson.JSONDecodeError as e:
            bad.append(
                error_item(
                    f"line {no}",
                    "不是有效的 JSON（JSON Lines：每行一个事件）",
                    f"invalid JSON (JSON Lines: one event per line): {e}",
                    "json_invalid",
                )
            )
            items.append(None)
        names.append(f"line {no}")
    if bad:
        raise Refusal(422, _capped(bad))
    return items, names


def _capped(errors: list[dict]) -> list[dict]:
    if len(errors) <= MAX_LISTED:
        return errors
    more = len(errors) - MAX_LISTED
    return [
        *errors[:MAX_LISTED],
        error_item("(root)", f"另有 {more} 处错误未列出", f"{more} more errors not listed", "more_errors"),
    ]


def read(body: bytes, max_events: int, scope: str, secret: bytes) -> list[tuple[str, bytes]]:
    """(household id as sent, masked event line) for every event of ``body``, or ``Refusal`` naming what is wrong."""
    items, names = _items(body)
    if not items:
        raise Refusal(422, [error_item("(root)", "至少需要一个事件", "needs at least one event", "too_short")])
    if len(items) > max_events:
        raise Refusal(
            413,
            [
                error_item(
                    "(root)",
                    f"一次最多 {max_events} 个事件，收到 {len(items)} 个：请分批报送",
                    f"at most {max_events} events per request, got {len(items)}: send them in parts",
                    "too_many",
                )
            ],
        )
    errors: list[dict] = []
    scoped: list[dict] = []
    out: list[tuple[str, bytes]] = []
    latest = today()
    for obj, name in zip(items, names, strict=True):
        try:
            ev = parse_event(obj, name, latest)
        except InputError as e:
            errors.extend(e.to_dict()["errors"])
            continue
        if scope != NATIONAL and ev.type == "register":
            loc = ev.data.get("household", {}).get("locality")
            if is_valid(loc) and not covers(scope, loc):
                e = out_of_scope(f"{name}.household.locality")
                scoped.append(error_item(e.field, e.zh, e.en, e.code))
                continue
        out.append((ev.household_id, orjson.dumps(pseudonymous(ev, secret).raw)))
    if errors:
        raise Refusal(422, _capped(errors + scoped))
    if scoped:
        raise Refusal(403, _capped(scoped))
    return out


def publish(r, events: list[tuple[str, bytes]], partitions: int, group: str, max_unacked: int, sender: bus.Sender) -> Published:
    """Append ``events`` (from ``read``) to the streams, ``partitions`` of them unless Redis has a count already."""
    n = bus.layout(r, partitions)
    entries = [(bus.household_partition(hid, n), line) for hid, line in events]
    ids = bus.append(r, entries, n, group, max_unacked, sender)
    counts: dict[int, int] = {}
    for k, _line in entries:
        counts[k] = counts.get(k, 0) + 1
    return Published(ids, dict(sorted(counts.items())), n)

"""What is stored for a determination: the input with ID numbers masked, the output, a summary."""

from __future__ import annotations

import datetime as dt
import hashlib
import zlib
from typing import Any

import orjson

from api.auth.keys import Caller
from api.core.errors import not_found
from api.storage.ids import uuid7
from engine.schema.masking import has_id_number, id_key, mask_id_number, scrub, scrub_json

__all__ = ["has_id_number", "id_key", "scrub", "scrub_json"]


def masked_input(raw: dict) -> tuple[str, bool]:
    """The input as stored, and whether ID numbers also appear outside ``members[].id_number``."""
    members = raw.get("members")
    if isinstance(members, list) and any(isinstance(m, dict) and m.get("id_number") for m in members):
        raw = dict(raw)
        raw["members"] = [
            {**m, "id_number": mask_id_number(m["id_number"])}
            if isinstance(m, dict) and isinstance(m.get("id_number"), str) and m["id_number"]
            else m
            for m in members
        ]
    text = orjson.dumps(raw).decode()
    if has_id_number(text):
        return scrub(text), True
    return text, False


def household_key(household_id: str, secret: bytes) -> str | None:
    """The keyed hash stored next to a household_id that holds an ID number (its stored text is masked,
    and two such ids may mask alike); None for other ids, which are stored and looked up as they are."""
    return id_key(household_id, secret) if has_id_number(household_id) else None


def idempotency_key(key: str | None, secret: bytes) -> str | None:
    """What is stored of an Idempotency-Key: its keyed hash (a key may be anything, an ID number too)."""
    return None if key is None else id_key(key, secret)


def request_hash(raw: dict) -> str:
    """Same household, same hash, whatever the key order or whitespace of the request."""
    return hashlib.sha256(orjson.dumps(raw, option=orjson.OPT_SORT_KEYS)).hexdigest()


def summary(det: dict) -> list[dict]:
    return [
        {"program": p["program"], "members": p["members"], "status": p["status"], "monthly_amount": p["monthly_amount"]}
        for p in det["programs"]
    ]


def iso(ts: dt.datetime) -> str:
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=dt.UTC)
    return ts.astimezone(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def build_row(
    det: dict,
    out: bytes,
    raw: dict,
    req_hash: str,
    caller: Caller,
    now: dt.datetime,
    idempotency_key: str | None = None,
    batch_id: str | None = None,
    batch_index: int | None = None,
    secret: bytes = b"",
) -> dict[str, Any]:
    """A determinations row. ``idempotency_key`` is stored as given (``Service`` passes its keyed hash)."""
    stored_input, scrub_all = masked_input(raw)
    household_id = det["household_id"]
    hh_key = None
    summary_ = summary(det)
    # The output is made from the input: it can hold an ID number only where the input did.
    if scrub_all:
        out = scrub(out.decode()).encode()
        hh_key = household_key(household_id, secret)
        household_id = scrub(household_id)
        summary_ = scrub_json(summary_)
    return {
        "id": uuid7(),
        "household_id": household_id,
        "household_key": hh_key,
        "locality": det["locality"],
        "as_of": dt.date.fromisoformat(det["as_of"]),
        "ruleset_version": det["ruleset_version"],
        "caller_key_id": caller.key_id,
        "caller_name": caller.name,
        "caller_role": str(caller.role),
        "created_at": now,
        "idempotency_key": idempotency_key,
        "request_hash": req_hash,
        "batch_id": batch_id,
        "batch_index": batch_index,
        "input_json": stored_input,
        "output_zlib": zlib.compress(out, 1),
        "summary_json": orjson.dumps(summary_).decode(),
    }


def output_of(row) -> bytes:
    """The stored determination JSON of a determinations row."""
    return zlib.decompress(row["output_zlib"])


def with_record_fields(out: bytes | str, determination_id: str, recorded_at: str) -> bytes:
    """The determination JSON with ``determination_id`` and ``recorded_at`` appended (no re-serialisation)."""
    if isinstance(out, str):
        out = out.encode()
    return out[:-1] + b',"determination_id":"' + determination_id.encode() + b'","recorded_at":"' + recorded_at.encode() + b'"}'


# -- reading records back (GET /v1/determinations/{id}, /v1/households/{id}/determinations) --------------
# Blocking (the database): the routes call these in a worker thread. Records outside the caller's
# scope read as unknown (404, or absent from a history).


def _caller_of(m) -> dict:
    return {"key_id": m["caller_key_id"], "name": m["caller_name"], "role": m["caller_role"]}


def determination_record(repo, determination_id: str, scope) -> bytes:
    """One stored determination as the JSON body of its record; ApiError 404 when unknown or out of scope."""
    row = repo.determination(determination_id, scope=scope)
    if row is None:
        raise not_found("determination_id", "未找到该认定记录", "no such determination")
    m = row._mapping
    # Stored JSON is spliced in as is: it was written by orjson and is returned byte for byte.
    head = orjson.dumps(
        {
            "determination_id": m["id"],
            "recorded_at": iso(m["created_at"]),
            "household_id": m["household_id"],
            "locality": m["locality"],
            "as_of": m["as_of"].isoformat(),
            "ruleset_version": m["ruleset_version"],
            "caller": _caller_of(m),
            "batch_id": m["batch_id"],
        }
    )
    return head[:-1] + b',"input":' + m["input_json"].encode() + b',"determination":' + output_of(m) + b"}"


def household_history(repo, secret: bytes, household_id: str, limit: int, before: str | None, scope) -> dict:
    """A household's determinations, newest first, ``limit`` a page (``next_before`` for the next)."""
    # A household_id holding an ID number was stored masked: it is found by its keyed hash, so that
    # ids that mask alike keep their own histories.
    key = household_key(household_id, secret)
    rows = repo.household_history(household_id, limit + 1, before, key, scope=scope)
    more = len(rows) > limit
    rows = rows[:limit]
    items = [
        {
            "determination_id": r.id,
            "recorded_at": iso(r.created_at),
            "locality": r.locality,
            "as_of": r.as_of.isoformat(),
            "ruleset_version": r.ruleset_version,
            "caller": _caller_of(r._mapping),
            "batch_id": r.batch_id,
            "programs": orjson.loads(r.summary_json),
        }
        for r in rows
    ]
    return {"household_id": household_id, "determinations": items, "next_before": rows[-1].id if more else None}

"""Idempotency-Key: a retried window request gets the first answer and is recorded once."""

from __future__ import annotations

import asyncio
import copy

from http_helpers import auth

from api.core import examples

HH = examples.HOUSEHOLD


def test_a_retry_returns_the_first_answer_and_records_once(db_client, db_keys):
    h = {**auth(db_keys["window"]), "Idempotency-Key": "城关镇-0001".encode().hex()}
    first = db_client.post("/v1/evaluate", json=HH, headers=h)
    again = db_client.post("/v1/evaluate", json=HH, headers=h)
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert db_client.app.state.repo.count_determinations() == 1


def test_key_order_and_whitespace_do_not_make_a_different_request(db_client, db_keys):
    import json

    h = {**auth(db_keys["window"]), "Idempotency-Key": "k-1"}
    first = db_client.post("/v1/evaluate", content=json.dumps(HH), headers=h)
    reordered = json.dumps(dict(reversed(list(HH.items()))), indent=2)
    again = db_client.post("/v1/evaluate", content=reordered, headers=h)
    assert again.json()["determination_id"] == first.json()["determination_id"]


def test_the_same_key_with_another_body_is_refused(db_client, db_keys):
    h = {**auth(db_keys["window"]), "Idempotency-Key": "k-2"}
    assert db_client.post("/v1/evaluate", json=HH, headers=h).status_code == 200
    other = copy.deepcopy(HH)
    other["as_of"] = "2021-09-01"
    r = db_client.post("/v1/evaluate", json=other, headers=h)
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "Idempotency-Key"
    assert db_client.app.state.repo.count_determinations() == 1


def test_keys_are_per_caller(db_client, db_keys):
    a = db_client.post("/v1/evaluate", json=HH, headers={**auth(db_keys["window"]), "Idempotency-Key": "same"})
    b = db_client.post("/v1/evaluate", json=HH, headers={**auth(db_keys["caseworker"]), "Idempotency-Key": "same"})
    assert a.json()["determination_id"] != b.json()["determination_id"]
    assert db_client.app.state.repo.count_determinations() == 2


def test_an_invalid_key_is_422(client, keys):
    for bad in ("有中文".encode(), b"a" * 256, b"has space"):
        r = client.post("/v1/evaluate", json=HH, headers={**auth(keys["window"]), "Idempotency-Key": bad})
        assert r.status_code == 422
        assert r.json()["errors"][0]["field"] == "Idempotency-Key"


def test_concurrent_duplicates_in_one_group_commit_are_recorded_once(db_client, db_keys):
    """Requests racing with the same key (a window retrying before the first answer arrived)."""
    from api.auth.keys import NATIONAL_SCOPE, Caller, Role
    from api.evaluation.records import build_row, request_hash
    from engine.schema.validate import parse

    app = db_client.app
    writer = app.state.writer
    caller = Caller(app.state.repo.list_keys()[0].id, "x", Role.WINDOW, NATIONAL_SCOPE)
    parsed = parse(HH)
    det = app.state.engine.evaluate_parsed(parsed)
    import datetime as dt

    import orjson

    now = dt.datetime.now(dt.UTC)

    async def race():
        rows = [build_row(det, orjson.dumps(det), parsed.raw, request_hash(parsed.raw), caller, now, "race") for _ in range(5)]
        return await asyncio.gather(*(writer.write([r], idem=(caller.key_id, "race", False)) for r in rows))

    results = asyncio.run(race())
    assert app.state.repo.count_determinations() == 1
    assert sum(r is None for r in results) == 1  # one inserted, four told to replay it
    replayed = {r.row["id"] for r in results if r is not None}
    assert len(replayed) == 1

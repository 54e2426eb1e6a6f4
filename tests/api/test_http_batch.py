"""POST /v1/evaluate/batch: each household answered or refused on its own, recorded together."""

from __future__ import annotations

import copy

from http_helpers import auth

from api.core import examples


def test_one_bad_household_does_not_sink_the_rest(db_client, db_keys):
    body = examples.batch()
    r = db_client.post("/v1/evaluate/batch", json=body, headers=auth(db_keys["window"]))
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["count"], out["answered"], out["refused"]) == (3, 2, 1)
    assert [x["index"] for x in out["results"]] == [0, 1, 2]
    assert [x["status"] for x in out["results"]] == ["answered", "answered", "refused"]
    refused = out["results"][2]["errors"]
    assert {"members[0].birth_date", "members[0].incomes[0].monthly"} <= {e["field"] for e in refused}
    first = out["results"][0]
    assert first["determination"]["household_id"] == "LN-2021-0001"
    rec = db_client.get(f"/v1/determinations/{first['determination_id']}", headers=auth(db_keys["policy"])).json()
    assert rec["batch_id"] == out["batch_id"]
    assert rec["determination"] == first["determination"]
    assert db_client.app.state.repo.count_determinations() == 2


def test_a_batch_retry_with_the_same_key_returns_the_first_answer(db_client, db_keys):
    h = {**auth(db_keys["window"]), "Idempotency-Key": "batch-2021-08"}
    first = db_client.post("/v1/evaluate/batch", json=examples.batch(), headers=h)
    again = db_client.post("/v1/evaluate/batch", json=examples.batch(), headers=h)
    assert again.status_code == 200
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert db_client.app.state.repo.count_determinations() == 2


def test_more_than_a_thousand_households_is_refused_whole(client, keys):
    hh = examples.HOUSEHOLD
    r = client.post("/v1/evaluate/batch", json={"households": [hh] * 1001}, headers=auth(keys["window"]))
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "households"
    assert client.app.state.repo.count_determinations() == 0


def test_a_thousand_households_are_all_answered(client, keys):
    households = []
    for i in range(1000):
        hh = copy.deepcopy(examples.HOUSEHOLD)
        hh["household_id"] = f"LN-{i:04d}"
        households.append(hh)
    r = client.post("/v1/evaluate/batch", json={"households": households}, headers=auth(keys["window"]))
    assert r.status_code == 200
    assert r.json()["answered"] == 1000
    assert client.app.state.repo.count_determinations() == 1000


def test_malformed_batches_are_422(client, keys):
    h = auth(keys["window"])
    for body in ([], {"households": {}}, {"households": []}, {"households": [], "extra": 1}, {"items": []}):
        r = client.post("/v1/evaluate/batch", json=body, headers=h)
        assert r.status_code == 422, body
    assert client.post("/v1/evaluate/batch", content=b"{nope", headers=h).status_code == 422


def test_non_object_households_are_refused_individually(client, keys):
    r = client.post("/v1/evaluate/batch", json={"households": [examples.HOUSEHOLD, 7, None]}, headers=auth(keys["window"]))
    assert r.status_code == 200
    assert [x["status"] for x in r.json()["results"]] == ["answered", "refused", "refused"]

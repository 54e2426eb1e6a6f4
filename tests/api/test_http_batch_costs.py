"""What a batch may cost: decisions only unless explanations are asked for, members bounded, the answer bounded."""

from __future__ import annotations

import copy
import dataclasses

import pytest
from conftest import _client, make_keys
from http_helpers import auth

from api.core import examples

DROP = ("determination_id", "recorded_at")


def _big(i: int, members: int = 50) -> dict:
    """The example household grown to ``members`` members (the most one household may have)."""
    hh = copy.deepcopy(examples.HOUSEHOLD)
    hh["household_id"] = f"LN-BIG-{i:04d}"
    child = hh["members"][1]
    hh["members"] = [hh["members"][0]] + [{**copy.deepcopy(child), "id": f"m{j}"} for j in range(members - 1)]
    return hh


def _rules(det: dict) -> set[str]:
    return {r["rule"] for p in det["programs"] for r in p["reasons"]}


def _single(client, key, hh) -> dict:
    r = client.post("/v1/evaluate", json=hh, headers=auth(key))
    assert r.status_code == 200, r.text
    return {k: v for k, v in r.json().items() if k not in DROP}


def test_a_batch_answers_decisions_only_unless_explanations_are_asked_for(db_client, db_keys):
    h = auth(db_keys["window"])
    hh = examples.HOUSEHOLD
    full = _single(db_client, db_keys["window"], hh)

    plain = db_client.post("/v1/evaluate/batch", json={"households": [hh]}, headers=h)
    assert plain.status_code == 200, plain.text
    det = plain.json()["results"][0]["determination"]
    assert det["explained"] is False
    # the same decisions: status, amounts, missing facts of every program ...
    keep = ("program", "members", "status", "monthly_amount", "missing")
    assert [{k: p[k] for k in keep} for p in det["programs"]] == [{k: p[k] for k in keep} for p in full["programs"]]
    assert det["household"]["per_capita_income"] == full["household"]["per_capita_income"]
    # ... without the reason of each rule checked
    assert _rules(det) < _rules(full)
    assert all(r.get("kind") in ("decision", "interaction") for p in det["programs"] for r in p["reasons"])
    # the record holds what was answered, and says so
    rec = db_client.get(f"/v1/determinations/{plain.json()['results'][0]['determination_id']}", headers=auth(db_keys["policy"]))
    assert rec.json()["determination"]["explained"] is False

    for explained in (
        db_client.post("/v1/evaluate/batch", json={"households": [hh], "explain": True}, headers=h),
        db_client.post("/v1/evaluate/batch?explain=1", json={"households": [hh]}, headers=h),
    ):
        assert explained.status_code == 200, explained.text
        assert explained.json()["results"][0]["determination"] == full  # what POST /v1/evaluate answers


def test_explain_must_be_a_boolean(client, keys):
    h = auth(keys["window"])
    r = client.post("/v1/evaluate/batch", json={"households": [examples.HOUSEHOLD], "explain": "yes"}, headers=h)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "explain"
    r = client.post("/v1/evaluate/batch?explain=maybe", json={"households": [examples.HOUSEHOLD]}, headers=h)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "explain"


def test_too_many_members_in_a_batch_is_refused_whole_before_evaluating(client, keys):
    # 401 households of 50 members: 20,050 members, under the 1,000-household limit but over the 20,000 members
    households = [_big(0)] * 401
    r = client.post("/v1/evaluate/batch", json={"households": households}, headers=auth(keys["window"]))
    assert r.status_code == 422, r.status_code
    (err,) = r.json()["errors"]
    assert (err["field"], err["code"]) == ("households", "too_many_members")
    assert "20000" in err["message_zh"] and "20050" in err["message_en"]
    assert client.app.state.repo.count_determinations() == 0


def test_explanations_have_a_lower_members_limit(client, keys):
    households = [_big(0)] * 101  # 5,050 members: fine decisions-only, over the 5,000 with explanations
    for url, body in (
        ("/v1/evaluate/batch", {"households": households, "explain": True}),
        ("/v1/evaluate/batch?explain=true", {"households": households}),
    ):
        r = client.post(url, json=body, headers=auth(keys["window"]))
        assert r.status_code == 422
        assert r.json()["errors"][0]["field"] == "households"
        assert "explain" in r.json()["errors"][0]["message_en"]
    assert client.app.state.repo.count_determinations() == 0


@pytest.fixture
def small_limits_client(sqlite_settings, engine):
    settings = dataclasses.replace(sqlite_settings, max_batch_members=1000, max_explained_batch_members=1000)
    with _client(settings, engine) as c:
        yield c


def test_the_answer_to_a_batch_of_large_households_stays_bounded(small_limits_client):
    client = small_limits_client
    h = auth(make_keys(client)["window"])
    households = [_big(i) for i in range(20)]  # 1,000 members
    r = client.post("/v1/evaluate/batch", json={"households": households}, headers=h)
    assert r.status_code == 200
    assert r.json()["answered"] == 20
    # decisions only: about 120 kB per 50-member household (a full explanation is over 500 kB)
    assert len(r.content) < 20 * 160_000, len(r.content)
    explained = client.post("/v1/evaluate/batch", json={"households": households, "explain": True}, headers=h)
    assert explained.status_code == 200
    assert len(explained.content) > 3 * len(r.content)
    assert client.app.state.repo.count_determinations() == 40

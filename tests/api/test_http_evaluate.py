"""POST /v1/evaluate: the contract's determination, bad input named field by field, limits."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import orjson
from http_helpers import auth

from api.core import examples
from engine import evaluate

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
HH = examples.HOUSEHOLD


def test_the_docs_example_is_the_repository_example():
    assert json.loads((EXAMPLES / "liaoning_shenyang_family.json").read_text(encoding="utf-8")) == HH


def test_every_example_gets_the_engines_determination_plus_its_record_id(client, keys, engine):
    for path in sorted(EXAMPLES.glob("*.json")):
        household = json.loads(path.read_text(encoding="utf-8"))
        r = client.post("/v1/evaluate", content=path.read_bytes(), headers=auth(keys["window"]))
        assert r.status_code == 200, r.text
        body = r.json()
        rid = body.pop("determination_id")
        recorded = body.pop("recorded_at")
        assert body == orjson.loads(orjson.dumps(evaluate(household, engine=engine)))
        assert r.headers["location"] == f"/v1/determinations/{rid}"
        assert recorded.endswith("Z")


def test_a_number_of_bad_fields_are_each_named_in_chinese_and_english(client, keys):
    bad = copy.deepcopy(HH)
    bad["members"][1]["birth_date"] = "2005-02-30"
    bad["members"][0]["incomes"][0]["monthly"] = "-1"
    bad["area"] = "suburb"
    r = client.post("/v1/evaluate", json=bad, headers=auth(keys["window"]))
    assert r.status_code == 422
    errors = r.json()["errors"]
    fields = {e["field"] for e in errors}
    assert {"members[1].birth_date", "members[0].incomes[0].monthly", "area"} <= fields
    for e in errors:
        assert e["message_zh"] and e["message_en"] and e["field"] in e["message"]
        assert any("\u4e00" <= ch <= "\u9fff" for ch in e["message_zh"])


def test_malformed_json_and_non_objects_are_422_not_500(client, keys):
    h = auth(keys["window"])
    for body in (b"{", b"", b"[]", b"null", b'"x"', b"\xff\xfe", b"1e999999", b'{"household_id": 1}'):
        r = client.post("/v1/evaluate", content=body, headers=h)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["errors"][0]["field"]


def test_a_wrong_id_number_check_digit_is_refused_and_nothing_is_recorded(client, keys):
    bad = copy.deepcopy(HH)
    bad["members"][0]["id_number"] = "210102195605011231"
    r = client.post("/v1/evaluate", json=bad, headers=auth(keys["window"]))
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "members[0].id_number"
    assert client.app.state.repo.count_determinations() == 0


def test_more_than_fifty_members_is_422_naming_members(client, keys):
    big = copy.deepcopy(HH)
    big["members"] = [
        {"id": f"m{i}", "relation": "child" if i else "head", "birth_date": "1990-01-01", "hukou_locality": "210102"}
        for i in range(51)
    ]
    r = client.post("/v1/evaluate", json=big, headers=auth(keys["window"]))
    assert r.status_code == 422
    assert [e["field"] for e in r.json()["errors"]] == ["members"]


def test_a_body_over_one_mebibyte_is_413(client, keys):
    padded = copy.deepcopy(HH)
    padded["household_id"] = "x" * (1024 * 1024)
    r = client.post("/v1/evaluate", json=padded, headers=auth(keys["window"]))
    assert r.status_code == 413
    assert r.json()["errors"][0]["code"] == "body_too_large"


def test_a_chunked_body_over_the_limit_is_413_too(client, keys):
    def chunks():
        for _ in range(40):
            yield b" " * 32768

    r = client.post("/v1/evaluate", content=chunks(), headers=auth(keys["window"]))
    assert r.status_code == 413


def test_the_id_number_is_not_echoed_back(client, keys):
    r = client.post("/v1/evaluate", json=HH, headers=auth(keys["window"]))
    assert r.status_code == 200
    assert "21010219560501123X" not in r.text

"""Refusals are RFC 9457 problem documents (application/problem+json) that keep the ``errors`` list."""

from __future__ import annotations

from api.core.examples import HOUSEHOLD

PROBLEM = "application/problem+json"


def _is_problem(r, status: int) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    body = r.json()
    assert body["status"] == status
    assert body["type"].startswith("urn:jiuzhu:problem:") and body["title"] and body["detail"]
    assert body["errors"] and all({"field", "message", "message_zh", "message_en", "code"} <= set(e) for e in body["errors"])
    assert body["type"] == f"urn:jiuzhu:problem:{body['errors'][0]['code']}"
    assert body["errors"][0]["message"] in body["detail"]
    return body


def test_a_bad_household_is_a_problem_naming_the_field(client, keys):
    household = {**HOUSEHOLD, "members": [dict(m) for m in HOUSEHOLD["members"]]}
    household["members"][1]["birth_date"] = "not a date"
    r = client.post("/v1/evaluate", json=household, headers={"Authorization": f"Bearer {keys['window']}"})
    body = _is_problem(r, 422)
    assert any(e["field"] == "members[1].birth_date" for e in body["errors"])


def test_a_missing_key_an_unknown_path_and_bad_json_are_problems(client, keys):
    _is_problem(client.post("/v1/evaluate", json=HOUSEHOLD), 401)
    _is_problem(client.get("/v1/no-such-thing", headers={"Authorization": f"Bearer {keys['admin']}"}), 404)
    r = client.post(
        "/v1/events", content=b"{not json", headers={"Authorization": f"Bearer {keys['window']}", "Content-Type": "application/json"}
    )
    _is_problem(r, 422)


def test_the_openapi_document_says_refusals_are_problem_json(client):
    spec = client.get("/openapi.json").json()
    answer = spec["paths"]["/v1/evaluate"]["post"]["responses"]["422"]
    assert list(answer["content"]) == [PROBLEM]
    assert {"type", "title", "status", "detail", "errors"} <= set(spec["components"]["schemas"]["ErrorBody"]["properties"])

"""/docs: every operation has a Chinese summary, and the POST bodies carry a worked example."""

from __future__ import annotations

import re

CJK = re.compile(r"[\u4e00-\u9fff]")


def test_every_operation_has_a_chinese_summary(client):
    spec = client.get("/openapi.json").json()
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            assert CJK.search(op.get("summary", "")), (method, path)


def test_post_bodies_have_worked_examples_that_the_service_accepts(client, keys):
    spec = client.get("/openapi.json").json()
    for path in ("/v1/evaluate", "/v1/evaluate/batch"):
        content = spec["paths"][path]["post"]["requestBody"]["content"]["application/json"]
        (example,) = content["examples"].values()
        r = client.post(path, json=example["value"], headers={"Authorization": f"Bearer {keys['window']}"})
        assert r.status_code == 200, path
    assert "Household" in spec["components"]["schemas"]
    money = spec["components"]["schemas"]["Income"]["properties"]["monthly"]
    assert money["anyOf"][0]["type"] == "string"


def test_parameters_have_examples(client):
    spec = client.get("/openapi.json").json()
    params = spec["paths"]["/v1/localities/{code}/parameters"]["get"]["parameters"]
    assert {p["name"] for p in params} == {"code", "date"}
    assert all(p.get("examples") or p["schema"].get("examples") for p in params)


def test_docs_page_is_served(client):
    r = client.get("/docs")
    assert r.status_code == 200 and "swagger" in r.text.lower()

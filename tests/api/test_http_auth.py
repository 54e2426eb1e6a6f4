"""Keys and roles: 401 without a valid key, 403 for the wrong role, refusals logged without the key."""

from __future__ import annotations

import logging

import pytest
from http_helpers import auth

from api.auth.keys import ROLE_PERMISSIONS, Permission, Role, hash_key
from api.core import examples

HH = examples.HOUSEHOLD
DET_ID = "00000000-0000-7000-8000-000000000000"

# (method, path, body, permission)
ENDPOINTS = [
    ("POST", "/v1/evaluate", HH, Permission.EVALUATE),
    ("POST", "/v1/evaluate/batch", {"households": [HH]}, Permission.EVALUATE_BATCH),
    ("GET", "/v1/localities", None, Permission.READ_REFERENCE),
    ("GET", "/v1/localities/210102", None, Permission.READ_REFERENCE),
    ("GET", "/v1/localities/210102/parameters?date=2021-08-01", None, Permission.READ_REFERENCE),
    ("GET", "/v1/programs", None, Permission.READ_REFERENCE),
    ("GET", "/v1/programs/dibao/rules", None, Permission.READ_REFERENCE),
    ("GET", f"/v1/determinations/{DET_ID}", None, Permission.READ_DETERMINATIONS),
    ("GET", "/v1/households/LN-2021-0001/determinations", None, Permission.READ_DETERMINATIONS),
    ("GET", "/v1/keys", None, Permission.MANAGE_KEYS),
]


def test_the_roles_grant_what_the_issue_says():
    assert ROLE_PERMISSIONS[Role.WINDOW] >= {Permission.EVALUATE, Permission.EVALUATE_BATCH}
    assert Permission.READ_DETERMINATIONS not in ROLE_PERMISSIONS[Role.WINDOW]
    assert ROLE_PERMISSIONS[Role.CASEWORKER] >= {Permission.EVALUATE, Permission.READ_DETERMINATIONS}
    assert Permission.EVALUATE_BATCH not in ROLE_PERMISSIONS[Role.CASEWORKER]
    assert Permission.EVALUATE not in ROLE_PERMISSIONS[Role.POLICY]
    assert Permission.READ_DETERMINATIONS in ROLE_PERMISSIONS[Role.POLICY]
    assert all(Permission.MANAGE_KEYS not in ROLE_PERMISSIONS[r] for r in (Role.WINDOW, Role.CASEWORKER, Role.POLICY))
    assert ROLE_PERMISSIONS[Role.ADMIN] == frozenset(Permission)


@pytest.mark.parametrize(("method", "path", "body", "permission"), ENDPOINTS, ids=[f"{m} {p}" for m, p, _, _ in ENDPOINTS])
def test_every_role_gets_exactly_its_permissions(client, keys, method, path, body, permission):
    for role, key in keys.items():
        for header in (auth(key), {"X-API-Key": key}):
            r = client.request(method, path, json=body, headers=header)
            allowed = permission in ROLE_PERMISSIONS[Role(role)]
            if allowed:
                assert r.status_code in (200, 404), (role, r.status_code, r.text)  # 404: the made-up determination id
            else:
                assert r.status_code == 403, (role, r.status_code)
                assert r.json()["errors"][0]["code"] == "forbidden"


@pytest.mark.parametrize(("method", "path", "body", "permission"), ENDPOINTS, ids=[f"{m} {p}" for m, p, _, _ in ENDPOINTS])
def test_no_key_or_a_wrong_key_is_401(client, method, path, body, permission):
    for headers in ({}, auth("jzk_not-a-real-key"), {"Authorization": "Basic dXNlcjpwYXNz"}):
        r = client.request(method, path, json=body, headers=headers)
        assert r.status_code == 401, (headers, r.status_code)
        assert r.headers["www-authenticate"] == "Bearer"
        assert r.json()["errors"][0]["field"] == "Authorization"


def test_refusals_are_logged_without_the_key(client, keys, caplog):
    caplog.set_level(logging.WARNING, logger="jiuzhu.api.auth")
    wrong = "jzk_" + "Q" * 43
    client.post("/v1/evaluate", json=HH, headers=auth(wrong))
    client.get("/v1/keys", headers=auth(keys["window"]))
    client.get("/v1/programs")
    text = caplog.text
    assert "401 unknown or revoked key" in text and "401 no key" in text and "403 role lacks manage_keys" in text
    for secret in (wrong, keys["window"]):
        assert secret not in text and secret[4:14] not in text


def test_keys_are_stored_as_hashes_only(client, keys):
    db = client.app.state.db
    with db.connect() as conn:
        dump = " ".join(str(v) for row in conn.exec_driver_sql("SELECT * FROM api_keys") for v in row)
    for secret in keys.values():
        assert secret not in dump
        assert hash_key(secret) in dump


def test_revoking_over_http_takes_effect_at_once(client, keys):
    admin = auth(keys["admin"])
    created = client.post("/v1/keys", json={"name": "城关镇窗口", "role": "window"}, headers=admin)
    assert created.status_code == 201
    new = created.json()
    assert new["key"].startswith("jzk_") and new["role"] == "window"
    h = auth(new["key"])
    assert client.post("/v1/evaluate", json=HH, headers=h).status_code == 200
    listed = client.get("/v1/keys", headers=admin).json()
    assert new["key_id"] in {k["key_id"] for k in listed}
    assert all("key" not in k for k in listed)
    revoked = client.delete(f"/v1/keys/{new['key_id']}", headers=admin)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    assert client.post("/v1/evaluate", json=HH, headers=h).status_code == 401
    assert client.delete("/v1/keys/k_nope", headers=admin).status_code == 404


def test_a_key_with_a_bad_role_is_refused(client, keys):
    r = client.post("/v1/keys", json={"name": "x", "role": "root"}, headers=auth(keys["admin"]))
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "role"

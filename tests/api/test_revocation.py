"""Revocation reaches every replica within the documented bound (docs/deployment.md): two apps on one
PostgreSQL; a key revoked through A is refused by B once B's key cache (JIUZHU_KEY_CACHE_SECONDS) is
that old, on a clock the test moves; a disabled user's or ended session is refused by B at once."""

from __future__ import annotations

import dataclasses

from fastapi.testclient import TestClient
from http_helpers import auth

from api.app import create_app
from api.auth.keys import Role, Scope
from api.web.session import COOKIE, accounts


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _two(settings, engine):
    return TestClient(create_app(settings, rules=engine)), TestClient(create_app(settings, rules=engine))


def test_a_key_revoked_through_one_replica_is_refused_by_the_other_within_the_cache_seconds(pg_settings, engine):
    settings = dataclasses.replace(pg_settings, key_cache_seconds=3)
    a, b = _two(settings, engine)
    with a, b:
        clock = b.app.state.keys.clock = Clock()
        admin = a.app.state.repo.create_key("管理员", Role.ADMIN)[1]
        row, key = a.app.state.repo.create_key("窗口", Role.WINDOW)
        assert b.get("/v1/localities", headers=auth(key)).status_code == 200  # B now trusts it for 3 s
        assert a.delete(f"/v1/keys/{row.id}", headers=auth(admin)).status_code == 200
        assert a.get("/v1/localities", headers=auth(key)).status_code == 401  # A cleared its own cache
        clock.now += 2.9
        assert b.get("/v1/localities", headers=auth(key)).status_code == 200  # the bound, not sooner
        clock.now += 0.2
        assert b.get("/v1/localities", headers=auth(key)).status_code == 401


def test_with_no_key_cache_the_other_replica_refuses_at_once(pg_settings, engine):
    settings = dataclasses.replace(pg_settings, key_cache_seconds=0)
    a, b = _two(settings, engine)
    with a, b:
        b.app.state.keys.clock = Clock()  # frozen: only the setting can make B look again
        admin = a.app.state.repo.create_key("管理员", Role.ADMIN)[1]
        row, key = a.app.state.repo.create_key("窗口", Role.WINDOW)
        assert b.get("/v1/localities", headers=auth(key)).status_code == 200
        assert a.delete(f"/v1/keys/{row.id}", headers=auth(admin)).status_code == 200
        assert b.get("/v1/localities", headers=auth(key)).status_code == 401


def test_a_user_disabled_through_one_replica_loses_their_session_on_the_other_at_once(pg_settings, engine):
    a, b = _two(pg_settings, engine)
    with a, b:
        user = accounts(a.app).create_user("李四", Role.CASEWORKER, Scope.of("210102"), "correct-horse-42")
        token = accounts(a.app).open_session(user.id)
        b.cookies.set(COOKIE, token)
        assert b.get("/households", follow_redirects=False).status_code == 200
        assert accounts(a.app).disable_user("李四") is not None
        assert b.get("/households", follow_redirects=False).status_code == 303  # to the sign-in page

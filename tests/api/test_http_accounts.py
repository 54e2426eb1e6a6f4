"""People sign in: /login and /logout, the session cookie, CSRF on form posts, throttled failures,
disabled users, locality scope, and the 管理 page. Run on SQLite and, where the database matters, PostgreSQL."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt

import pytest
from accounts_helpers import PASSWORD, csrf_of, login_token, make_user, sign_in
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from http_helpers import auth
from sqlalchemy import insert, select, update
from starlette.requests import Request

from api.accounts.models import SignInThrottle, User, UserSession
from api.accounts.throttle import FORGET, FREE_ADDRESS_FAILURES, FREE_FAILURES, lock_after
from api.app import create_app
from api.core import examples
from api.core.errors import ApiError
from api.routes.records import get_determination
from api.web.account_pages import safe_next
from api.web.session import COOKIE, accounts, session_caller


def _session_cookie(response) -> str:
    return next(h for h in response.headers.get_list("set-cookie") if h.startswith(COOKIE + "="))


def test_sign_in_lands_on_next_page_and_sign_out_ends_the_session(client):
    make_user(client, "张三")
    assert client.get("/", follow_redirects=False).headers["location"] == "/login?next=/"
    r = sign_in(client, "张三", next_path="/?x=1")
    assert r.status_code == 303 and r.headers["location"] == "/?x=1"
    token = client.cookies.get(COOKIE)
    home = client.get("/?x=1")
    assert home.status_code == 200 and "张三" in home.text and "经办人员" in home.text

    out = client.post("/logout", data={"csrf_token": csrf_of(home.text)}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/login"
    assert client.cookies.get(COOKIE) is None
    assert client.get("/", follow_redirects=False).status_code == 303
    # the old cookie, replayed after signing out, opens nothing: the session ended in the database
    client.cookies.set(COOKIE, token)
    assert client.get("/", follow_redirects=False).status_code == 303


def test_session_cookie_is_httponly_samesite_path_and_bounded(client):
    make_user(client, "张三")
    cookie = _session_cookie(sign_in(client, "张三")).lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/" in cookie
    assert f"max-age={12 * 3600}" in cookie
    assert "secure" not in cookie  # plain HTTP by default: a Secure cookie would never come back


def test_session_cookie_is_secure_when_the_site_is_behind_https(sqlite_settings, engine):
    settings = dataclasses.replace(sqlite_settings, secure_cookies=True)
    with TestClient(create_app(settings, rules=engine), base_url="https://testserver") as client:
        make_user(client, "张三")
        cookie = _session_cookie(sign_in(client, "张三")).lower()
        assert "; secure" in cookie and "httponly" in cookie


def test_session_idles_out_and_expires(client):
    make_user(client, "张三")
    sign_in(client, "张三")
    assert client.get("/", follow_redirects=False).status_code == 200
    store = accounts(client.app)
    db = client.app.state.db
    idle = dt.datetime.now(dt.UTC) - store.idle - dt.timedelta(seconds=5)
    with db.begin() as conn:
        conn.execute(update(UserSession.__table__).values(last_seen_at=idle))
    assert client.get("/", follow_redirects=False).status_code == 303


@pytest.mark.parametrize(
    "target, expected",
    [
        ("/households/h1?x=1", "/households/h1?x=1"),
        ("https://evil.example/", "/"),
        ("//evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("javascript:alert(1)", "/"),
        ("", "/"),
    ],
)
def test_next_is_only_a_local_path(target, expected):
    assert safe_next(target) == expected


def test_sign_in_redirects_only_to_local_paths(client):
    make_user(client, "张三")
    r = sign_in(client, "张三", next_path="https://evil.example/")
    assert r.status_code == 303 and r.headers["location"] == "/"


def test_wrong_password_and_unknown_name_get_one_answer_beside_the_field(client):
    make_user(client, "张三")
    wrong = sign_in(client, "张三", "not-the-password")
    unknown = sign_in(client, "无此人", "not-the-password")
    assert wrong.status_code == unknown.status_code == 401
    assert 'id="password-error"' in wrong.text and "用户名或密码不正确" in wrong.text
    assert wrong.text.replace("张三", "无此人").replace(login_token(wrong.text), "") == unknown.text.replace(
        login_token(unknown.text), ""
    )
    assert client.cookies.get(COOKIE) is None
    empty = sign_in(client, "", "")
    assert empty.status_code == 400 and 'id="name-error"' in empty.text and 'id="password-error"' in empty.text


def test_sign_in_form_without_its_login_token_is_refused(client):
    make_user(client, "张三")
    r = client.post("/login", data={"name": "张三", "password": PASSWORD, "next": "/"}, follow_redirects=False)
    assert r.status_code == 403 and client.cookies.get(COOKIE) is None


def test_lock_grows_with_failures():
    assert lock_after(FREE_FAILURES) == dt.timedelta(0)
    assert lock_after(FREE_FAILURES + 1) == dt.timedelta(seconds=30)
    assert lock_after(FREE_FAILURES + 2) == dt.timedelta(seconds=60)
    assert lock_after(FREE_FAILURES + 40) == dt.timedelta(minutes=15)


def test_repeated_failures_lock_the_name_on_every_replica(db_settings, engine):
    """Five wrong passwords lock the name: then even the right one is refused (429, Retry-After), by
    another app on the same database too. An unknown name locks the same way (existence does not leak)."""
    with TestClient(create_app(db_settings, rules=engine)) as one, TestClient(create_app(db_settings, rules=engine)) as two:
        make_user(one, "张三")
        for _ in range(FREE_FAILURES):
            assert sign_in(one, "张三", "wrong-password").status_code == 401
        assert sign_in(one, "张三", PASSWORD).status_code == 303  # four typos: still free, and the count restarts
        one.cookies.clear()
        for _ in range(FREE_FAILURES + 1):
            assert sign_in(one, "张三", "wrong-password").status_code == 401
        locked = sign_in(two, "张三", PASSWORD)
        assert locked.status_code == 429 and 0 < int(locked.headers["retry-after"]) <= 30
        assert "登录失败次数过多" in locked.text and 'id="password-error"' in locked.text
        assert two.cookies.get(COOKIE) is None
        for _ in range(FREE_FAILURES + 1):
            sign_in(one, "无此人", "wrong-password")
        assert sign_in(one, "无此人", "wrong-password").status_code == 429


def test_repeated_failures_from_one_address_lock_it(client):
    make_user(client, "张三")
    for i in range(FREE_ADDRESS_FAILURES + 1):
        assert sign_in(client, f"guess{i}", "wrong-password").status_code == 401
    assert sign_in(client, "张三", PASSWORD).status_code == 429


def test_form_post_without_csrf_token_is_refused_and_does_nothing(client):
    make_user(client, "管理员甲", role="admin", locality="100000")
    sign_in(client, "管理员甲")
    page = client.get("/admin")
    assert page.status_code == 200
    for data in ({"name": "李四", "role": "window", "locality": "210102"},
                 {"name": "李四", "role": "window", "locality": "210102", "csrf_token": "0" * 64}):
        r = client.post("/admin/users", data=data)
        assert r.status_code == 403 and "CSRF" in r.text
    assert [u.name for u in accounts(client.app).list_users()] == ["管理员甲"]
    assert client.post("/logout", data={}).status_code == 403
    assert client.get("/admin").status_code == 200  # still signed in: the refused sign-out did nothing
    made = client.post("/admin/users", data={"name": "李四", "role": "window", "locality": "210102", "csrf_token": csrf_of(page.text)})
    assert made.status_code == 200 and "李四" in made.text


def test_disabled_users_session_stops_at_once(db_settings, engine):
    with TestClient(create_app(db_settings, rules=engine)) as admin, TestClient(create_app(db_settings, rules=engine)) as worker:
        make_user(admin, "管理员甲", role="admin", locality="100000")
        user = make_user(admin, "张三")
        sign_in(admin, "管理员甲")
        sign_in(worker, "张三")
        assert worker.get("/", follow_redirects=False).status_code == 200
        page = admin.get("/admin")
        r = admin.post(f"/admin/users/{user.id}/disable", data={"csrf_token": csrf_of(page.text)}, follow_redirects=False)
        assert r.status_code == 303
        assert "已停用" in admin.get(r.headers["location"]).text
        assert worker.get("/", follow_redirects=False).status_code == 303  # another app (replica), at once
        assert sign_in(worker, "张三").status_code == 401


def _request(client, cookie: str) -> Request:
    return Request({"type": "http", "method": "GET", "path": "/", "headers": [(b"cookie", f"{COOKIE}={cookie}".encode())], "app": client.app})


def test_a_210102_user_is_denied_a_620722_household(client, keys):
    """The session's caller carries the user's scope, and the records' own code refuses a household
    outside it with the answer it gives an unknown id."""
    dets = {}
    for locality in ("210102", "620722"):
        hh = {**examples.HOUSEHOLD, "household_id": f"H-{locality}", "locality": locality}
        hh["members"] = [{**m, "hukou_locality": locality} for m in hh["members"]]
        r = client.post("/v1/evaluate", json=hh, headers=auth(keys["admin"]))
        assert r.status_code == 200, r.text
        dets[locality] = r.json()["determination_id"]
    make_user(client, "张三", locality="210102")
    sign_in(client, "张三")
    asyncio.run(_read_as_session(client, dets))


async def _read_as_session(client, dets: dict[str, str]) -> None:
    request = _request(client, client.cookies.get(COOKIE))
    caller = await session_caller(request)
    assert caller is not None and caller.name == "张三" and caller.scope.code == "210102"
    ok = await get_determination(request, caller, dets["210102"])
    assert ok.status_code == 200
    with pytest.raises(ApiError) as refused:
        await get_determination(request, caller, dets["620722"])
    assert refused.value.status == 404  # the same answer as an id never stored


def test_admin_page_is_for_admins_and_stays_within_their_scope(client):
    make_user(client, "沈阳管理员", role="admin", locality="210100")
    make_user(client, "甘肃经办", locality="620722")
    make_user(client, "张三")
    sign_in(client, "沈阳管理员")
    page = client.get("/admin")
    assert "张三" in page.text and "甘肃经办" not in page.text
    token = csrf_of(page.text)
    far = client.post("/admin/users", data={"name": "李四", "role": "window", "locality": "620722", "csrf_token": token})
    assert far.status_code == 422 and 'id="user-locality-error"' in far.text and "超出您的权限范围" in far.text
    assert 'value="李四"' in far.text  # what was typed is kept
    gansu = next(u for u in accounts(client.app).list_users() if u.name == "甘肃经办")
    assert client.post(f"/admin/users/{gansu.id}/disable", data={"csrf_token": token}).status_code == 404
    assert accounts(client.app).list_users()[1].disabled_at is None

    client.cookies.clear()
    sign_in(client, "张三")
    assert client.get("/admin").status_code == 403


def test_admin_creates_user_with_password_shown_once_and_key_shown_once(client):
    make_user(client, "管理员甲", role="admin", locality="100000")
    sign_in(client, "管理员甲")
    token = csrf_of(client.get("/admin").text)
    made = client.post("/admin/users", data={"name": "李四", "role": "window", "locality": "210102", "csrf_token": token})
    password = made.text.split('id="created-password">')[1].split("<")[0]
    assert len(password) == 19 and password not in client.get("/admin").text
    key_page = client.post("/admin/keys", data={"name": "城关镇窗口", "role": "window", "locality": "210102", "csrf_token": token})
    secret = key_page.text.split('id="created-key">')[1].split("<")[0]
    assert secret.startswith("jzk_") and secret not in client.get("/admin").text
    assert client.get("/", headers=auth(secret)).status_code == 200
    key_id = client.app.state.repo.list_keys()[-1].id
    assert client.post(f"/admin/keys/{key_id}/revoke", data={"csrf_token": token}, follow_redirects=False).status_code == 303
    assert client.get("/", headers=auth(secret)).status_code == 401

    client.cookies.clear()
    assert sign_in(client, "李四", password).status_code == 303


def test_old_failures_are_forgotten_and_leave_the_table(client):
    """A person who mistypes now and then never builds up a lock, and sprayed names do not pile up."""
    make_user(client, "张三")
    store = accounts(client.app)
    table = SignInThrottle.__table__
    for _ in range(FREE_FAILURES):
        assert sign_in(client, "张三", "wrong-password").status_code == 401
    long_ago = dt.datetime.now(dt.UTC) - FORGET - dt.timedelta(minutes=1)
    with store.engine.begin() as conn:
        conn.execute(update(table).values(last_failure_at=long_ago))
        conn.execute(insert(table).values(subject="name:sprayed", failures=3, last_failure_at=long_ago, locked_until=None))
    assert sign_in(client, "张三", "wrong-password").status_code == 401  # the 5th failure, but the first in an hour
    assert sign_in(client, "张三", PASSWORD).status_code == 303
    with store.engine.connect() as conn:
        assert conn.execute(select(table.c.subject).where(table.c.subject == "name:sprayed")).first() is None


def test_a_hash_made_at_another_cost_is_redone_at_sign_in(client):
    user = make_user(client, "张三")
    assert "m=19456,t=2,p=1" in user.password_hash
    table = User.__table__
    with client.app.state.db.begin() as conn:
        conn.execute(update(table).values(password_hash=PasswordHasher(time_cost=3, memory_cost=65536, parallelism=4).hash(PASSWORD)))
    assert sign_in(client, "张三").status_code == 303
    with client.app.state.db.connect() as conn:
        assert "m=19456,t=2,p=1" in conn.execute(select(table.c.password_hash)).scalar_one()

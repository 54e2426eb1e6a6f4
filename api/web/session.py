"""The session cookie and the CSRF token of a person's forms: the HTTP side of api/accounts/ (users, sessions, throttle).

The cookie holds a random session id (256 bits); the database holds only its hash, so a stolen
database opens no session. The CSRF token is an HMAC of that id: a page of this site can show it
in its forms, another site can neither read the cookie (HttpOnly) nor compute the token.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac

from fastapi import FastAPI, Request, Response
from fastapi.concurrency import run_in_threadpool

from api.accounts.store import Accounts
from api.auth.keys import Caller
from api.core import request_log

COOKIE = "jiuzhu_session"
_UNSET = object()


def accounts(app: FastAPI) -> Accounts:
    """The application's account store (made on first use from its database and settings)."""
    store = getattr(app.state, "accounts", None)
    if store is None:
        settings = app.state.settings
        store = app.state.accounts = Accounts(
            app.state.db,
            lifetime=dt.timedelta(hours=settings.session_hours),
            idle=dt.timedelta(minutes=settings.session_idle_minutes),
        )
    return store


def _has_key_header(request: Request) -> bool:
    return bool(request.headers.get("authorization") or request.headers.get("x-api-key"))


async def session_caller(request: Request) -> Caller | None:
    """The person signed in through the session cookie, or None. Looked up in the database on every
    request (once per request), so a session ended anywhere stops working everywhere at once."""
    token = request.cookies.get(COOKIE)
    if not token or len(token) > 100:
        return None
    cached = getattr(request.state, "session_caller", _UNSET)
    if cached is _UNSET:
        cached = request.state.session_caller = await run_in_threadpool(accounts(request.app).caller_for_session, token)
        if cached is not None:
            request_log.note_caller(cached, "user")
    return cached


def csrf_token(request: Request) -> str:
    """The token every form of this session must carry (empty without a session)."""
    token = request.cookies.get(COOKIE)
    return _csrf_for(token) if token else ""


def _csrf_for(session_token: str) -> str:
    return hmac.new(session_token.encode("utf-8", "surrogatepass"), b"jiuzhu csrf", hashlib.sha256).hexdigest()


def csrf_ok(request: Request, token: str | None) -> bool:
    """Whether a form post carries this session's token. A request with an API key header needs none:
    a browser never adds that header on its own, so no other site can make one on a person's behalf."""
    if _has_key_header(request):
        return True
    expected = csrf_token(request)
    return bool(expected) and isinstance(token, str) and hmac.compare_digest(expected, token)


def set_session_cookie(request: Request, response: Response, token: str) -> None:
    settings = request.app.state.settings
    response.set_cookie(
        COOKIE,
        token,
        max_age=int(settings.session_hours * 3600),
        path="/",
        secure=settings.secure_cookies,
        httponly=True,
        samesite="lax",  # Lax, not Strict: a shared result link opened from a chat keeps its session
    )


def clear_session_cookie(request: Request, response: Response) -> None:
    settings = request.app.state.settings
    response.delete_cookie(COOKIE, path="/", secure=settings.secure_cookies, httponly=True, samesite="lax")

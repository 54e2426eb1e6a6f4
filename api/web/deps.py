"""Who may see a page: a signed-in person (session cookie) or a script with an API key header."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request

from api.auth.keys import ROLE_PERMISSIONS, Caller, Permission
from api.routes.deps import authenticate

from .session import csrf_ok, session_caller


class LoginRequired(Exception):
    """No session and no key: the browser is sent to the sign-in page, then back."""

    def __init__(self, next_path: str):
        self.next_path = next_path


class PageForbidden(Exception):
    """Signed in, but the role may not open this page."""

    def __init__(self, caller: Caller, permission: Permission):
        self.caller = caller
        self.permission = permission


class CsrfRefused(Exception):
    """A form post without this session's CSRF token."""


async def key_or_session_caller(request: Request) -> Caller | None:
    """The caller behind a key header (401 if the key is bad), else the signed-in person, else None.
    A key header wins: scripts and tests open every page with the key they use for the API."""
    if request.headers.get("authorization") or request.headers.get("x-api-key"):
        return await authenticate(request)
    return await session_caller(request)


async def page_caller(request: Request) -> Caller:
    caller = await key_or_session_caller(request)
    if caller is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(quote(target, safe="/?=&"))
    return caller


def page_with(permission: Permission):
    """``caller: page_with(Permission.X)`` in a page's signature."""

    async def dependency(request: Request) -> Caller:
        caller = await page_caller(request)
        if permission not in ROLE_PERMISSIONS[caller.role]:
            raise PageForbidden(caller, permission)
        return caller

    dependency.__name__ = f"page_{permission}"
    return Annotated[Caller, Depends(dependency)]


async def checked_form(request: Request) -> dict[str, list[str]]:
    """The posted form as lists of values, after the CSRF check (refused without this session's token)."""
    form = await request.form()
    if not csrf_ok(request, form.get("csrf_token")):
        raise CsrfRefused()
    return {key: form.getlist(key) for key in form}

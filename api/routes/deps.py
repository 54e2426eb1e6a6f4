"""What every route takes from the request: the caller (by API key and role) and a bounded body."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import Depends, Request

from api.auth.keys import ROLE_PERMISSIONS, Caller, Permission, hash_key, refusal
from api.core import request_log
from api.core.body import read_body
from api.core.errors import ApiError

log = logging.getLogger("jiuzhu.api.auth")


def _refuse(request: Request, status: int, reason: str, caller: Caller | None = None) -> ApiError:
    client = request.client.host if request.client else "-"
    who = f" key={caller.key_id} name={caller.name!r} role={caller.role} scope={caller.scope.code}" if caller else ""
    # The key itself is never logged, not even in part.
    log.warning("refused %s %s from %s: %d %s%s", request.method, request.url.path, client, status, reason, who)
    return refusal(status, caller, no_key=reason == "no key")


def _key_from(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header:
        scheme, _, credentials = header.partition(" ")
        return credentials.strip() if scheme.lower() == "bearer" and credentials.strip() else None
    return request.headers.get("x-api-key") or None


async def authenticate(request: Request) -> Caller:
    """The caller behind ``Authorization: Bearer …`` or ``X-API-Key``; 401 otherwise."""
    key = _key_from(request)
    if not key:
        raise _refuse(request, 401, "no key")
    caller = await request.app.state.keys.get(hash_key(key))
    if caller is None:
        raise _refuse(request, 401, "unknown or revoked key")
    request_log.note_caller(caller, "key")
    return caller


def require(permission: Permission):
    """A dependency that admits callers whose role grants ``permission``.

    One dependency that reads the headers itself: FastAPI's security classes would
    add three more dependency nodes to every request. The OpenAPI document gets the
    security schemes from ``SECURITY_SCHEMES`` instead.
    """

    async def dependency(request: Request) -> Caller:
        caller = await authenticate(request)
        if permission not in ROLE_PERMISSIONS[caller.role]:
            raise _refuse(request, 403, f"role lacks {permission}", caller)
        return caller

    dependency.__name__ = f"require_{permission}"
    dependency.__jiuzhu_permission__ = permission  # for the OpenAPI document
    return dependency


def caller_with(permission: Permission):
    """``caller: caller_with(Permission.X)`` in a route's signature."""
    return Annotated[Caller, Depends(require(permission))]


async def body(request: Request, limit: int) -> bytes:
    """The request body, refused (413) past ``limit`` bytes before it is all read."""
    return await read_body(request.headers.get("content-length"), request.stream(), limit)

"""API routes a browser opens from a link (a simulation's report and files): the key header as for every
API call, or else the signed-in person's session, with the same role and locality checks.

Unlike a page, a refused request answers the API's JSON 401/403, not a redirect to sign in.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from api.auth.keys import ROLE_LABELS, ROLE_PERMISSIONS, Caller, Permission
from api.core.errors import ApiError

from .deps import key_or_session_caller


def key_or_session(permission: Permission):
    """A dependency like ``api.auth.keys.require(permission)`` that also admits a session."""

    async def dependency(request: Request) -> Caller:
        caller = await key_or_session_caller(request)
        if caller is None:
            # the API's own 401 (no key, no session), worded for both
            raise ApiError(
                401,
                "Authorization",
                "请先登录工作台，或提供有效的 API 密钥",
                "sign in to the workbench, or send an API key",
                "unauthorized",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if permission not in ROLE_PERMISSIONS[caller.role]:
            raise ApiError(
                403,
                "Authorization",
                f"当前角色（{ROLE_LABELS[caller.role]}）无权执行此操作",
                f"the role ({caller.role}) may not do this",
                "forbidden",
            )
        return caller

    dependency.__name__ = f"key_or_session_{permission}"
    dependency.__jiuzhu_permission__ = permission  # for the OpenAPI document, as api.auth.keys.require
    return dependency


def key_or_session_with(permission: Permission):
    """``caller: key_or_session_with(Permission.X)`` in a route's signature."""
    return Annotated[Caller, Depends(key_or_session(permission))]

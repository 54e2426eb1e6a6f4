"""Who is signed in, and the CSRF token of their forms: the pages' view of people's accounts.

Placeholder until accounts exist: only API-key callers (scripts, tests) are known, and they need no
CSRF token because a key header is never sent by a browser on its own.
"""

from __future__ import annotations

from fastapi import Request

from api.auth.keys import Caller


async def session_caller(request: Request) -> Caller | None:
    """The person signed in through the session cookie, or None."""
    return None


def csrf_token(request: Request) -> str:
    """The token every form of this session must carry (empty without a session)."""
    return ""


def csrf_ok(request: Request, token: str | None) -> bool:
    """Whether a form post carries this session's token."""
    return True

"""One log line per HTTP request, and the request id that ties it to every other line of that request.

The id comes from a sane incoming ``X-Request-ID`` (a load balancer's, a client's) or is made here; it
goes back in the response's ``X-Request-ID``. Who asked (the key's or the user's id) and where (the
household's locality, else the caller's scope) are noted by authentication and evaluation as the
request goes: they write into the ``RequestInfo`` of a context variable, one mutable object, so that a
note made in a worker thread or a dependency still reaches the line written at the end. The line holds
the route's template, never the raw path, and never a header's or body's value: no key, cookie or ID
number can reach it. (Messages of other lines are masked by api/core/logmask.py.)
"""

from __future__ import annotations

import logging
import re
import uuid
from contextvars import ContextVar
from dataclasses import dataclass
from time import perf_counter

from engine.schema.masking import scrub

HEADER = "x-request-id"
_HEADER_BYTES = HEADER.encode()
# Letters, digits and the punctuation of UUIDs and tracing ids; anything else is replaced, not echoed.
_SANE = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")

log = logging.getLogger("jiuzhu.access")


@dataclass(slots=True)
class RequestInfo:
    request_id: str
    method: str
    route: str = "(unmatched)"
    key_id: str = ""
    user_id: str = ""
    locality: str = ""  # the household's, else the caller's scope
    scope_locality: str = ""


current: ContextVar[RequestInfo | None] = ContextVar("jiuzhu_request", default=None)


def request_id(raw: bytes | None) -> str:
    """The incoming id when it is sane, else a new one. An id that looks like a resident ID number is
    never taken: it would be echoed and logged as it came."""
    if raw:
        text = raw.decode("latin-1")
        if _SANE.fullmatch(text) and scrub(text) == text:
            return text
    return uuid.uuid4().hex


def note_caller(caller, kind: str) -> None:
    """Who the request acts for: ``kind`` "key" (an API key) or "user" (a signed-in person)."""
    info = current.get()
    if info is None:
        return
    if kind == "user":
        info.user_id = caller.key_id  # a session's Caller carries the user's id there
    else:
        info.key_id = caller.key_id
    info.scope_locality = caller.scope.code


def note_locality(code: object) -> None:
    """The locality of the household the request is about."""
    info = current.get()
    if info is not None and isinstance(code, str):
        info.locality = code


def fields(info: RequestInfo, status: int, seconds: float) -> dict:
    out = {"request_id": info.request_id, "method": info.method, "route": info.route, "status": status}
    out["duration_ms"] = round(seconds * 1000, 3)
    if info.key_id:
        out["key_id"] = info.key_id
    if info.user_id:
        out["user_id"] = info.user_id
    if locality := info.locality or info.scope_locality:
        out["locality"] = locality
    return out


async def handle(scope, receive, send, app, enabled: bool) -> None:
    """Serve one HTTP request through ``app`` with its request id: set for every log line written
    meanwhile, echoed in the response, and (``enabled``) one line at the end."""
    raw = next((v for k, v in scope.get("headers", ()) if k == _HEADER_BYTES), None)
    info = RequestInfo(request_id(raw), scope["method"])
    token = current.set(info)
    status = 500  # what the client gets when the app fails before it answers
    start = perf_counter()

    async def send_with_id(message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
            message["headers"] = [*message.get("headers", ()), (_HEADER_BYTES, info.request_id.encode())]
        await send(message)

    try:
        await app(scope, receive, send_with_id)
    finally:
        if enabled:
            out = fields(info, status, perf_counter() - start)
            log.info("%s %s %d %.1fms", info.method, info.route, status, out["duration_ms"], extra={"fields": out})
        current.reset(token)

"""HTTP answers: JSON responses, and the handlers that turn every error into the one error shape
(an RFC 9457 ``application/problem+json`` document with ``{"errors": [{"field", "message", ...}]}``,
Chinese and English; api/core/errors.py)."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.core.errors import PROBLEM_JSON, ApiError, error_item, problem

log = logging.getLogger("jiuzhu.api")


def json_response(content: Any, status: int = 200, headers: dict | None = None) -> Response:
    return Response(orjson.dumps(content), status_code=status, media_type="application/json", headers=headers)


def problem_response(status: int, errors: list[dict], headers: dict | None = None) -> Response:
    """A refusal: an RFC 9457 problem document, today's ``errors`` list kept as its extension member."""
    return Response(orjson.dumps(problem(status, errors)), status_code=status, media_type=PROBLEM_JSON, headers=headers)


def error_response(status: int, field: str, zh: str, en: str, code: str, headers: dict | None = None) -> Response:
    return problem_response(status, [error_item(field, zh, en, code)], headers)


def api_error_response(e: ApiError) -> Response:
    return Response(orjson.dumps(e.body()), status_code=e.status, media_type=PROBLEM_JSON, headers=e.headers)


_STATUS_TEXT = {
    400: ("请求无效", "bad request"),
    404: ("未找到该地址", "not found"),
    405: ("不支持该请求方法", "method not allowed"),
    406: ("不支持的响应格式", "not acceptable"),
    413: ("请求体过大", "request body too large"),
    415: ("不支持的内容类型", "unsupported media type"),
}


def _field(loc: tuple) -> str:
    parts = list(loc)
    where = parts.pop(0) if parts and parts[0] in ("query", "path", "header", "body", "cookie") else ""
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else ("." if out else "") + str(p)
    return out or where or "(root)"


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> Response:
        return api_error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> Response:
        items = []
        for err in exc.errors():
            field = _field(tuple(err.get("loc", ())))
            kind = err.get("type", "invalid")
            zh = "缺少必填参数" if kind == "missing" else "取值无效"
            items.append(error_item(field, zh, str(err.get("msg", kind)), kind))
        return problem_response(422, items)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 400:  # FastAPI could not parse a JSON body: answer like every other bad input
            return error_response(422, "(root)", "不是有效的 JSON", "invalid JSON body", "json_invalid")
        zh, en = _STATUS_TEXT.get(exc.status_code, ("请求无法处理", str(exc.detail)))
        return error_response(exc.status_code, "(request)", zh, en, f"http_{exc.status_code}", getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(500, "(server)", "服务内部错误，已记录日志", "internal server error (logged)", "internal")

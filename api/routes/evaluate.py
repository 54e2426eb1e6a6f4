"""POST /v1/evaluate and /v1/evaluate/batch."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response, StreamingResponse

from api.auth.keys import Caller, Permission
from api.core.errors import PROBLEM_JSON, ApiError
from api.core.openapi_docs import BATCH_EXAMPLES, HOUSEHOLD_EXAMPLES, errors, json_body
from api.evaluation.schemas import BatchResponse, Determination
from api.evaluation.service import Answer, BatchAnswer, check_idempotency_key

from .deps import body as read_request_body
from .deps import caller_with, require
from .responses import api_error_response, error_response

log = logging.getLogger("jiuzhu.api")
_JSON = "application/json"
router = APIRouter(prefix="/v1", tags=["评估 evaluate"])

_require_evaluate = require(Permission.EVALUATE)
_Evaluator = Annotated[Caller, Depends(_require_evaluate)]
_BatchEvaluator = caller_with(Permission.EVALUATE_BATCH)
# Read from the headers in the handler (one parameter fewer for FastAPI to resolve per request).
_IDEM_PARAM = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "同一密钥重试同一请求时带上相同的值：返回第一次的结果，不会重复记录（1至255个可见 ASCII 字符）",
    "schema": {"type": "string", "maxLength": 255, "pattern": "^[\\x21-\\x7e]+$"},
}


@router.post(
    "/evaluate",
    summary="评估一户家庭，返回认定结果并记录",
    description=(
        "输入一户家庭记录（docs/contract.md），返回每个救助项目的认定状态、金额和逐条理由（含出处）。"
        "结果在写入数据库后才返回；返回体另含 `determination_id` 与 `recorded_at`。"
        "输入有误时返回 422，逐项列出出错字段（中英文）。角色：window、caseworker、admin。"
    ),
    response_model=None,
    responses={200: {"model": Determination, "description": "认定结果"}, **errors(401, 403, 413, 422, 503)},
    openapi_extra={**json_body("Household", HOUSEHOLD_EXAMPLES, "一户家庭记录"), "parameters": [_IDEM_PARAM]},
)
async def evaluate(
    request: Request,
    caller: _Evaluator,
) -> Response:
    return await _evaluate(request, caller)


async def _evaluate(request: Request, caller: Caller) -> Response:
    svc = request.app.state.service
    idem = check_idempotency_key(request.headers.get("idempotency-key"))
    body = await read_request_body(request, svc.settings.max_body_bytes)
    return _response(await svc.evaluate(body, caller, idem))


def _headers(location: str | None, replayed: bool) -> dict | None:
    headers = {"Location": location} if location else {}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return headers or None


def _response(a: Answer) -> Response:
    media = _JSON if a.status < 400 else PROBLEM_JSON
    return Response(a.body, a.status, media_type=media, headers=_headers(a.location, a.replayed))


def _stream_response(a: BatchAnswer) -> Response:
    return StreamingResponse(a.chunks(), 200, media_type=_JSON, headers=_headers(None, a.replayed))


async def fast_evaluate(scope, receive, send) -> None:
    """POST /v1/evaluate without FastAPI's routing and dependency machinery (about a sixth of a
    worker's time per request). Same checks and code as the route above, which documents it."""
    request = Request(scope, receive)
    try:
        response = await _evaluate(request, await _require_evaluate(request))
    except ApiError as e:
        response = api_error_response(e)
    except Exception:
        log.exception("unexpected error on POST /v1/evaluate")
        response = error_response(500, "(server)", "服务内部错误，已记录日志", "internal server error (logged)", "internal")
    await response(scope, receive, send)


_EXPLAIN_PARAM = {
    "name": "explain",
    "in": "query",
    "required": False,
    "description": '为 1 或 true 时每户返回逐条理由（同请求体中的 `"explain": true`）；默认只返回认定结论（`"explained": false`）',
    "schema": {"type": "string", "enum": ["0", "1", "true", "false"]},
}
_TRUE = frozenset({"1", "true"})


@router.post(
    "/evaluate/batch",
    summary="批量评估（最多1000户、20000名成员），每户单独认定或单独拒绝",
    description=(
        '请求体为 `{"households": [...]}`。每户单独校验：有误的一户在结果中列出错误，不影响其他户。'
        "全部结果在同一事务中记录后返回。"
        '默认只返回认定结论：各项目的状态、金额、缺少的信息及其决定理由，不含逐条规则理由（`"explained": false`，记录中亦然）；'
        '需要逐条理由时在请求体中加 `"explain": true` 或使用 `?explain=1`（成员总数上限较低，默认5000名）。'
        "成员总数超过上限（JIUZHU_MAX_BATCH_MEMBERS，默认20000）返回 422。角色：window、admin。"
    ),
    response_model=None,
    responses={200: {"model": BatchResponse, "description": "逐户结果，与请求顺序一致"}, **errors(401, 403, 413, 422, 503)},
    openapi_extra={**json_body("BatchRequest", BATCH_EXAMPLES, "多户家庭记录"), "parameters": [_IDEM_PARAM, _EXPLAIN_PARAM]},
)
async def evaluate_batch(
    request: Request,
    caller: _BatchEvaluator,
) -> Response:
    svc = request.app.state.service
    idem = check_idempotency_key(request.headers.get("idempotency-key"))
    explain = request.query_params.get("explain")
    if explain is not None and explain.lower() not in _TRUE | {"0", "false"}:
        raise ApiError(422, "explain", "应为 1、true、0 或 false", "must be 1, true, 0 or false", "bool_type")
    body = await read_request_body(request, svc.settings.max_batch_body_bytes)
    return _stream_response(await svc.evaluate_batch(body, caller, idem, explain is not None and explain.lower() in _TRUE))

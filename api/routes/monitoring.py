"""Dynamic monitoring over HTTP: POST /v1/events, GET /v1/alerts, acknowledge and close alerts."""

from __future__ import annotations

import logging
from typing import Annotated, Any, Literal

import orjson
import redis
from fastapi import APIRouter, Body, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from api.auth.keys import Caller, Permission, Role, refusal
from api.core.errors import ApiError, not_found
from api.core.openapi_docs import errors
from api.monitoring.service import alert_out
from api.streams import bulk, bus
from api.streams.service import client as streams_client
from engine.monitor.events import parse_event, parse_events, vocabulary
from engine.schema.model import InputError

from .deps import body as read_request_body
from .deps import caller_with
from .responses import json_response, problem_response

log = logging.getLogger("jiuzhu.api")
router = APIRouter(prefix="/v1", tags=["动态监测 monitoring"])

_Submitter = caller_with(Permission.SUBMIT_EVENTS)
_Reader = caller_with(Permission.READ_ALERTS)
_Manager = caller_with(Permission.MANAGE_ALERTS)
_Reference = caller_with(Permission.READ_REFERENCE)
MAX_EVENTS = 1000


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class AlertOut(_Open):
    alert_id: str | None = Field(description="预警编号（用于确认、关闭）")
    key: str = Field(description="预警的自然键：同一家庭、同一规则、同一组事实只预警一次")
    household_id: str
    locality: str
    rule: str = Field(description="监测规则 id（rules/monitoring/）")
    title: str
    level: Literal["red", "orange", "yellow"]
    level_zh: Literal["红", "橙", "黄"]
    text: str = Field(description="中文说明")
    action: str = Field(description="建议的处置")
    citation: str = Field(description="出处")
    member: str | None
    event_key: str = Field(description="触发预警的事件")
    event_type: str
    event_date: str
    determinations: dict[str, Any] = Field(description="比较的两次认定（before / after：各项目的状态与金额）")
    status: Literal["open", "acknowledged", "closed"] | None = None
    notes: list[dict[str, Any]] | None = None


class EventResult(_Open):
    index: int | None
    status: Literal["recorded", "duplicate", "refused"]
    household_id: str | None = None
    event_key: str | None = None
    seq: int | None = None
    evaluated: bool | None = Field(default=None, description="是否因事实变化而重新认定")
    replayed: int | None = Field(default=None, description="事件早于已记录的事件时：按日期顺序在其后重新应用的事件数")
    alerts: list[AlertOut] | None = None
    errors: list[dict[str, Any]] | None = None


class EventBatchResult(BaseModel):
    count: int
    recorded: int
    duplicate: int
    refused: int
    results: list[EventResult]


class AlertList(BaseModel):
    alerts: list[AlertOut]
    next_before: str | None = Field(description="下一页：把它作为 before 参数")


class AlertNote(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str | None = Field(default=None, max_length=2000, description="处置说明")


EVENT_EXAMPLES = {
    "住院": {
        "summary": "已登记家庭的成员住院（家庭须先以 register 事件纳入监测）",
        "value": {"household_id": "LN-2021-0001", "type": "hospitalisation", "date": "2021-09-01", "member": "p1", "cost": "8000.00", "event_id": "LN-2021-0001-e1"},
    },
    "登记家庭": {
        "summary": "纳入监测：附 docs/contract.md 的家庭记录（as_of 取事件日期）",
        "value": {
            "household_id": "LN-2021-0001",
            "type": "register",
            "date": "2021-08-01",
            "household": {
                "locality": "210102",
                "area": "urban",
                "members": [{"id": "p1", "relation": "head", "birth_date": "1956-05-01", "hukou_locality": "210102", "supporters": "none"}],
                "assets": {"financial": "5000.00", "properties": 1},
            },
        },
    },
}


def _unavailable() -> ApiError:
    return ApiError(503, "(database)", "监测服务或数据库暂不可用，事件未记录，请稍后重试", "monitor unavailable: nothing recorded, retry later", "unavailable")


@router.post(
    "/events",
    summary="报送动态监测事件：更新家庭记录、重新认定并返回预警",
    description=(
        "请求体为一个事件，或 `{\"events\": [...]}`（最多1000个，按顺序处理）。每个事件写入数据库后才返回。"
        "首次报送某户须为 `register` 事件（附家庭记录）。带 `event_id` 的事件重复报送时不会重复处理"
        "（`status: duplicate`，返回第一次的结果）。事件格式有误返回 422（逐项列出字段）；"
        "多个事件时，引用未登记家庭或不存在成员的事件单独拒绝（`status: refused`）。"
        "事件按日期顺序生效：日期早于该户已记录事件的事件，会使该户事件按日期顺序重新应用（`replayed`：其后重新应用的事件数）。"
        "角色：window、caseworker、admin。"
    ),
    response_model=None,
    responses={200: {"model": EventResult | EventBatchResult, "description": "处理结果与预警"}, **errors(401, 403, 413, 422, 503)},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"type": "object"}, "examples": EVENT_EXAMPLES}},
        }
    },
)
async def post_events(request: Request, caller: _Submitter) -> Response:
    body = await read_request_body(request, request.app.state.settings.max_batch_body_bytes)
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise ApiError(422, "(root)", "不是有效的 JSON", f"invalid JSON: {e}", "json_invalid") from None
    many = isinstance(data, dict) and "events" in data and "type" not in data
    if many:
        if set(data) != {"events"}:
            raise ApiError(422, "(root)", '请求体应为一个事件或 {"events": [...]}', 'body must be one event or {"events": [...]}', "invalid")
        raw = data["events"]
        if isinstance(raw, list) and not 1 <= len(raw) <= MAX_EVENTS:
            raise ApiError(422, "events", f"应有1至{MAX_EVENTS}个事件", f"needs 1 to {MAX_EVENTS} events", "too_long" if raw else "too_short")
    else:
        raw = [data]
    try:
        parse_events(raw) if many else parse_event(data)
    except InputError as e:
        return problem_response(422, e.to_dict()["errors"])
    try:
        results = await request.app.state.monitor.submit(raw, caller)
    except Exception:
        log.exception("recording monitoring events failed")
        raise _unavailable() from None
    if not many:
        (res,) = results
        if res["status"] == "refused":
            scope = any(e.get("code") == "out_of_scope" for e in res["errors"])
            return problem_response(403 if scope else 422, res["errors"])
        return json_response(res)
    counts = {s: sum(1 for r in results if r["status"] == s) for s in ("recorded", "duplicate", "refused")}
    return json_response({"count": len(results), **counts, "results": results})


class BulkResult(BaseModel):
    count: int = Field(description="发布的事件数")
    partitions: int = Field(description="事件流的分区数")
    published: dict[str, int] = Field(description="每个分区发布的事件数")
    ids: list[str] = Field(description="每个事件的流 id（Redis stream id），与请求中的顺序相同")


BULK_ROLES = (Role.WINDOW, Role.ADMIN)


@router.post(
    "/events/bulk",
    summary="批量发布动态监测事件到 Redis 事件流（数据比对文件等），由监测消费者异步处理",
    description=(
        "请求体为事件的 JSON 数组，或 JSON Lines（每行一个事件，`Content-Type: application/x-ndjson`）。"
        "全部事件先逐个校验（与 POST /v1/events 相同），任何一个有误则一个也不发布：422 列出每处错误"
        "（数组中为 `[3].date`，JSON Lines 中为 `line 4.date`）；`register` 事件的地区超出密钥权限范围时 403。"
        "事件数超过上限（JIUZHU_MAX_BULK_EVENTS）或请求体过大时 413。"
        "校验通过的事件一次性（全部或全不）追加到按 household_id 散列分区的事件流，返回 202、每个事件的流 id；"
        "由 `jiuzhu monitor consume` 按该密钥及其权限范围写入数据库（权限范围外或未登记家庭的事件在那里被拒绝并记入日志）。"
        "某分区未确认的事件将超过 JIUZHU_STREAM_MAX_UNACKED 时 503（`Retry-After`），一个也不发布。"
        "需配置 JIUZHU_REDIS_URL。角色：window、admin。"
    ),
    status_code=202,
    response_model=BulkResult,
    responses={**errors(401, 403, 413, 422, 503)},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
                "application/x-ndjson": {"schema": {"type": "string"}},
            },
        }
    },
)
async def post_events_bulk(request: Request, caller: _Submitter) -> Response:
    if caller.role not in BULK_ROLES:
        raise refusal(403, caller)
    settings = request.app.state.settings
    body = await read_request_body(request, settings.max_batch_body_bytes)
    scope = caller.scope.code
    try:  # what is wrong with the body first, whether or not the streams can take it
        events = await run_in_threadpool(bulk.read, body, settings.max_bulk_events, scope, request.app.state.id_secret)
    except bulk.Refusal as e:
        return problem_response(e.status, e.errors)
    if not settings.redis_url:
        raise ApiError(
            503,
            "(streams)",
            "未配置事件流（JIUZHU_REDIS_URL），不能批量发布",
            "no event streams configured (JIUZHU_REDIS_URL)",
            "unavailable",
        )
    r = streams_client(request.app.state)
    sender = bus.Sender(caller.key_id, caller.name, scope)

    def run() -> bulk.Published:
        return bulk.publish(r, events, settings.stream_partitions, settings.stream_group, settings.stream_max_unacked, sender)

    try:
        done = await run_in_threadpool(run)
    except bus.Backpressure as e:
        if e.adding > e.bound:  # never accepted, however long the caller waits
            raise ApiError(
                413, "(root)", f"本请求有 {e.adding} 个事件属于同一分区，超过分区上限 {e.bound}：请分批报送",
                f"{e.adding} events of this request fall in one partition, over its bound of {e.bound}: send them in parts", "too_many",
            ) from None
        raise ApiError(
            503, "(streams)",
            f"事件流分区 {e.partition} 尚有 {e.unacked} 个事件未处理，再加 {e.adding} 个将超过上限 {e.bound}：未发布，请稍后重试",
            f"partition {e.partition} holds {e.unacked} unprocessed events; {e.adding} more would pass {e.bound}: nothing published, retry later",
            "backpressure", headers={"Retry-After": "5"},
        ) from None
    except redis.RedisError:
        log.exception("publishing events to the streams failed")
        raise ApiError(503, "(streams)", "事件流暂不可用，未发布，请稍后重试", "event streams unavailable: nothing published, retry later", "unavailable") from None
    log.info("bulk: %d events published by key %s (scope %s)", len(done.ids), caller.key_id, caller.scope.code)
    published = {str(k): v for k, v in done.per_partition.items()}
    return json_response({"count": len(done.ids), "partitions": done.partitions, "published": published, "ids": done.ids}, status=202)


@router.get("/events/types", summary="动态监测事件类型及其字段", responses=errors(401, 403))
async def event_types(_caller: _Reference) -> list[dict]:
    return vocabulary()


@router.get("/alerts", summary="查看预警（新的在前），可按地区、状态、家庭、级别、规则筛选", response_model=AlertList, responses=errors(401, 403, 422))
async def list_alerts(
    request: Request,
    caller: _Reader,
    locality: str | None = Query(None, pattern=r"^\d{6}$", description="行政区划代码；市、省级代码包含其下辖地区", examples=["210102"]),
    status: Literal["open", "acknowledged", "closed"] | None = Query(None, description="open 待处理 / acknowledged 已确认 / closed 已关闭"),
    household_id: str | None = Query(None, max_length=128),
    level: Literal["red", "orange", "yellow"] | None = Query(None, description="red 红 / orange 橙 / yellow 黄"),
    rule: str | None = Query(None, max_length=64),
    limit: int = Query(50, ge=1, le=500),
    before: str | None = Query(None, max_length=64, description="上一页返回的 next_before"),
) -> dict:
    rows = await run_in_threadpool(_repo(request).alerts, locality, status, household_id, level, rule, limit + 1, before, caller.scope.code)
    more = len(rows) > limit
    rows = rows[:limit]
    return {"alerts": [alert_out(r) for r in rows], "next_before": rows[-1].id if more and rows else None}


@router.get("/alerts/{alert_id}", summary="查看一条预警", response_model=AlertOut, responses=errors(401, 403, 404))
async def get_alert(request: Request, caller: _Reader, alert_id: str = Path(max_length=64)) -> dict:
    row = await run_in_threadpool(_repo(request).alert, alert_id, caller.scope.code)
    if row is None:
        raise not_found("alert_id", "未找到该预警", "no such alert")
    return alert_out(row)


async def _set_status(request: Request, caller: Caller, alert_id: str, status: str, note: str | None) -> dict:
    row, problem = await run_in_threadpool(
        _repo(request).set_status, alert_id, status, note, f"{caller.name}（{caller.key_id}）", caller.scope.code
    )
    if problem == "not_found":
        raise not_found("alert_id", "未找到该预警", "no such alert")
    if problem == "closed":
        raise ApiError(409, "status", "该预警已关闭，不能再更改", "the alert is closed and cannot change", "closed")
    return alert_out(row)


@router.post(
    "/alerts/{alert_id}/acknowledge",
    summary="确认预警（已知悉、处理中），可附说明",
    response_model=AlertOut,
    responses={**errors(401, 403, 404, 422), 409: {"description": "预警已关闭"}},
)
async def acknowledge_alert(
    request: Request, caller: _Manager, alert_id: str = Path(max_length=64), body: Annotated[AlertNote | None, Body()] = None
) -> dict:
    return await _set_status(request, caller, alert_id, "acknowledged", body.note if body else None)


@router.post(
    "/alerts/{alert_id}/close",
    summary="关闭预警，须附处置说明",
    response_model=AlertOut,
    responses={**errors(401, 403, 404, 422), 409: {"description": "预警已关闭"}},
)
async def close_alert(request: Request, caller: _Manager, body: AlertNote, alert_id: str = Path(max_length=64)) -> dict:
    if not body.note or not body.note.strip():
        raise ApiError(422, "note", "关闭预警须写明处置说明", "closing an alert needs a note", "missing")
    return await _set_status(request, caller, alert_id, "closed", body.note.strip())


def _repo(request: Request):
    repo = getattr(request.app.state, "monitor_repo", None)
    if repo is None:
        from api.monitoring.repo import MonitorRepository

        repo = request.app.state.monitor_repo = MonitorRepository(request.app.state.db, request.app.state.id_secret)
    return repo

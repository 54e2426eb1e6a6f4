"""The history of a household: GET /v1/determinations/{id}, /v1/households/{household_id}/determinations."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from ..auth import Permission
from ..errors import not_found
from ..openapi_docs import errors
from ..records import household_key, iso, output_of
from ..schemas import DeterminationRecordOut, HistoryOut
from .deps import caller_with

router = APIRouter(prefix="/v1", tags=["认定记录 records"])
# Records outside the caller's locality scope read as unknown (404, or absent from a history).
_Reader = caller_with(Permission.READ_DETERMINATIONS)


def _caller(m) -> dict:
    return {"key_id": m["caller_key_id"], "name": m["caller_name"], "role": m["caller_role"]}


@router.get(
    "/determinations/{determination_id}",
    summary="查看一条认定记录：提交的家庭记录（身份证号已脱敏）、认定结果、调用方与时间",
    response_model=DeterminationRecordOut,
    responses=errors(401, 403, 404),
)
async def get_determination(
    request: Request,
    caller: _Reader,
    determination_id: str = Path(max_length=64, description="POST /v1/evaluate 返回的 determination_id"),
) -> Response:
    row = await run_in_threadpool(request.app.state.repo.determination, determination_id, scope=caller.scope)
    if row is None:
        raise not_found("determination_id", "未找到该认定记录", "no such determination")
    m = row._mapping
    # Stored JSON is spliced in as is: it was written by orjson and is returned byte for byte.
    head = orjson.dumps(
        {
            "determination_id": m["id"],
            "recorded_at": iso(m["created_at"]),
            "household_id": m["household_id"],
            "locality": m["locality"],
            "as_of": m["as_of"].isoformat(),
            "ruleset_version": m["ruleset_version"],
            "caller": _caller(m),
            "batch_id": m["batch_id"],
        }
    )
    body = head[:-1] + b',"input":' + m["input_json"].encode() + b',"determination":' + output_of(m) + b"}"
    return Response(body, media_type="application/json")


@router.get(
    "/households/{household_id}/determinations",
    summary="查看一户的认定历史（新的在前）",
    response_model=HistoryOut,
    responses=errors(401, 403),
)
async def household_history(
    request: Request,
    caller: _Reader,
    household_id: str = Path(max_length=128, description="家庭编号 household_id", examples=["LN-2021-0001"]),
    limit: int = Query(50, ge=1, le=500, description="每页条数"),
    before: str | None = Query(None, max_length=64, description="上一页返回的 next_before"),
) -> dict:
    # A household_id holding an ID number was stored masked: it is found by its keyed hash, so that
    # ids that mask alike keep their own histories.
    key = household_key(household_id, request.app.state.id_secret)
    rows = await run_in_threadpool(
        request.app.state.repo.household_history, household_id, limit + 1, before, key, scope=caller.scope
    )
    more = len(rows) > limit
    rows = rows[:limit]
    items = [
        {
            "determination_id": r.id,
            "recorded_at": iso(r.created_at),
            "locality": r.locality,
            "as_of": r.as_of.isoformat(),
            "ruleset_version": r.ruleset_version,
            "caller": _caller(r._mapping),
            "batch_id": r.batch_id,
            "programs": orjson.loads(r.summary_json),
        }
        for r in rows
    ]
    return {"household_id": household_id, "determinations": items, "next_before": rows[-1].id if more else None}

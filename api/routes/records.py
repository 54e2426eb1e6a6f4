"""The history of a household: GET /v1/determinations/{id}, /v1/households/{household_id}/determinations."""

from __future__ import annotations

from fastapi import APIRouter, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from api.auth.keys import Permission
from api.core.openapi_docs import errors
from api.evaluation import records
from api.evaluation.schemas import DeterminationRecordOut, HistoryOut

from .deps import caller_with

router = APIRouter(prefix="/v1", tags=["认定记录 records"])
# Records outside the caller's locality scope read as unknown (404, or absent from a history).
_Reader = caller_with(Permission.READ_DETERMINATIONS)


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
    state = request.app.state
    body = await run_in_threadpool(records.determination_record, state.repo, determination_id, caller.scope)
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
    state = request.app.state
    return await run_in_threadpool(
        records.household_history, state.repo, state.id_secret, household_id, limit, before, caller.scope
    )

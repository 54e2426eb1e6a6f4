"""API keys over HTTP, for administrators (the command line does the same: jiuzhu keys ...)."""

from __future__ import annotations

from fastapi import APIRouter, Path, Request
from fastapi.concurrency import run_in_threadpool

from api.auth import admin as service
from api.auth.keys import Permission
from api.core.openapi_docs import errors
from api.evaluation.schemas import KeyCreate, KeyCreated, KeyOut

from .deps import caller_with

router = APIRouter(prefix="/v1/keys", tags=["密钥 keys"])
_Admin = caller_with(Permission.MANAGE_KEYS)


@router.get("", summary="列出全部 API 密钥（不含密钥全文）", response_model=list[KeyOut], responses=errors(401, 403))
async def list_keys(request: Request, caller: _Admin) -> list[dict]:
    return await run_in_threadpool(service.list_keys, request.app.state.repo, caller)


@router.post(
    "",
    summary="创建 API 密钥（密钥全文只返回这一次）",
    status_code=201,
    response_model=KeyCreated,
    responses=errors(401, 403, 422),
)
async def create_key(request: Request, spec: KeyCreate, caller: _Admin) -> dict:
    return await run_in_threadpool(service.create_key, request.app.state.repo, caller, spec.name, spec.role, spec.locality)


@router.delete(
    "/{key_id}",
    summary="撤销 API 密钥（本进程立即生效，其他工作进程数秒内生效）",
    response_model=KeyOut,
    responses=errors(401, 403, 404),
)
async def revoke_key(request: Request, caller: _Admin, key_id: str = Path(max_length=32)) -> dict:
    out = await run_in_threadpool(service.revoke_key, request.app.state.repo, caller, key_id)
    request.app.state.keys.clear()  # this process at once; the other workers within key_cache_seconds
    return out

"""API keys over HTTP, for administrators (the command line does the same: jiuzhu keys ...)."""

from __future__ import annotations

from fastapi import APIRouter, Path, Request
from fastapi.concurrency import run_in_threadpool

from engine.localities import LocalityError

from ..auth import Permission, Role, Scope, out_of_scope
from ..errors import ApiError, not_found
from ..models import ApiKey
from ..openapi_docs import errors
from ..records import iso
from ..schemas import KeyCreate, KeyCreated, KeyOut
from .deps import caller_with

router = APIRouter(prefix="/v1/keys", tags=["密钥 keys"])
_Admin = caller_with(Permission.MANAGE_KEYS)


def key_out(k: ApiKey) -> dict:
    return {
        "key_id": k.id,
        "name": k.name,
        "role": k.role,
        "prefix": k.prefix,
        "locality": k.locality,
        "created_at": iso(k.created_at),
        "revoked_at": iso(k.revoked_at) if k.revoked_at else None,
    }


@router.get("", summary="列出全部 API 密钥（不含密钥全文）", response_model=list[KeyOut], responses=errors(401, 403))
async def list_keys(request: Request, caller: _Admin) -> list[dict]:
    return [key_out(k) for k in await run_in_threadpool(request.app.state.repo.list_keys, caller.scope)]


@router.post(
    "",
    summary="创建 API 密钥（密钥全文只返回这一次）",
    status_code=201,
    response_model=KeyCreated,
    responses=errors(401, 403, 422),
)
async def create_key(request: Request, spec: KeyCreate, caller: _Admin) -> dict:
    try:
        scope = caller.scope if spec.locality is None else Scope.of(spec.locality)
    except LocalityError as e:
        raise ApiError(422, "locality", e.zh, e.en, "locality") from None
    if not caller.scope.contains(scope):
        # an administrator hands out no more than their own scope
        raise out_of_scope()
    row, secret = await run_in_threadpool(request.app.state.repo.create_key, spec.name, Role(spec.role), scope)
    return {**key_out(row), "key": secret}


@router.delete(
    "/{key_id}",
    summary="撤销 API 密钥（本进程立即生效，其他工作进程数秒内生效）",
    response_model=KeyOut,
    responses=errors(401, 403, 404),
)
async def revoke_key(request: Request, caller: _Admin, key_id: str = Path(max_length=32)) -> dict:
    row = await run_in_threadpool(request.app.state.repo.revoke_key, key_id, caller.scope)
    if row is None:
        raise not_found("key_id", "未找到该密钥", "no such key")
    request.app.state.keys.clear()
    return key_out(row)

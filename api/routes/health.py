"""Liveness and readiness, for the supervisor or load balancer in front of the service."""

from __future__ import annotations

import contextlib
import os

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from api.evaluation.schemas import Health, Ready

from .responses import json_response

router = APIRouter(tags=["运行状态 health"])


@router.get("/healthz", summary="存活检查：进程在运行", response_model=Health)
async def healthz() -> dict:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="就绪检查：规则已加载且数据库可用",
    response_model=Ready,
    responses={503: {"model": Ready, "description": "尚未就绪"}},
)
async def readyz(request: Request):
    state = request.app.state
    checks: dict[str, str] = {}
    engine = getattr(state, "engine", None)
    checks["rules"] = "ok" if engine is not None else "not loaded"
    try:
        await run_in_threadpool(state.repo.ping)
        checks["database"] = "ok"
    except Exception as e:  # any failure means not ready; the reason is for the operator
        checks["database"] = f"error: {type(e).__name__}"
    writer = getattr(state, "writer", None)
    if writer is not None and not writer.alive and hasattr(writer, "connect"):
        # The writer process may have been restarted: reconnect now rather than on the next request.
        with contextlib.suppress(OSError):
            await writer.connect()
    checks["writer"] = "ok" if writer is not None and writer.alive else "stopped"
    ready = all(v == "ok" for v in checks.values())
    body = {
        "status": "ready" if ready else "not ready",
        "checks": checks,
        "ruleset_version": engine.version if engine else None,
        "worker": os.getpid(),  # which worker process answered (one per CPU by default)
    }
    return json_response(body, 200 if ready else 503)

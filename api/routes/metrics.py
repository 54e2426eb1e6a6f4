"""GET /metrics: Prometheus's text exposition (api/core/metrics.py), for an admin key or, with
JIUZHU_METRICS_PUBLIC=1, for anyone who reaches the port."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from api.auth.keys import Permission
from api.core.metrics import render
from api.streams.service import stream_lag

from .deps import require

router = APIRouter(tags=["运行状态 health"])
_admin = require(Permission.MANAGE_KEYS)  # admin only


@router.get("/metrics", summary="Prometheus 指标（需管理员密钥，除非 JIUZHU_METRICS_PUBLIC=1）", include_in_schema=False)
async def metrics(request: Request) -> Response:
    state = request.app.state
    if not state.settings.metrics_public:
        await _admin(request)
    body, media = await run_in_threadpool(render, state.simulations.queued, stream_lag(state) if state.settings.redis_url else None)
    return Response(body, media_type=media)

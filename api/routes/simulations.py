"""Reform simulations for policy staff: POST /v1/simulations, polling, results and files; GET /v1/populations.

Every simulation is a job (202 + ``Location``), whatever the population's size: the
work runs outside the request path with a bounded concurrency, its result and files
stay retrievable by id, and clients follow one contract. ``Prefer: wait=N`` lets a
caller with a small population get the finished job in the same call (201).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import time
from pathlib import Path as FsPath
from typing import Any

import orjson
from fastapi import APIRouter, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, Response

from api.auth.keys import Caller, Permission
from api.core.errors import ApiError, not_found
from api.core.openapi_docs import errors
from api.evaluation.records import idempotency_key, iso
from api.evaluation.service import check_idempotency_key
from api.simulations import populations
from api.simulations.child import OUTPUT_FILES
from api.simulations.request import RequestInvalid
from api.simulations.schemas import PopulationList, SimulationList, SimulationOut, SimulationRequestDoc
from api.simulations.store import DONE, FAILED, QUEUED, RUNNING, CallerQueueFull, SimulationStore
from api.storage.ids import uuid7
from api.storage.repository import as_utc
from api.web.browser_auth import key_or_session_with

from .deps import body as read_request_body
from .deps import caller_with
from .responses import json_response, problem_response

router = APIRouter(prefix="/v1", tags=["改革试算 simulations"])
_Simulator = caller_with(Permission.SIMULATE)
# files are opened from links in a browser: the workbench session is accepted besides the key header
_Downloader = key_or_session_with(Permission.SIMULATE)

ID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
MAX_WAIT_SECONDS = 60
_PREFER_WAIT = re.compile(r"(?:^|[,;\s])wait=(\d{1,6})(?:$|[,;\s])", re.I)
_JSON = "application/json"

_REFORM_EXAMPLE = {
    "name": "低保标准提高5%，低保边缘认定标准调至2倍",
    "description": "2022年1月1日起，城乡低保标准提高5%；低保边缘家庭认定标准由低保标准的1.5倍调整为2倍",
    "parameters": [
        {"key": "dibao.standard.urban", "scale": 1.05, "from": "2022-01-01"},
        {"key": "dibao.standard.rural", "scale": 1.05, "from": "2022-01-01"},
        {"key": "dibao_edge.multiplier", "value": 2, "unit": "倍", "from": "2022-01-01"},
    ],
}
_EXAMPLES = {
    "低保标准提高5%": {
        "summary": "辽宁合成人口：城乡低保标准 ×1.05，低保边缘 2 倍，自2022年1月1日起",
        "value": {"population": "liaoning-demo", "reform": _REFORM_EXAMPLE},
    },
    "YAML 文本": {
        "summary": "同一方案以 YAML 文本提交，并指定评估日期",
        "value": {
            "population": "liaoning-demo",
            "as_of": "2022-06-01",
            "reform": "name: 低保边缘认定标准调至2倍\nparameters:\n  - {key: dibao_edge.multiplier, value: 2, unit: 倍, from: 2022-01-01}\n",
        },
    },
}
_PREFER_PARAM = {
    "name": "Prefer",
    "in": "header",
    "required": False,
    "description": f"`wait=N`（秒，最多{MAX_WAIT_SECONDS}）：在 N 秒内完成则直接返回 201 与结果，否则照常返回 202（RFC 7240）",
    "schema": {"type": "string", "examples": ["wait=20"]},
}
_IDEM_PARAM = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "重试同一提交时带上相同的值：返回第一次创建的试算，不会重复排队（1至255个可见 ASCII 字符）",
    "schema": {"type": "string", "maxLength": 255, "pattern": "^[\\x21-\\x7e]+$"},
}


def _store(request: Request) -> SimulationStore:
    return request.app.state.simulations


def _href(job_id: str, name: str | None = None) -> str:
    return f"/v1/simulations/{job_id}" + (f"/files/{name}" if name else "")


def _body(m, queue_position: int | None = None, with_result: bool = True) -> dict:
    """A job row as the API shows it: no server paths, files as links."""
    job_id = m["id"]
    files = orjson.loads(m["files_json"]) if m["files_json"] else {}
    listed = [
        {"name": n, "title": OUTPUT_FILES[n][1], "media_type": OUTPUT_FILES[n][0], "bytes": size, "href": _href(job_id, n)}
        for n, size in files.items()
        if n in OUTPUT_FILES
    ]
    result = None
    if with_result and m["result_json"]:
        result = orjson.loads(m["result_json"])
        result["files"] = {k: _href(job_id, v) for k, v in result.get("files", {}).items() if v in files}
    progress = None
    if m["status"] in (RUNNING, DONE):
        total, done = m["households_total"], m["households_done"]
        if m["status"] == DONE and result is not None:
            done = total = result.get("households", done)
        end = as_utc(m["finished_at"]) if m["finished_at"] else dt.datetime.now(dt.UTC)
        progress = {
            "households_done": done,
            "households_total": total,
            "fraction": round(min(1.0, done / total), 4) if total and done is not None else (1.0 if m["status"] == DONE else None),
            "elapsed_seconds": round((end - as_utc(m["started_at"])).total_seconds(), 1) if m["started_at"] else None,
        }
    return {
        "simulation_id": job_id,
        "status": m["status"],
        "population": m["population"],
        "as_of": m["as_of"].isoformat() if m["as_of"] else None,
        "reform": orjson.loads(m["reform_info_json"]),
        "caller": {"key_id": m["caller_key_id"], "name": m["caller_name"], "role": m["caller_role"]},
        "created_at": iso(m["created_at"]),
        "started_at": iso(m["started_at"]) if m["started_at"] else None,
        "finished_at": iso(m["finished_at"]) if m["finished_at"] else None,
        "attempts": m["attempts"],
        "queue_position": queue_position,
        "progress": progress,
        "result": result,
        "files": listed,
        "errors": orjson.loads(m["errors_json"]) if m["errors_json"] else None,
        "links": {"self": _href(job_id), "report": _href(job_id, "report.html") if "report.html" in files else None},
    }


async def _job_response(request: Request, m, status: int | None = None, headers: dict | None = None) -> Response:
    position = None
    if m["status"] == QUEUED:
        position = await run_in_threadpool(_store(request).queue_position, m["id"])
    finished = m["status"] in (DONE, FAILED)
    code = status if status is not None else 200
    hdrs = {"Location": _href(m["id"]), **(headers or {})}
    if not finished:
        hdrs["Retry-After"] = "2"
    return json_response(_body(m, position), code, hdrs)


def _prefer_wait(request: Request) -> int:
    m = _PREFER_WAIT.search(request.headers.get("prefer", ""))
    return min(int(m.group(1)), MAX_WAIT_SECONDS) if m else 0


def _reused() -> ApiError:
    return ApiError(
        422,
        "Idempotency-Key",
        "该 Idempotency-Key 已用于另一份不同的试算请求",
        "this Idempotency-Key was already used with a different simulation request",
        "idempotency_key_reused",
    )


@router.post(
    "/simulations",
    summary="提交改革试算：在一个人口数据上比较现行规则与改革方案（后台运行，轮询结果）",
    description=(
        "请求体给出人口数据名称（见 `GET /v1/populations`）和改革方案（与 `jiuzhu simulate --reform` 的文件相同，对象或 YAML 文本）。"
        "方案在提交时即按命令行的方式检查：参数未声明、日期格式、规则文件错误等返回 422，逐项指明字段（中英文）。"
        "通过检查后排队，返回 202 与 `Location`：用 `GET /v1/simulations/{id}` 轮询状态（queued、running、done、failed）与进度，"
        "完成后取结果与文件（简报 report.html、得益与受损名单 gains_losses.csv 等）。"
        "同时运行的试算数有上限（JIUZHU_SIMULATION_CONCURRENCY，默认1），其余排队；"
        "每个密钥排队与运行中的试算最多 JIUZHU_SIMULATIONS_PER_CALLER 个（默认2），超出返回 429 与 Retry-After；"
        "运行超过 JIUZHU_SIMULATION_TIMEOUT_SECONDS（默认1800秒）的试算被停止并标记为 failed。"
        "带 `Prefer: wait=N` 时，在 N 秒内完成则直接返回 201 与结果。角色：policy、admin。"
    ),
    status_code=202,
    response_model=None,
    responses={
        201: {"model": SimulationOut, "description": "已在 Prefer: wait 的时限内完成（done 或 failed）"},
        202: {"model": SimulationOut, "description": "已排队或正在运行；按 Location 轮询"},
        **errors(401, 403, 413, 422, 429, 503),
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "人口数据名称与改革方案",
            "content": {_JSON: {"schema": SimulationRequestDoc.model_json_schema(), "examples": _EXAMPLES}},
        },
        "parameters": [_PREFER_PARAM, _IDEM_PARAM],
    },
)
async def submit(request: Request, caller: _Simulator) -> Response:
    state = request.app.state
    # only its keyed hash is looked up and stored
    idem = idempotency_key(check_idempotency_key(request.headers.get("idempotency-key")), state.id_secret)
    body = await read_request_body(request, state.settings.max_body_bytes)
    try:
        m, replayed = await enqueue(request, caller, body, idem)
    except RequestInvalid as e:
        return problem_response(422, e.errors)
    if replayed:
        return await _job_response(request, m, 202 if m["status"] in (QUEUED, RUNNING) else 201, {"Idempotent-Replayed": "true"})
    wait = _prefer_wait(request)
    if wait:
        m = await _wait_for(request, m["id"], wait) or m
        if m["status"] in (DONE, FAILED):
            return await _job_response(request, m, 201, {"Preference-Applied": f"wait={wait}"})
    return await _job_response(request, m, 202)


async def enqueue(request: Request, caller: Caller, body: bytes, idem: str | None = None) -> tuple[Any, bool]:
    """Read, check and queue a simulation request body (the API's and the workbench form's): returns the
    job's row mapping and whether it is an idempotent replay of an earlier submission. Raises
    ``RequestInvalid`` (422 with the fields named) or ``ApiError``; nothing is queued then."""
    state = request.app.state
    store = _store(request)
    checker = state.reform_checker  # reading and checking the reform run in another process, not on this event loop
    req = await checker.parse(body)
    population = await run_in_threadpool(populations.find, state.settings.populations_path, req.population, caller.scope.code)
    req_hash = req.request_hash()
    if idem is not None:
        prior = await run_in_threadpool(store.by_idempotency, caller.key_id, idem)
        if prior is not None:
            return _replayed(prior._mapping, req_hash), True
    per_caller = state.settings.simulations_per_caller
    held = await run_in_threadpool(store.held, caller.key_id)
    if held >= per_caller:  # before spending a reform check on it (submit counts again, under a lock)
        raise _queue_full(per_caller, held)
    async with state.reform_checks:  # a reform check loads a rule book (~0.5 s of CPU): one at a time per worker
        info = await checker.check(req, state.simulation_home)
    row = {
        "id": uuid7(),
        "status": QUEUED,
        "population": population.name,
        "as_of": req.as_of,
        "reform_name": info["name"][:200],
        "reform_yaml": req.reform_yaml,
        "rules_json": orjson.dumps(req.rules).decode(),
        "reform_info_json": orjson.dumps(info).decode(),
        "caller_key_id": caller.key_id,
        "caller_name": caller.name,
        "caller_role": str(caller.role),
        "caller_scope": caller.scope.code,
        "idempotency_key": idem,
        "request_hash": req_hash,
        "created_at": dt.datetime.now(dt.UTC),
        "attempts": 0,
        "households_total": population.households,
    }
    try:
        stored, replayed = await run_in_threadpool(store.submit, row, state.settings.simulations_per_caller)
    except CallerQueueFull as e:
        raise _queue_full(state.settings.simulations_per_caller, e.held) from None
    except Exception:
        raise ApiError(503, "(database)", "数据库暂不可用，试算未提交，请稍后重试", "database unavailable: nothing queued, retry later", "unavailable") from None
    if replayed:
        return _replayed(stored._mapping, req_hash), True
    state.simulation_runner.nudge()
    return stored._mapping, False


def _queue_full(limit: int, held: int) -> ApiError:
    return ApiError(
        429,
        "(caller)",
        f"该密钥已有{held}个试算在排队或运行（每个密钥最多{limit}个），请待其完成后再提交",
        f"this key already has {held} simulations queued or running (at most {limit} per key): submit again once one has finished",
        "too_many_simulations",
        {"Retry-After": "30"},
    )


def _replayed(m, req_hash: str):
    if m["request_hash"] != req_hash:
        raise _reused()
    return m


async def _wait_for(request: Request, job_id: str, seconds: int):
    deadline = time.monotonic() + seconds
    row = None
    while time.monotonic() < deadline:
        await asyncio.sleep(0.25)
        row = await run_in_threadpool(_store(request).get, job_id)
        if row is not None and row._mapping["status"] in (DONE, FAILED):
            break
    return row._mapping if row is not None else None


@router.get(
    "/simulations",
    summary="列出改革试算（新的在前）",
    description="每项与 `GET /v1/simulations/{id}` 相同，但不含 result（请按 id 查看）。角色：policy、admin。",
    response_model=SimulationList,
    responses=errors(401, 403),
)
async def list_simulations(
    request: Request,
    caller: _Simulator,
    limit: int = Query(20, ge=1, le=200, description="每页条数"),
    before: str | None = Query(None, max_length=64, description="上一页返回的 next_before"),
) -> Response:
    rows = await run_in_threadpool(_store(request).recent, limit + 1, before, caller.scope.code)
    more = len(rows) > limit
    rows = rows[:limit]
    items = [_body({**r._mapping, "result_json": None}, with_result=False) for r in rows]
    return json_response({"simulations": items, "next_before": rows[-1].id if more else None})


@router.get(
    "/simulations/{simulation_id}",
    summary="查看改革试算：状态与进度；完成后为基线与改革后的人数、支出及其变化，以及文件下载地址",
    description="排队或运行中时带 `Retry-After`。失败时 `errors` 说明原因（中英文）。角色：policy、admin。",
    response_model=SimulationOut,
    responses=errors(401, 403, 404),
)
async def get_simulation(
    request: Request,
    caller: _Simulator,
    simulation_id: str = Path(pattern=ID_PATTERN, description="POST /v1/simulations 返回的 simulation_id"),
) -> Response:
    row = await run_in_threadpool(_store(request).get, simulation_id, caller.scope.code)
    if row is None:
        raise not_found("simulation_id", "未找到该试算", "no such simulation")
    return await _job_response(request, row._mapping)


@router.get(
    "/simulations/{simulation_id}/files/{name}",
    summary="下载试算文件：简报 report.html、得益与受损名单 gains_losses.csv、变化明细 changes.parquet 等",
    description="文件名只能是试算结果 `files` 中列出的名称。角色：policy、admin。",
    response_class=Response,
    responses={
        200: {
            "description": "文件内容",
            "content": {media.split(";")[0]: {} for media, _title in OUTPUT_FILES.values()},
        },
        **errors(401, 403, 404),
    },
)
async def get_file(
    request: Request,
    caller: _Downloader,
    simulation_id: str = Path(pattern=ID_PATTERN, description="试算编号"),
    name: str = Path(max_length=64, description="文件名，如 report.html", examples=["report.html"]),
) -> Response:
    row = await run_in_threadpool(_store(request).get, simulation_id, caller.scope.code)
    if row is None:
        raise not_found("simulation_id", "未找到该试算", "no such simulation")
    m = row._mapping
    listed = orjson.loads(m["files_json"]) if m["files_json"] else {}
    if name not in OUTPUT_FILES or name not in listed:
        raise not_found("name", "该试算没有这个文件", "this simulation has no such file")
    # The name is one of OUTPUT_FILES and the id matched a stored job's: the path stays in the job's directory.
    path: FsPath = request.app.state.settings.simulations_path / m["id"] / "out" / name
    if not path.is_file():
        raise not_found("name", "文件已不在服务器上（可能已被清理）", "the file is no longer on the server (cleaned up?)")
    media_type, _title = OUTPUT_FILES[name]
    headers = {"X-Content-Type-Options": "nosniff"}
    if name.endswith(".html"):
        # The briefing is static (inline SVG and styles): nothing in it may run or load anything.
        headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
    return FileResponse(
        path,
        media_type=media_type,
        filename=f"simulation-{m['id']}-{name}",
        content_disposition_type="inline" if name.endswith(".html") else "attachment",
        headers=headers,
    )


@router.get(
    "/populations",
    summary="可用于改革试算的人口数据（服务端人口数据目录中的名称）",
    description="由管理员放在 JIUZHU_POPULATIONS_DIR（默认 数据目录/populations）下，如 `jiuzhu synth --out ~/.local/share/jiuzhu/populations/liaoning-demo`。角色：policy、admin。",
    response_model=PopulationList,
    responses=errors(401, 403),
)
async def list_populations(request: Request, caller: _Simulator) -> Response:
    found = await run_in_threadpool(populations.available, request.app.state.settings.populations_path, caller.scope.code)
    return json_response({"populations": [p.to_dict() for p in found]})

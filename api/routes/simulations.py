"""Reform simulations for policy staff: POST /v1/simulations, polling, results and files; GET /v1/populations.

Every simulation is a job (202 + ``Location``), whatever the population's size: the
work runs outside the request path with a bounded concurrency, its result and files
stay retrievable by id, and clients follow one contract. ``Prefer: wait=N`` lets a
caller with a small population get the finished job in the same call (201).
"""

from __future__ import annotations

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response, StreamingResponse

from api.auth.keys import Permission
from api.core.errors import not_found
from api.core.openapi_docs import errors
from api.simulations.child import OUTPUT_FILES
from api.simulations.request import RequestInvalid
from api.simulations.schemas import PopulationList, SimulationList, SimulationOut, SimulationRequestDoc
from api.simulations.service import ID_PATTERN, MAX_WAIT_SECONDS, Job, SimulationService, prefer_wait
from api.web.browser_auth import key_or_session_with

from .deps import body as read_request_body
from .deps import caller_with
from .responses import json_response, problem_response

router = APIRouter(prefix="/v1", tags=["改革试算 simulations"])
_Simulator = caller_with(Permission.SIMULATE)
# files are opened from links in a browser: the workbench session is accepted besides the key header
_Downloader = key_or_session_with(Permission.SIMULATE)

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


def _service(request: Request) -> SimulationService:
    return request.app.state.simulation_service


def _job_response(job: Job, status: int = 200, headers: dict | None = None) -> Response:
    hdrs = {"Location": job.location, **(headers or {})}
    if not job.finished:
        hdrs["Retry-After"] = "2"
    return json_response(job.body, status, hdrs)


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
    body = await read_request_body(request, request.app.state.settings.max_body_bytes)
    wait = prefer_wait(request.headers.get("prefer"))
    try:
        done = await _service(request).submit(caller, body, request.headers.get("idempotency-key"), wait)
    except RequestInvalid as e:
        return problem_response(422, e.errors)
    if done.replayed:
        return _job_response(done.job, 201 if done.job.finished else 202, {"Idempotent-Replayed": "true"})
    if done.waited:
        return _job_response(done.job, 201, {"Preference-Applied": f"wait={done.waited}"})
    return _job_response(done.job, 202)


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
    items, next_before = await _service(request).recent(limit, before, caller.scope.code)
    return json_response({"simulations": items, "next_before": next_before})


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
    job = await _service(request).job(simulation_id, caller.scope.code)
    if job is None:
        raise not_found("simulation_id", "未找到该试算", "no such simulation")
    return _job_response(job)


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
    f = await _service(request).download(simulation_id, name, caller.scope.code)
    inline = name.endswith(".html")
    headers = {
        "X-Content-Type-Options": "nosniff",
        "Content-Length": str(f.size),
        "Content-Disposition": f'{"inline" if inline else "attachment"}; filename="{f.filename}"',
    }
    if inline:
        # The briefing is static (inline SVG and styles): nothing in it may run or load anything.
        headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
    # read and sent a part at a time (starlette iterates a plain iterator in a thread)
    return StreamingResponse(f.parts, media_type=f.media_type, headers=headers)


@router.get(
    "/populations",
    summary="可用于改革试算的人口数据（服务端人口数据目录中的名称）",
    description="由管理员放在 JIUZHU_POPULATIONS_DIR（默认 数据目录/populations）下，如 `jiuzhu synth --out ~/.local/share/jiuzhu/populations/liaoning-demo`。角色：policy、admin。",
    response_model=PopulationList,
    responses=errors(401, 403),
)
async def list_populations(request: Request, caller: _Simulator) -> Response:
    found = await _service(request).populations(caller.scope.code)
    return json_response({"populations": [p.to_dict() for p in found]})

"""模拟 /simulations (policy role): choose a population, build a reform from a form or upload a reform file,
follow the run, read the briefing and download its files.

A submission goes through ``api.simulations.service.SimulationService.submit``, the same reading, checks
(untrusted input: api.simulations.request, api.simulations.reform_checks) and queue as POST /v1/simulations;
the form only writes the reform document the API would receive. The briefing is ``engine.batch.briefing`` of the
job's result; files are linked at /v1/simulations/{id}/files/{name}, which accepts the session.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal, InvalidOperation

import orjson
from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.datastructures import UploadFile

from api.auth.keys import Permission
from api.core.errors import ApiError, error_item
from api.simulations.child import OUTPUT_FILES
from api.simulations.request import RequestInvalid
from api.simulations.service import ID_PATTERN, SimulationService
from api.simulations.store import DONE, FAILED, QUEUED, RUNNING
from engine.batch import briefing

from .deps import checked_form, page_with
from .render import page

router = APIRouter(include_in_schema=False)
Simulator = page_with(Permission.SIMULATE)

STATUS_ZH = {QUEUED: "排队中", RUNNING: "运行中", DONE: "已完成", FAILED: "失败"}
MAX_ROWS = 20  # parameter rows of the form
REFRESH_SECONDS = 2


def _service(request: Request) -> SimulationService:
    return request.app.state.simulation_service


def _parameters(request: Request) -> list[tuple[str, str, str]]:
    """(key, label, unit) of every numeric parameter, for the form's choices."""
    store = request.app.state.engine.policies
    return [(k, s.label, s.unit or "") for k, s in store.schema.items() if s.type.kind in ("money", "number", "int")]


def _form_reform(form: dict[str, list], keys: set[str]) -> tuple[str | None, list[dict]]:
    """The reform YAML the form describes, or field errors (named as the form's fields)."""
    errors: list[dict] = []
    name = (form.get("name") or [""])[0].strip()[:200]
    if not name:
        errors.append(error_item("name", "请填写方案名称", "the reform needs a name", "missing"))
    lines = [f"name: {json.dumps(name, ensure_ascii=False)}"]
    desc = (form.get("description") or [""])[0].strip()[:2000]
    if desc:
        lines.append(f"description: {json.dumps(desc, ensure_ascii=False)}")
    lines.append("parameters:")
    rows = list(zip(form.get("key", []), form.get("mode", []), form.get("amount", []), form.get("from", []), strict=False))[
        :MAX_ROWS
    ]
    used = 0
    for i, (key, mode, amount, start) in enumerate(rows):
        key, amount, start = key.strip(), amount.strip(), start.strip()
        if not key and not amount:
            continue
        used += 1
        if key not in keys:
            errors.append(error_item(f"key[{i}]", "请选择要调整的参数", "choose a parameter", "invalid"))
            continue
        try:
            number = Decimal(amount)
            if not number.is_finite() or number < 0:
                raise InvalidOperation
        except InvalidOperation:
            errors.append(error_item(f"amount[{i}]", "请填写不小于0的数值", "a number not below 0 is needed", "invalid"))
            continue
        try:
            day = dt.date.fromisoformat(start)
        except ValueError:
            errors.append(error_item(f"from[{i}]", "请填写生效日期（年-月-日）", "a start date YYYY-MM-DD is needed", "invalid"))
            continue
        field = "scale" if mode == "scale" else "value"
        # numbers go in as written (YAML reads them as numbers), keys and dates were checked above
        lines.append(f"  - {{key: {key}, {field}: {number.normalize():f}, from: {day.isoformat()}}}")
    if not used:
        errors.append(
            error_item(
                "key[0]", "至少调整一项参数，或上传方案文件", "change at least one parameter, or upload a reform file", "missing"
            )
        )
    return (None if errors else "\n".join(lines) + "\n"), errors


async def _uploaded(form: dict[str, list], limit: int) -> tuple[str | None, list[dict]]:
    upload = next((v for v in form.get("reform_file", []) if isinstance(v, UploadFile) and v.filename), None)
    if upload is None:
        return None, []
    data = await upload.read(limit + 1)
    if len(data) > limit:
        return None, [
            error_item("reform_file", f"方案文件过大（至多 {limit // 1024} KB）", "the reform file is too large", "too_large")
        ]
    try:
        return data.decode("utf-8"), []
    except UnicodeDecodeError:
        return None, [
            error_item("reform_file", "方案文件应为 UTF-8 编码的 YAML 文本", "the reform file must be UTF-8 YAML", "invalid")
        ]


async def _form_page(
    request: Request, caller, *, status: int = 200, errors: list[dict] | None = None, values: dict | None = None
):
    service = _service(request)
    found = await service.populations(caller.scope.code)
    jobs, _more = await service.recent(20, None, caller.scope.code)
    for j in jobs:
        j["status_zh"] = STATUS_ZH.get(j["status"], j["status"])
    by_field = {}
    for e in errors or []:
        by_field.setdefault(e["field"], []).append(e["message_zh"])
    values = values or {}
    rows = max(3, len(values.get("key", [])))
    return page(
        request,
        "policyweb/simulations.html",
        caller,
        status=status,
        title="模拟",
        populations=found,
        parameters=_parameters(request),
        jobs=jobs,
        errors=errors or [],
        by_field=by_field,
        values=values,
        rows=range(min(rows, MAX_ROWS)),
        today=dt.date.today().isoformat(),
    )


@router.get("/simulations", response_class=HTMLResponse)
async def simulations_page(request: Request, caller: Simulator):
    return await _form_page(request, caller)


@router.post("/simulations")
async def submit_simulation(request: Request, caller: Simulator):
    form = await checked_form(request)
    state = request.app.state
    values = {k: [v for v in vs if isinstance(v, str)] for k, vs in form.items() if k != "csrf_token"}
    reform, errors = await _uploaded(form, state.settings.max_body_bytes // 2)
    if reform is None and not errors:
        reform, errors = _form_reform(form, {k for k, _l, _u in _parameters(request)})
    body = {"population": (form.get("population") or [""])[0], "reform": reform}
    as_of = (form.get("as_of") or [""])[0].strip()
    if as_of:
        body["as_of"] = as_of
    if not errors:
        try:
            submitted = await _service(request).submit(caller, orjson.dumps(body))
        except RequestInvalid as e:
            errors = e.errors
        except ApiError as e:
            errors = [error_item(e.field, e.zh, e.en, e.code)]
    if errors:
        return await _form_page(request, caller, status=422, errors=errors, values=values)
    return RedirectResponse(f"/simulations/{submitted.job.id}", status_code=303)


@router.get("/simulations/{simulation_id}", response_class=HTMLResponse)
async def simulation_page(request: Request, caller: Simulator, simulation_id: str = Path(pattern=ID_PATTERN)):
    found = await _service(request).job(simulation_id, caller.scope.code)
    if found is None:
        return page(
            request, "message.html", caller, status=404, title="未找到该试算", message="未找到该试算（或不在您的管辖范围内）。"
        )
    job = found.body
    job["reform"]["changes"] = [_readable(request, c) for c in job["reform"].get("changes", [])]
    result = job["result"]
    brief = None
    if result is not None:
        brief = {
            "headline": briefing.headline(result),
            "counts": briefing.count_rows(result),
            "costs": briefing.cost_rows(result),
            "localities": briefing.locality_rows(result),
            "total": {k: briefing.wan(v, signed=k.startswith("change")) for k, v in result["total_cost"].items()},
        }
    files = [{**f, "size": _size(f["bytes"])} for f in job["files"] if f["name"] in OUTPUT_FILES]
    return page(
        request,
        "policyweb/simulation.html",
        caller,
        title=f"试算：{job['reform'].get('name', '')}",
        job=job,
        status_zh=STATUS_ZH.get(job["status"], job["status"]),
        refresh=REFRESH_SECONDS if job["status"] in (QUEUED, RUNNING) else None,
        brief=brief,
        files=files,
    )


def _readable(request: Request, change: str) -> str:
    """``dibao.standard.urban × 1.2，…`` as people read it: the parameter's label instead of its key."""
    key, sep, rest = change.partition(" ")
    spec = request.app.state.engine.policies.schema.get(key)
    return f"{spec.label}{sep}{rest}" if spec is not None else change


def _size(n: int | None) -> str:
    if n is None:
        return ""
    if n < 1024:
        return f"{n} 字节"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KB"
    return f"{n / 1024 / 1024:.1f} MB"

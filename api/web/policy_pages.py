"""政策 /policy: what a caseworker opens when a family asks "为什么".

For a locality (chosen by name) and a date: every parameter with its value, unit, source document and
the level it comes from; one parameter's history over time; each program's rule sentences and
citations. The numbers come from the functions behind the /v1 reference endpoints
(api.routes.reference), so the page and the API never disagree.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from functools import cache

from fastapi import APIRouter, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

from api.auth.keys import Permission
from api.core.errors import ApiError
from api.reference import service as reference
from engine.policies import localities

from .deps import page_with
from .render import page

router = APIRouter(include_in_schema=False)

LEVEL_ZH = {"national": "国家", "province": "省级", "prefecture": "市级", "county": "县级"}
_FILLER = ("市辖区", "县", "省直辖县级行政区划", "自治区直辖县级行政区划")
_CODE = re.compile(r"(\d{6})")
MAX_CANDIDATES = 30


@cache
def _choices() -> tuple[tuple[str, str], ...]:
    """(code, "辽宁省沈阳市和平区") for every division a person can name, for the searchable field."""
    # engine.policies.localities keeps its table private; the page reads it once per process
    table = localities._table()
    return tuple((c, localities.full_name(c)) for c, d in table.items() if d.name not in _FILLER)


def _option(code: str) -> str:
    return f"{localities.full_name(code)}（{code}）"


def find_locality(text: str, default: str) -> tuple[str | None, list[tuple[str, str]]]:
    """The code a typed locality names: a 6-digit code, a full name or one unambiguous part of one.
    Returns (code, []) or (None, candidates)."""
    text = (text or "").strip()[:100]
    if not text:
        return default, []
    m = _CODE.search(text)
    if m and localities.is_valid(m.group(1)):
        return m.group(1), []
    exact = [(c, n) for c, n in _choices() if text in (n, _option(c), localities.division(c).name)]
    if len(exact) == 1:
        return exact[0][0], []
    found = exact or [(c, n) for c, n in _choices() if text in n]
    if len(found) == 1:
        return found[0][0], []
    return None, found[:MAX_CANDIDATES]


def _on(text: str | None) -> tuple[str, str | None]:
    """The date asked for (today by default), and a message when it is not a date."""
    if not text:
        return dt.date.today().isoformat(), None
    try:
        return dt.date.fromisoformat(text.strip()).isoformat(), None
    except ValueError:
        return dt.date.today().isoformat(), f"日期“{text[:20]}”无法识别，应为 年-月-日（如 2021-08-01），已改用今天。"


def _level_label(code: str | None) -> str:
    if not code:
        return "未配置"
    return f"{LEVEL_ZH.get(localities.division(code).level, '')}·{localities.full_name(code)}"


def _default_locality(caller) -> str:
    return caller.scope.code


@router.get("/policy", response_class=HTMLResponse)
async def policy_page(request: Request, caller: page_with(Permission.READ_REFERENCE)):
    q = request.query_params
    code, candidates = find_locality(q.get("locality", ""), _default_locality(caller))
    on, date_problem = _on(q.get("date"))
    params = None
    problem = None
    if code is not None:
        try:
            params = await run_in_threadpool(reference.parameters, request.app.state.engine.policies, code, on)
        except ApiError as e:
            problem = e.zh
    elif q.get("locality"):
        problem = (
            "没有找到这个地区，请从下面的候选中选择，或输入6位行政区划代码。"
            if candidates
            else "没有找到这个地区，请输入地区名称（如“和平区”）或6位行政区划代码。"
        )
    if params is not None:
        for p in params["parameters"]:
            p["level_label"] = _level_label(p["level"])
    programs = reference.programs(request.app.state.engine.book)
    return page(
        request,
        "policyweb/policy.html",
        caller,
        title="政策",
        locality_text=_option(code) if code else q.get("locality", "")[:100],
        code=code,
        on=on,
        date_problem=date_problem,
        problem=problem,
        candidates=candidates,
        params=params,
        programs=programs,
        choices=_choices(),
    )


def history(request: Request, key: str, code: str) -> list[dict]:
    """The parameter's value over time in ``code``: one row per period in which value, level or source stays the same."""
    store = request.app.state.engine.policies
    chain = store.chain(code)
    dates = sorted({e.start for c in chain for entries in store.files.get(c, {}).values() for e in entries})
    rows: list[dict] = []
    for day in dates:
        r = store.resolve(code, day).info[key]
        row = {
            "from": day.isoformat(),
            "effective_from": r.start.isoformat() if r.start else None,
            "display": r.display(),
            "configured": r.configured,
            "level_label": _level_label(r.level),
            "source": r.source,
            "note": r.note,
            "project_default": r.project_default,
            "formula": r.formula,
        }
        same = rows and all(rows[-1][k] == row[k] for k in ("display", "level_label", "source", "effective_from"))
        if not same:
            rows.append(row)
    for a, b in itertools.pairwise(rows):
        a["until"] = (dt.date.fromisoformat(b["from"]) - dt.timedelta(days=1)).isoformat()
    return rows


@router.get("/policy/parameters/{key}", response_class=HTMLResponse)
async def parameter_page(request: Request, caller: page_with(Permission.READ_REFERENCE), key: str = Path(max_length=100)):
    store = request.app.state.engine.policies
    spec = store.schema.get(key)
    code, _candidates = find_locality(request.query_params.get("locality", ""), _default_locality(caller))
    if spec is None or code is None:
        what = "参数" if spec is None else "地区"
        return page(
            request, "message.html", caller, status=404, title=f"未找到该{what}", message=f"未找到该{what}，请从政策页重新选择。"
        )
    rows = await run_in_threadpool(history, request, key, code)
    label = store.resolve(code, dt.date.today()).info[key].label
    return page(
        request,
        "policyweb/parameter.html",
        caller,
        title=label,
        key=key,
        label=label,
        code=code,
        locality_name=localities.full_name(code),
        rows=rows,
    )


@router.get("/policy/programs/{code}", response_class=HTMLResponse)
async def program_page(request: Request, caller: page_with(Permission.READ_REFERENCE), code: str = Path(max_length=64)):
    try:
        prog = reference.program_rules(request.app.state.engine.book, code)
    except ApiError as e:
        return page(request, "message.html", caller, status=e.status, title="未找到该项目", message=e.zh)
    return page(request, "policyweb/program.html", caller, title=prog["name"], prog=prog)

"""The caseworker's day: 新建评估 (/evaluate), 评估结果 and 打印 (/determinations/{id}), 家庭档案 (/households).

Each page calls what the API calls: the form is evaluated and recorded by ``Service.evaluate`` (the
code behind POST /v1/evaluate), records are read through the repository with the caller's scope, and
the result is engine.explain.report's report of the stored determination. Outside the caller's scope a record
reads as unknown (404), as in the API.
"""

from __future__ import annotations

import datetime as dt
from urllib.parse import quote

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse

from api.auth.keys import Caller, Permission
from api.core.errors import ApiError
from api.evaluation.records import household_key, output_of
from engine.explain.report import build_report, render_sheet
from engine.policies import localities

from . import household_form as hf
from .deps import PageForbidden, checked_form, page_with
from .render import page

router = APIRouter(include_in_schema=False)
_Evaluator = page_with(Permission.EVALUATE)
_Reader = page_with(Permission.READ_DETERMINATIONS)
_ResultReader = page_with(Permission.READ_REFERENCE)  # every role; _record says who may read which record


def _today() -> str:
    return dt.date.today().isoformat()


def _form_page(request: Request, caller: Caller, tree: hf.FormTree, errors: list[dict] | None = None, status: int = 200):
    by_field, loose = hf.place_errors(errors or [], tree)
    locality = hf.text_of(tree.get("locality"))
    return page(
        request,
        "case_evaluate.html",
        caller,
        status=status,
        title="新建评估",
        tree=tree,
        choices=hf.CHOICES,
        errors=by_field,
        loose_errors=loose,
        error_count=len(errors or []),
        locality_name=localities.full_name(locality) if localities.is_valid(locality) else "",
        dom_id=hf.dom_id,
        val=hf.text_of,
    )


@router.get("/evaluate", response_class=HTMLResponse)
async def evaluate_form(request: Request, caller: _Evaluator):
    default = caller.scope.code if caller.scope.code != localities.NATIONAL else ""
    return _form_page(request, caller, hf.blank_tree(default, _today()))


@router.post("/evaluate", response_class=HTMLResponse)
async def evaluate_submit(request: Request, caller: _Evaluator):
    form = await checked_form(request)
    tree = hf.normalise(hf.tree_from_form(form))
    action = (form.get("action") or [""])[0]
    if hf.apply_action(tree, action):
        return _form_page(request, caller, tree)
    household, own_errors = hf.to_household(tree)
    if own_errors:  # the form's own fields first: the record would not say what the caseworker typed
        return _form_page(request, caller, tree, own_errors, status=422)
    try:
        answer = await request.app.state.service.evaluate(orjson.dumps(household), caller, None)
    except ApiError as e:  # out of scope, database unavailable: said beside the field it names, or above
        return _form_page(request, caller, tree, [{"field": e.field, "message_zh": e.zh, "code": e.code}], status=e.status)
    body = orjson.loads(answer.body)
    if answer.status != 200:
        return _form_page(request, caller, tree, body["errors"], status=answer.status)
    return RedirectResponse(f"/determinations/{body['determination_id']}", status_code=303)


@router.get("/evaluate/localities.json")
async def locality_choices(caller: _Evaluator):
    """Provinces, prefectures and counties the caller may evaluate for (and the levels above them, to
    reach them): the picker's reference data, from the code table the validator checks against."""
    out = []
    for d in localities.divisions():
        if caller.scope.covers(d.code) or localities.covers(d.code, caller.scope.code):
            out.append({"code": d.code, "name": d.name, "level": d.level, "full_name": localities.full_name(d.code)})
    return JSONResponse(out, headers={"Cache-Control": "private, max-age=3600"})


# -- the result of one determination ---------------------------------------------------------------------


async def _record(request: Request, caller: Caller, determination_id: str):
    row = None
    if len(determination_id) <= 64:
        row = await run_in_threadpool(request.app.state.repo.determination, determination_id, scope=caller.scope)
    if row is None:
        raise _NotFound()
    m = row._mapping
    # A window may not browse records, but it reads the result it has just recorded (the API hands it the
    # same determination in the answer to POST /v1/evaluate).
    own = Permission.EVALUATE in caller.permissions and m["caller_key_id"] == caller.key_id
    if Permission.READ_DETERMINATIONS not in caller.permissions and not own:
        raise PageForbidden(caller, Permission.READ_DETERMINATIONS)
    det = orjson.loads(output_of(m))
    household = orjson.loads(m["input_json"])
    return m, det, household


class _NotFound(Exception):
    """A record unknown or outside the caller's scope: the same page either way."""


def _not_found(request: Request, caller: Caller):
    return page(
        request, "message.html", caller, status=404, title="未找到", message="未找到该认定记录，或该记录不在您的辖区范围内。"
    )


@router.get("/determinations/{determination_id}", response_class=HTMLResponse)
async def result(request: Request, caller: _ResultReader, determination_id: str):
    try:
        m, det, household = await _record(request, caller, determination_id)
    except _NotFound:
        return _not_found(request, caller)
    rep = build_report(det, household)
    return page(
        request,
        "case_result.html",
        caller,
        title="评估结果",
        rep=rep,
        det=det,
        record=m,
        recorded_at=_local(m["created_at"]),
        history_url="/households/" + quote(m["household_id"], safe=""),
        can_history=Permission.READ_DETERMINATIONS in caller.permissions,
    )


@router.get("/determinations/{determination_id}/print", response_class=HTMLResponse)
async def print_view(
    request: Request,
    caller: _ResultReader,
    determination_id: str,
    appendix: int = Query(0, ge=0, le=1, description="1：附审核附录"),
):
    try:
        _m, det, household = await _record(request, caller, determination_id)
    except _NotFound:
        return _not_found(request, caller)
    rep = build_report(det, household)
    return HTMLResponse(render_sheet(rep, printed_on=_today(), appendix=bool(appendix)))


def _local(ts: dt.datetime) -> str:
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=dt.UTC)
    return ts.astimezone(dt.timezone(dt.timedelta(hours=8))).strftime("%Y-%m-%d %H:%M")


# -- household history -------------------------------------------------------------------------------------


@router.get("/households", response_class=HTMLResponse)
async def households(request: Request, caller: _Reader, q: str = Query("", max_length=128)):
    q = q.strip()
    if q:
        return RedirectResponse("/households/" + quote(q, safe=""), status_code=303)
    rows = await run_in_threadpool(request.app.state.repo.recent_households, caller.scope)
    recent = [
        {
            "household_id": r.household_id,
            "url": "/households/" + quote(r.household_id, safe="") if r.household_key is None else f"/determinations/{r.id}",
            "place": localities.full_name(r.locality),
            "as_of": r.as_of.isoformat(),
            "recorded_at": _local(r.created_at),
            "programs": _granted(orjson.loads(r.summary_json)),
        }
        for r in rows
    ]
    return page(request, "case_households.html", caller, title="家庭档案", recent=recent, q=q)


def _granted(summary: list[dict]) -> str:
    names = {p["program"]: p for p in summary if p["status"] in ("eligible", "gradual_exit")}
    return "、".join(hf.label("current_benefits", code) for code in names) or "无"


@router.get("/households/{household_id}", response_class=HTMLResponse)
async def household(
    request: Request,
    caller: _Reader,
    household_id: str,
    a: str | None = Query(None, max_length=64, description="较早的认定记录"),
    b: str | None = Query(None, max_length=64, description="较新的认定记录"),
):
    repo = request.app.state.repo
    if len(household_id) > 128:
        return _not_found(request, caller)
    key = household_key(household_id, request.app.state.id_secret)
    rows = await run_in_threadpool(repo.household_history, household_id, 100, None, key, scope=caller.scope)
    if not rows:
        return page(
            request,
            "message.html",
            caller,
            status=404,
            title="未找到",
            message=f"您的辖区内没有户编号为“{household_id}”的认定记录。",
        )
    items = [
        {
            "id": r.id,
            "recorded_at": _local(r.created_at),
            "as_of": r.as_of.isoformat(),
            "place": localities.full_name(r.locality),
            "caller": r.caller_name,
            "programs": [{**p, "name": hf.label("current_benefits", p["program"])} for p in orjson.loads(r.summary_json)],
        }
        for r in rows
    ]
    ids = [r.id for r in rows]
    newer = b if b in ids else ids[0]
    older = a if a in ids else (ids[1] if len(ids) > 1 and ids[1] != newer else None)
    changes = None
    if older and older != newer:
        dets = {}
        for rid in (older, newer):
            row = await run_in_threadpool(repo.determination, rid, scope=caller.scope)
            dets[rid] = orjson.loads(output_of(row._mapping))
        changes = compare(dets[older], dets[newer])
    return page(
        request,
        "case_household.html",
        caller,
        title="家庭档案",
        household_id=rows[0].household_id,
        items=items,
        older=older,
        newer=newer,
        changes=changes,
        status_text=_STATUS,
        url=request.url.path,
    )


_STATUS = {"eligible": "符合", "gradual_exit": "渐退期", "ineligible": "不符合", "needs_info": "需补充信息", None: "（无）"}


def _who(p: dict) -> str:
    return "全户" if p["scope"] == "household" else "、".join(p["members"])


def compare(old: dict, new: dict) -> dict:
    """What changed from ``old`` to ``new``: each program's status and amount, and the rules whose
    outcome changed (passed/failed/unknown), per program and member."""

    def keyed(det: dict) -> dict:
        return {(p["program"], tuple(p["members"])): p for p in det["programs"]}

    before, after = keyed(old), keyed(new)
    programs, rules = [], []
    for key in list(before) + [k for k in after if k not in before]:
        p0, p1 = before.get(key), after.get(key)
        p = p1 or p0
        s0, s1 = p0 and p0["status"], p1 and p1["status"]
        a0, a1 = p0 and p0.get("monthly_amount"), p1 and p1.get("monthly_amount")
        if s0 != s1 or a0 != a1:
            programs.append(
                {
                    "name": p["name"],
                    "who": _who(p),
                    "before": _STATUS[s0],
                    "after": _STATUS[s1],
                    "amount_before": a0 or "",
                    "amount_after": a1 or "",
                }
            )
        r0 = {r["rule"]: r for r in (p0 or {}).get("reasons", []) if r.get("rule")}
        r1 = {r["rule"]: r for r in (p1 or {}).get("reasons", []) if r.get("rule")}
        for rule in list(r0) + [r for r in r1 if r not in r0]:
            x, y = r0.get(rule), r1.get(rule)
            if (x and x.get("passed"), x is None) != (y and y.get("passed"), y is None):
                rules.append(
                    {
                        "program": p["name"],
                        "who": _who(p),
                        "rule": rule,
                        "before": _outcome(x),
                        "after": _outcome(y),
                        "text": (y or x)["text"],
                    }
                )
    return {
        "programs": programs,
        "rules": rules,
        "total_before": old.get("summary", {}).get("monthly_total", ""),
        "total_after": new.get("summary", {}).get("monthly_total", ""),
        "as_of_before": old["as_of"],
        "as_of_after": new["as_of"],
    }


def _outcome(r: dict | None) -> str:
    if r is None:
        return "（未检查）"
    return {True: "满足", False: "不满足", None: "待核实"}[r.get("passed")]


def install(app) -> None:
    """Registered from pages.install; a record out of reach is the same 404 page whatever the reason."""
    app.include_router(router)

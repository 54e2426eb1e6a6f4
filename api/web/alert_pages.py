"""预警 /alerts: the monitoring alerts inside the caller's locality scope, acknowledged or closed from a form.

The same repository and the same status rules as ``/v1/alerts`` (api.routes.monitoring); a form post
goes through ``checked_form`` (CSRF) and answers with a redirect back to the list it came from.
"""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse

from api.auth.keys import Permission
from api.monitoring.service import alert_out
from api.routes.monitoring import _repo as alert_repository
from engine.monitor.rules import load_monitoring
from engine.policies.localities import full_name

from .deps import checked_form, page_with
from .render import page

router = APIRouter(include_in_schema=False)

STATUS_ZH = {"open": "待处理", "acknowledged": "已确认", "closed": "已关闭"}
LEVEL_ZH = {"red": "红色", "orange": "橙色", "yellow": "黄色"}
# what a form post did, named by a code in the redirect (never text taken from the address)
DONE_ZH = {"acknowledge": "已确认该预警。", "close": "已关闭该预警。"}
PROBLEM_ZH = {
    "note": "关闭预警须写明处置说明。",
    "not_found": "未找到该预警（或不在您的管辖范围内）。",
    "closed": "该预警已关闭，不能再更改。",
}
PAGE_SIZE = 50
MAX_NOTE = 2000


def _rule_titles(request: Request) -> dict[str, str]:
    """Monitoring rule id -> title (the alert types), read once per app from the rule home it serves."""
    titles = getattr(request.app.state, "web_alert_types", None)
    if titles is None:
        book = load_monitoring(request.app.state.engine.book.dir / "monitoring")
        titles = request.app.state.web_alert_types = {r.id: r.title for r in book.rules}
    return titles


def _choice(value: str | None, allowed) -> str | None:
    return value if value in allowed else None


@router.get("/alerts", response_class=HTMLResponse)
async def alerts_page(request: Request, caller: page_with(Permission.READ_ALERTS)):
    q = request.query_params
    types = await run_in_threadpool(_rule_titles, request)
    status = _choice(q.get("status", "open"), STATUS_ZH)
    rule = _choice(q.get("type"), types)
    level = _choice(q.get("level"), LEVEL_ZH)
    before = (q.get("before") or "")[:64] or None
    rows = await run_in_threadpool(
        alert_repository(request).alerts, None, status, None, level, rule, PAGE_SIZE + 1, before, caller.scope.code
    )
    more = len(rows) > PAGE_SIZE
    alerts = [alert_out(r) for r in rows[:PAGE_SIZE]]
    for a in alerts:
        a["locality_name"] = full_name(a["locality"])
        a["status_zh"] = STATUS_ZH.get(a["status"], a["status"])
    filters = {"status": status or "", "type": rule or "", "level": level or ""}
    next_href = "/alerts?" + urlencode({**filters, "before": rows[PAGE_SIZE - 1].id}) if more else None
    return page(
        request,
        "policyweb/alerts.html",
        caller,
        title="预警",
        alerts=alerts,
        filters=filters,
        types=types,
        statuses=STATUS_ZH,
        levels=LEVEL_ZH,
        next_href=next_href,
        back="/alerts?" + urlencode(filters),
        may_manage=Permission.MANAGE_ALERTS in caller.permissions,
        done=DONE_ZH.get(q.get("done", "")),
        problem=PROBLEM_ZH.get(q.get("problem", "")),
    )


def _back(target: str | None) -> str:
    # only a path of this page: the form's return address is never an open redirect
    return target if target and target.startswith("/alerts") and not target.startswith("//") else "/alerts"


def _with(url: str, **extra) -> str:
    return url + ("&" if "?" in url else "?") + urlencode(extra)


@router.post("/alerts/{alert_id}/{action}")
async def alert_action(
    request: Request,
    caller: page_with(Permission.MANAGE_ALERTS),
    alert_id: str = Path(max_length=64),
    action: str = Path(pattern="^(acknowledge|close)$"),
):
    form = await checked_form(request)
    note = ((form.get("note") or [""])[0]).strip()[:MAX_NOTE]
    back = _back((form.get("back") or [None])[0])
    if action == "close" and not note:
        return RedirectResponse(_with(back, problem="note"), status_code=303)
    status = "acknowledged" if action == "acknowledge" else "closed"
    _row, problem = await run_in_threadpool(
        alert_repository(request).set_status,
        alert_id,
        status,
        note or None,
        f"{caller.name}（{caller.key_id}）",
        caller.scope.code,
    )
    if problem == "not_found":
        return RedirectResponse(_with(back, problem="not_found"), status_code=303)
    if problem == "closed":
        return RedirectResponse(_with(back, problem="closed"), status_code=303)
    return RedirectResponse(_with(back, done=action), status_code=303)

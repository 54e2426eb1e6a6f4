"""Rendering a page: one Jinja2 environment, the navigation, and what every template may use."""

from __future__ import annotations

from pathlib import Path

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from api.auth.keys import ROLE_LABELS, ROLE_PERMISSIONS, Caller, Permission

from .session import csrf_token

TEMPLATES = Jinja2Templates(directory=Path(__file__).with_name("templates"))
STATIC = Path(__file__).with_name("static")

# (path, label, permission that shows it): the workbench's menu, in the order a township window works.
NAV = (
    ("/evaluate", "新建评估", Permission.EVALUATE),
    ("/households", "家庭档案", Permission.READ_DETERMINATIONS),
    ("/alerts", "预警", Permission.READ_ALERTS),
    ("/policy", "政策", Permission.READ_REFERENCE),
    ("/simulations", "模拟", Permission.SIMULATE),
    ("/admin", "管理", Permission.MANAGE_KEYS),
)


def page(request: Request, template: str, caller: Caller | None, *, status: int = 200, **context) -> HTMLResponse:
    """The HTML of ``template`` with the menu the caller may see, their name and role, and the CSRF token."""
    allowed = ROLE_PERMISSIONS[caller.role] if caller else frozenset()
    context.update(
        caller=caller,
        role_label=ROLE_LABELS[caller.role] if caller else "",
        nav=[(path, label) for path, label, permission in NAV if permission in allowed],
        current=request.url.path,
        csrf_token=csrf_token(request),
    )
    return TEMPLATES.TemplateResponse(request, template, context, status_code=status)

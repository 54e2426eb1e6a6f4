"""The workbench's home page, and what the browser sees when it must sign in or may not open a page."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from api.auth.keys import Permission

from . import account_pages, case_pages, policy_group
from .deps import CsrfRefused, LoginRequired, PageForbidden, page_with
from .render import STATIC, page

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
async def home(request: Request, caller: page_with(Permission.READ_REFERENCE)):
    return page(request, "home.html", caller)


def install(app: FastAPI) -> None:
    """Mount the pages, their static files, and the handlers that answer a browser in HTML."""
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.include_router(router)
    account_pages.install(app)
    case_pages.install(app)
    app.include_router(policy_group.router)  # 预警、政策、模拟

    @app.exception_handler(LoginRequired)
    async def _login(_request: Request, exc: LoginRequired):
        return RedirectResponse(f"/login?next={exc.next_path}", status_code=303)

    @app.exception_handler(PageForbidden)
    async def _forbidden(request: Request, exc: PageForbidden):
        return page(request, "message.html", exc.caller, status=403, title="无权访问", message="您的角色不能打开此页面。如需此权限，请联系本单位管理员。")

    @app.exception_handler(CsrfRefused)
    async def _csrf(request: Request, _exc: CsrfRefused):
        return page(request, "message.html", None, status=403, title="表单已失效", message="表单缺少有效的安全校验（CSRF）令牌，未作任何处理。请返回上一页，刷新后重新提交。")

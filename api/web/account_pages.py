"""Signing in and out (/login, /logout) and the 管理 page (/admin): people's accounts and machines' keys.

The admin page calls the same store and repository functions as ``jiuzhu users`` / ``jiuzhu keys``
and the keys API, within the administrator's own locality scope.
"""

from __future__ import annotations

import datetime as dt
import hmac
import secrets
from urllib.parse import urlsplit

from fastapi import APIRouter, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse

from api.accounts import passwords
from api.accounts.store import AccountError
from api.auth.keys import ROLE_LABELS, Caller, Permission, Role, Scope
from api.web.session import COOKIE, accounts, clear_session_cookie, session_caller, set_session_cookie
from engine.policies.localities import LocalityError, full_name

from .deps import checked_form, page_with
from .render import page

router = APIRouter(include_in_schema=False)

# Login CSRF: the sign-in form carries a random value that must match a cookie only this site sets, so
# another site cannot sign a browser into an account of its choosing.
LOGIN_COOKIE = "jiuzhu_login"
_Admin = page_with(Permission.MANAGE_KEYS)
ROLE_CHOICES = [(role.value, ROLE_LABELS[role]) for role in Role]
BEIJING = dt.timezone(dt.timedelta(hours=8), "北京时间")


def _beijing(ts: dt.datetime | None) -> str:
    """A stored UTC time as the people at the window read it."""
    if ts is None:
        return ""
    return (ts if ts.tzinfo else ts.replace(tzinfo=dt.UTC)).astimezone(BEIJING).strftime("%Y-%m-%d %H:%M")


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path on this site, never another site (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in target):
        return "/"
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else "/"


def _client(request: Request) -> str:
    return request.client.host if request.client else "-"


def _login_page(request: Request, *, next_path: str, name: str = "", errors: dict | None = None, status: int = 200):
    token = secrets.token_urlsafe(24)
    response = page(
        request, "accounts/login.html", None, status=status, title="登录", next_path=next_path, name=name, errors=errors or {}, login_token=token
    )
    response.set_cookie(
        LOGIN_COOKIE, token, max_age=3600, path="/login", httponly=True, samesite="strict", secure=request.app.state.settings.secure_cookies
    )
    return response


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request, next: str = "/"):
    target = safe_next(next)
    if await session_caller(request) is not None:
        return RedirectResponse(target, status_code=303)
    return _login_page(request, next_path=target)


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request):
    form = await request.form()
    name = str(form.get("name") or "").strip()
    password = str(form.get("password") or "")
    target = safe_next(str(form.get("next") or "/"))
    sent, expected = str(form.get("login_token") or ""), request.cookies.get(LOGIN_COOKIE, "")
    if not expected or not hmac.compare_digest(sent, expected):
        return _login_page(
            request, next_path=target, name=name, status=403, errors={"form": "登录页面已过期，请重新输入用户名和密码。"}
        )
    errors = {}
    if not name:
        errors["name"] = "请输入用户名"
    if not password:
        errors["password"] = "请输入密码"
    if errors:
        return _login_page(request, next_path=target, name=name, errors=errors, status=400)
    store = accounts(request.app)
    result = await run_in_threadpool(store.sign_in, name, password, _client(request))
    if result.retry_after:
        minutes = max(1, -(-result.retry_after // 60))
        response = _login_page(
            request,
            next_path=target,
            name=name,
            status=429,
            errors={"password": f"登录失败次数过多，请 {minutes} 分钟后再试。"},
        )
        response.headers["Retry-After"] = str(result.retry_after)
        return response
    if result.user is None:
        return _login_page(request, next_path=target, name=name, status=401, errors={"password": "用户名或密码不正确"})
    old = request.cookies.get(COOKIE)
    if old:  # a fresh id at every sign-in: an id planted before signing in is worth nothing after
        await run_in_threadpool(store.close_session, old)
    token = await run_in_threadpool(store.open_session, result.user.id)
    response = RedirectResponse(target, status_code=303)
    set_session_cookie(request, response, token)
    response.delete_cookie(LOGIN_COOKIE, path="/login")
    return response


@router.post("/logout")
async def logout(request: Request):
    await checked_form(request)
    token = request.cookies.get(COOKIE)
    if token:
        await run_in_threadpool(accounts(request.app).close_session, token)
    response = RedirectResponse("/login", status_code=303)
    clear_session_cookie(request, response)
    return response


# -- 管理 -----------------------------------------------------------------------------------
_DONE = {
    "user_disabled": "账户已停用，其登录已立即失效。",
    "key_revoked": "密钥已撤销。",
}


async def _admin_page(request: Request, caller: Caller, *, status: int = 200, **context) -> HTMLResponse:
    users = await run_in_threadpool(accounts(request.app).list_users, caller.scope)
    keys = await run_in_threadpool(request.app.state.repo.list_keys, caller.scope)
    context.setdefault("user_form", {"locality": caller.scope.code, "role": "caseworker"})
    context.setdefault("key_form", {"locality": caller.scope.code, "role": "window"})
    return page(
        request,
        "accounts/admin.html",
        caller,
        status=status,
        title="管理",
        users=users,
        keys=keys,
        roles=ROLE_CHOICES,
        role_labels={r.value: label for r, label in ROLE_LABELS.items()},
        when=_beijing,
        place=full_name,
        **context,
    )


@router.get("/admin", response_class=HTMLResponse)
async def admin(request: Request, caller: _Admin, done: str = ""):
    return await _admin_page(request, caller, done=_DONE.get(done, ""))


def _scope_within(caller: Caller, code: str) -> Scope:
    """The scope asked for, if it lies within the administrator's own (one hands out no more than one has)."""
    try:
        scope = Scope.of(code.strip() or caller.scope.code)
    except LocalityError as e:
        raise AccountError("locality", e.zh, e.en) from None
    if not caller.scope.contains(scope):
        raise AccountError("locality", f"超出您的权限范围（{caller.scope.code} {caller.scope.label}）", "outside your scope")
    return scope


def _role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise AccountError("role", "请选择角色", "choose a role") from None


def _first(form: dict[str, list[str]], key: str) -> str:
    return (form.get(key) or [""])[0]


@router.post("/admin/users", response_class=HTMLResponse)
async def admin_create_user(request: Request, caller: _Admin):
    form = await checked_form(request)
    typed = {k: _first(form, k) for k in ("name", "role", "locality")}
    password = passwords.generate_password()
    try:
        user = await run_in_threadpool(
            accounts(request.app).create_user, typed["name"], _role(typed["role"]), _scope_within(caller, typed["locality"]), password
        )
    except AccountError as e:
        return await _admin_page(request, caller, status=422, user_form=typed, user_errors={e.field: e.zh})
    return await _admin_page(request, caller, created_user=user, created_password=password)


@router.post("/admin/users/{user_id}/disable")
async def admin_disable_user(request: Request, caller: _Admin, user_id: str):
    await checked_form(request)
    if user_id == caller.key_id:
        return await _admin_page(request, caller, status=422, problem="不能停用自己正在使用的账户。")
    user = await run_in_threadpool(accounts(request.app).disable_user, user_id[:32], caller.scope)
    if user is None:
        return await _admin_page(request, caller, status=404, problem="未找到该账户（或不在您的权限范围内）。")
    return RedirectResponse("/admin?done=user_disabled", status_code=303)


@router.post("/admin/keys", response_class=HTMLResponse)
async def admin_create_key(request: Request, caller: _Admin):
    form = await checked_form(request)
    typed = {k: _first(form, k) for k in ("name", "role", "locality")}
    try:
        name = typed["name"].strip()
        if not name or len(name) > 200:
            raise AccountError("name", "使用方名称不能为空且不超过200字", "the name must be 1-200 characters")
        role, scope = _role(typed["role"]), _scope_within(caller, typed["locality"])
    except AccountError as e:
        return await _admin_page(request, caller, status=422, key_form=typed, key_errors={e.field: e.zh})
    row, secret = await run_in_threadpool(request.app.state.repo.create_key, name, role, scope)
    return await _admin_page(request, caller, created_key=row, created_secret=secret)


@router.post("/admin/keys/{key_id}/revoke")
async def admin_revoke_key(request: Request, caller: _Admin, key_id: str):
    await checked_form(request)
    row = await run_in_threadpool(request.app.state.repo.revoke_key, key_id[:32], caller.scope)
    if row is None:
        return await _admin_page(request, caller, status=404, problem="未找到该密钥（或不在您的权限范围内）。")
    request.app.state.keys.clear()
    return RedirectResponse("/admin?done=key_revoked", status_code=303)


def install(app: FastAPI) -> None:
    app.include_router(router)

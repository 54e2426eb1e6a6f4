"""Domain errors and error bodies: every refusal is an RFC 9457 problem document whose ``errors``
member lists ``{"field", "message", ...}``, in Chinese and English."""

from __future__ import annotations

import logging

from sqlalchemy.exc import DataError, DBAPIError

log = logging.getLogger("jiuzhu.api")


PROBLEM_JSON = "application/problem+json"

# RFC 9457 titles: short, in Chinese, one per status (a problem's title must not vary with the instance).
_TITLES = {
    400: "请求无效",
    401: "未认证",
    403: "无权访问",
    404: "未找到",
    405: "不支持该请求方法",
    406: "不支持的响应格式",
    409: "请求冲突",
    413: "请求体过大",
    415: "不支持的内容类型",
    422: "输入有误",
    429: "请求过多",
    500: "服务内部错误",
    503: "服务暂不可用",
}


def problem(status: int, errors: list[dict]) -> dict:
    """An RFC 9457 problem document (``application/problem+json``) carrying today's ``errors`` list as
    an extension member, so clients that read ``errors`` go on working. ``type`` names the first
    error's code as a URN: stable, and it does not pretend to be a page one can open."""
    first = errors[0] if errors else {}
    detail = first.get("message", "")
    if len(errors) > 1:
        detail += f"（另有 {len(errors) - 1} 处错误，见 errors / {len(errors) - 1} more in errors）"
    return {
        "type": f"urn:jiuzhu:problem:{first.get('code', 'error')}",
        "title": _TITLES.get(status, "请求无法处理"),
        "status": status,
        "detail": detail,
        "errors": errors,
    }


def error_item(field: str, zh: str, en: str, code: str) -> dict:
    return {"field": field, "message": f"{field}: {zh} ({en})", "message_zh": zh, "message_en": en, "code": code}


class ApiError(Exception):
    """A refusal, raised anywhere below a route: its HTTP status and one error item. The routes turn it
    into the error body (api/routes/responses.py); nothing here knows HTTP beyond the status number."""

    def __init__(self, status: int, field: str, zh: str, en: str, code: str, headers: dict | None = None):
        super().__init__(f"{status} {field}: {en}")
        self.status, self.field, self.zh, self.en, self.code, self.headers = status, field, zh, en, code, headers

    def body(self) -> dict:
        return problem(self.status, [error_item(self.field, self.zh, self.en, self.code)])


class Unrecordable(Exception):
    """A request whose own data the database refused (a value it cannot hold), found when its group
    commit was retried one request at a time: that request is answered 422, the others are recorded."""

    def __init__(self, detail: str = ""):
        super().__init__(detail)
        self.detail = detail

    def api_error(self) -> ApiError:
        return ApiError(
            422,
            "(request)",
            "请求中有数据库无法保存的值（字符或数值超出范围），未记录",
            "the request holds a value the database cannot store (a character or number out of range): nothing recorded",
            "unrecordable",
        )


def is_bad_data(e: BaseException) -> bool:
    """Did storing a request fail because of a value in it (not because the database is unavailable)?
    PostgreSQL says so with a DataError (a NUL character, a number out of range); SQLite's driver raises
    before the statement runs (OverflowError, ValueError)."""
    if isinstance(e, DataError):
        return True
    return isinstance(e, ValueError | TypeError | ArithmeticError) and not isinstance(e, DBAPIError)


def not_found(field: str, zh: str, en: str) -> ApiError:
    return ApiError(404, field, zh, en, "not_found")

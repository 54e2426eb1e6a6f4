"""Domain errors and error bodies: every refusal is ``{"errors": [{"field", "message", ...}]}``, in Chinese and English."""

from __future__ import annotations

import logging

from sqlalchemy.exc import DataError, DBAPIError

log = logging.getLogger("jiuzhu.api")


def error_item(field: str, zh: str, en: str, code: str) -> dict:
    return {"field": field, "message": f"{field}: {zh} ({en})", "message_zh": zh, "message_en": en, "code": code}


class ApiError(Exception):
    """A refusal, raised anywhere below a route: its HTTP status and one error item. The routes turn it
    into the error body (api/routes/responses.py); nothing here knows HTTP beyond the status number."""

    def __init__(self, status: int, field: str, zh: str, en: str, code: str, headers: dict | None = None):
        super().__init__(f"{status} {field}: {en}")
        self.status, self.field, self.zh, self.en, self.code, self.headers = status, field, zh, en, code, headers

    def body(self) -> dict:
        return {"errors": [error_item(self.field, self.zh, self.en, self.code)]}


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

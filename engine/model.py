"""The household record of docs/contract.md, validated at the edge.

Every check that can refuse an input lives here, so that bad input is refused
whole, before any rule runs, with the field path and a message in Chinese
and English.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal

from gmpy2 import mpq
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from . import localities
from .masking import check_digit as id_check_digit
from .masking import mask_id_number  # noqa: F401  (re-exported)
from .money import MoneyError, fmt_money, parse_money
from .vocab import (
    AREAS,
    DISABILITY_CATEGORIES,
    EXPENSE_TYPES,
    INCOME_TYPES,
    MEMBER_STATUSES,
    PARENT_STATUSES,
    PROGRAM_CODES,
    RELATIONS,
    SCHOOLING,
    SELF_CARE,
    SEXES,
    SUPPORTERS,
)

ProgramCode = Literal[PROGRAM_CODES]
Area = Literal[AREAS]
Relation = Literal[RELATIONS]
Sex = Literal[SEXES]
DisabilityCategory = Literal[DISABILITY_CATEGORIES]
SelfCare = Literal[SELF_CARE]
Schooling = Literal[SCHOOLING]
MemberStatus = Literal[MEMBER_STATUSES]
Supporters = Literal[SUPPORTERS]
ParentStatus = Literal[PARENT_STATUSES]
IncomeType = Literal[INCOME_TYPES]
RigidExpenseType = Literal[EXPENSE_TYPES]

MAX_MEMBERS = 50


def _money(value: Any) -> mpq:
    if isinstance(value, type(mpq(0))):
        return value
    try:
        return parse_money(value)
    except MoneyError as e:
        raise PydanticCustomError("money", "{zh} / {en}", {"zh": e.zh, "en": e.en}) from None


Money = Annotated[Any, BeforeValidator(_money), PlainSerializer(fmt_money, return_type=str)]


def _locality(value: Any) -> str:
    try:
        localities.division(value)
    except localities.LocalityError as e:
        raise PydanticCustomError("locality", "{zh} / {en}", {"zh": e.zh, "en": e.en}) from None
    return value


LocalityCode = Annotated[str, BeforeValidator(_locality)]


def _date(value: Any) -> dt.date:
    # Only ISO calendar dates: "2021-08-01". Pydantic would also take timestamps.
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
        raise PydanticCustomError("date", "{zh} / {en}", {"zh": f"日期 {value} 不存在", "en": f"{value} is not a calendar date"})
    raise PydanticCustomError("date", "{zh} / {en}", {"zh": "日期格式应为 YYYY-MM-DD", "en": "date must be YYYY-MM-DD"})


Date = Annotated[dt.date, BeforeValidator(_date)]

class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


class Disability(_Strict):
    category: DisabilityCategory
    grade: int = Field(ge=1, le=4, strict=True)


class Income(_Strict):
    type: IncomeType
    monthly: Money


class Parent(_Strict):
    status: ParentStatus


class Vehicle(_Strict):
    exempt: bool = Field(strict=True)


class Assets(_Strict):
    financial: Money
    vehicles: list[Vehicle] = []
    properties: int = Field(ge=0, le=1000, strict=True)


class RigidExpense(_Strict):
    type: RigidExpenseType
    monthly: Money


class Event(BaseModel):
    """A dated fact (fire, illness, job loss...). Extra fields are kept for monitoring."""

    model_config = ConfigDict(extra="allow", frozen=True, arbitrary_types_allowed=True)
    type: str = Field(min_length=1, max_length=64)
    date: Date
    loss: Money | None = None
    # where the emergency happened (GB/T 2260), for localities that let 临时救助 be given there
    locality: LocalityCode | None = None


class Member(_Strict):
    id: str = Field(min_length=1, max_length=64)
    relation: Relation
    birth_date: Date
    sex: Sex | None = None
    id_number: str | None = None
    hukou_locality: LocalityCode | None = None
    residence_permit_locality: LocalityCode | None = None
    disability: Disability | None = None
    serious_illness: bool = Field(default=False, strict=True)
    self_care: SelfCare | None = None
    schooling: Schooling = "none"
    employed: bool = Field(default=False, strict=True)
    status: list[MemberStatus] = []
    supporters: Supporters | None = None
    parents: list[Parent] = Field(default=[], max_length=2)
    incomes: list[Income] = Field(default=[], max_length=50)
    tags: list[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,47}$")]] = Field(default=[], max_length=20)
    current_benefits: list[ProgramCode] | None = None

    @field_validator("id_number")
    @classmethod
    def _id_number_format(cls, v: str | None) -> str | None:
        if v is None:
            return v
        if not re.fullmatch(r"\d{17}[\dX]", v):
            raise PydanticCustomError(
                "id_number",
                "{zh} / {en}",
                {"zh": "身份证号码应为18位，前17位为数字，末位为数字或X", "en": "ID number must be 17 digits and a digit or X"},
            )
        if id_check_digit(v[:17]) != v[17]:
            raise PydanticCustomError(
                "id_number",
                "{zh} / {en}",
                {"zh": "身份证号码校验位错误", "en": "ID number check digit is wrong"},
            )
        try:
            dt.date(int(v[6:10]), int(v[10:12]), int(v[12:14]))
        except ValueError:
            raise PydanticCustomError(
                "id_number", "{zh} / {en}", {"zh": "身份证号码中的出生日期无效", "en": "ID number holds an invalid birth date"}
            ) from None
        return v

    @model_validator(mode="after")
    def _id_matches_birth(self) -> Member:
        if self.id_number is not None:
            born = dt.date(int(self.id_number[6:10]), int(self.id_number[10:12]), int(self.id_number[12:14]))
            if born != self.birth_date:
                raise _located(
                    ("id_number",),
                    "身份证号码中的出生日期与 birth_date 不一致",
                    "the birth date in the ID number differs from birth_date",
                )
        return self


class Household(_Strict):
    household_id: str = Field(min_length=1, max_length=128)
    locality: LocalityCode
    as_of: Date
    area: Area
    members: list[Member] = Field(min_length=1, max_length=MAX_MEMBERS)
    assets: Assets | None = None
    rigid_expenses: list[RigidExpense] = Field(default=[], max_length=50)
    current_benefits: list[ProgramCode] = []
    current_amounts: dict[ProgramCode, Money] = {}
    events: list[Event] = Field(default=[], max_length=200)

    @model_validator(mode="after")
    def _cross_checks(self) -> Household:
        seen: dict[str, int] = {}
        for i, m in enumerate(self.members):
            if m.id in seen:
                raise _located(
                    ("members", i, "id"),
                    f"成员编号 {m.id} 重复（与 members[{seen[m.id]}] 相同）",
                    f"duplicate member id {m.id!r} (same as members[{seen[m.id]}])",
                )
            seen[m.id] = i
            if m.birth_date > self.as_of:
                raise _located(
                    ("members", i, "birth_date"),
                    "出生日期晚于评估日期 as_of",
                    "birth_date is after as_of",
                )
        for i, e in enumerate(self.events):
            if e.date > self.as_of:
                raise _located(("events", i, "date"), "事件日期晚于评估日期 as_of", "event date is after as_of")
        return self


class _LocatedError(ValueError):
    def __init__(self, loc: tuple, zh: str, en: str):
        super().__init__(f"{zh} / {en}")
        self.loc = loc
        self.zh = zh
        self.en = en


def _located(loc: tuple, zh: str, en: str) -> _LocatedError:
    return _LocatedError(loc, zh, en)


# ---------------------------------------------------------------------------
# Errors


class FieldError(BaseModel):
    field: str
    message: str
    message_zh: str
    message_en: str
    code: str


class InputError(ValueError):
    """Bad input, refused whole. ``errors`` name each bad field."""

    def __init__(self, errors: list[FieldError]):
        self.errors = errors
        super().__init__("; ".join(e.message for e in errors))

    def to_dict(self) -> dict:
        return {"errors": [e.model_dump() for e in self.errors]}


_ZH = {
    "missing": ("缺少必填字段", "field required"),
    "extra_forbidden": ("不允许的字段（请检查拼写）", "unknown field (check the spelling)"),
    "literal_error": ("取值无效", "invalid value"),
    "string_type": ("应为文本", "must be a string"),
    "string_too_short": ("不能为空", "must not be empty"),
    "string_too_long": ("过长", "is too long"),
    "string_pattern_mismatch": ("格式无效", "has an invalid format"),
    "int_type": ("应为整数", "must be an integer"),
    "int_parsing": ("应为整数", "must be an integer"),
    "int_from_float": ("应为整数", "must be an integer"),
    "bool_type": ("应为 true 或 false", "must be true or false"),
    "bool_parsing": ("应为 true 或 false", "must be true or false"),
    "list_type": ("应为数组", "must be an array"),
    "dict_type": ("应为对象", "must be an object"),
    "model_type": ("应为对象", "must be an object"),
    "model_attributes_type": ("应为对象", "must be an object"),
    "too_short": ("数量过少", "has too few items"),
    "too_long": ("数量过多", "has too many items"),
    "greater_than_equal": ("数值过小", "is too small"),
    "less_than_equal": ("数值过大", "is too large"),
    "json_invalid": ("不是有效的 JSON", "is not valid JSON"),
    "json_type": ("不是有效的 JSON", "is not valid JSON"),
}


def _path(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(root)"


def _translate(err: dict) -> FieldError:
    loc = tuple(err.get("loc", ()))
    # pydantic appends the tagged-union / function names to loc in a few cases
    loc = tuple(p for p in loc if not (isinstance(p, str) and ("[" in p or p.startswith("function-"))))
    kind = err.get("type", "")
    ctx = err.get("ctx") or {}
    if "zh" in ctx and "en" in ctx:
        zh, en = ctx["zh"], ctx["en"]
    elif kind == "literal_error":
        expected = ctx.get("expected", "")
        zh, en = f"取值无效，可选值：{expected}", f"invalid value, expected {expected}"
    elif kind in ("too_short", "too_long"):
        zh = "数量过少" if kind == "too_short" else "数量过多"
        en = err.get("msg", kind)
    elif kind in _ZH:
        zh, en = _ZH[kind]
    else:
        zh, en = "取值无效", err.get("msg", kind)
    field = _path(loc)
    return FieldError(field=field, message=f"{field}: {zh} ({en})", message_zh=zh, message_en=en, code=kind)


def parse_household(data: Any) -> Household:
    """Validate a dict, a JSON text/bytes or a Household; raise InputError naming every bad field."""
    if isinstance(data, Household):
        return data
    try:
        if isinstance(data, str | bytes | bytearray):
            return Household.model_validate_json(data)
        if not isinstance(data, dict):
            raise InputError(
                [
                    FieldError(
                        field="(root)",
                        message="(root): 家庭记录应为 JSON 对象 (household must be a JSON object)",
                        message_zh="家庭记录应为 JSON 对象",
                        message_en="household must be a JSON object",
                        code="type",
                    )
                ]
            )
        return Household.model_validate(data)
    except ValidationError as e:
        errors = []
        for err in e.errors(include_url=False):
            exc = (err.get("ctx") or {}).get("error")
            if isinstance(exc, _LocatedError):
                field = _path(tuple(err.get("loc", ())) + exc.loc)
                errors.append(
                    FieldError(
                        field=field, message=f"{field}: {exc.zh} ({exc.en})", message_zh=exc.zh, message_en=exc.en, code="invalid"
                    )
                )
            else:
                errors.append(_translate(err))
        raise InputError(errors) from None

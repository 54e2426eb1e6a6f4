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
    AfterValidator,
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

from engine.policies import localities
from engine.schema.masking import check_digit as id_check_digit
from engine.schema.masking import mask_id_number  # noqa: F401  (re-exported)
from engine.schema.money import MoneyError, fmt_money, parse_money
from engine.schema.text import ID_EN, ID_ZH, TEXT_EN, TEXT_ZH, has_control, is_id
from engine.schema.vocab import (
    AREAS,
    DISABILITY_CATEGORIES,
    EXPENSE_TYPES,
    HOUSEHOLD_EVENT_LABELS,
    HOUSEHOLD_EVENT_TYPES,
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


def _ident(value: str) -> str:
    if not is_id(value):
        raise PydanticCustomError("string_pattern_mismatch", "{zh} / {en}", {"zh": ID_ZH, "en": ID_EN})
    return value


# household_id, member ids: engine.schema.text's character set (no "/", whitespace or control characters)
Ident = Annotated[str, AfterValidator(_ident)]


def _event_type(value: Any) -> str:
    if isinstance(value, str) and value in HOUSEHOLD_EVENT_TYPES:
        return value
    choices = "、".join(f"{t}（{HOUSEHOLD_EVENT_LABELS[t]}）" for t in HOUSEHOLD_EVENT_TYPES)
    raise PydanticCustomError(
        "literal_error",
        "{zh} / {en}",
        {"zh": f"未知的事件类型，可选值：{choices}", "en": f"unknown event type {value!r}, expected one of {list(HOUSEHOLD_EVENT_TYPES)}"},
    )


HouseholdEventType = Annotated[str, BeforeValidator(_event_type)]
MAX_EVENT_EXTRAS = 20  # fields kept on a household event besides type, date, loss and locality
MAX_TEXT = 500  # a free-text value (an event's note, an extra field of a household event)
MAX_INT = 2**53 - 1  # an integer kept as given: exact in JSON, in int64 and in a double alike

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
    type: HouseholdEventType
    date: Date
    loss: Money | None = None
    # where the emergency happened (GB/T 2260), for localities that let 临时救助 be given there
    locality: LocalityCode | None = None

    @model_validator(mode="after")
    def _bounded_extras(self) -> Event:
        extra = self.model_extra or {}
        if len(extra) > MAX_EVENT_EXTRAS:
            raise _located((), f"附加字段最多{MAX_EVENT_EXTRAS}个", f"at most {MAX_EVENT_EXTRAS} extra fields")
        for k, x in extra.items():
            if len(k) > 64 or has_control(k):
                raise _located((k,), "字段名过长或含控制字符", "field name is too long or holds control characters")
            if x is None or isinstance(x, bool):
                continue
            if isinstance(x, str):
                if len(x) > MAX_TEXT:
                    raise _located((k,), f"过长（最多{MAX_TEXT}个字符）", f"is too long (at most {MAX_TEXT} characters)")
                if has_control(x):
                    raise _located((k,), TEXT_ZH, TEXT_EN)
            elif isinstance(x, int):
                if not -MAX_INT <= x <= MAX_INT:
                    raise _located((k,), f"整数应在±{MAX_INT}之间", f"integer must be within ±{MAX_INT}")
            elif isinstance(x, float):
                if x != x or x in (float("inf"), float("-inf")):
                    raise _located((k,), "应为有限数字", "must be a finite number")
            else:
                raise _located((k,), "附加字段应为文本、数字、true/false 或 null", "an extra field must be text, a number, a boolean or null")
        return self


class Member(_Strict):
    id: Ident = Field(min_length=1, max_length=64)
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
    household_id: Ident = Field(min_length=1, max_length=128)
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

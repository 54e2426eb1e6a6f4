"""The household record of docs/contract.md as pydantic models, built from its declaration.

The models (``Household``, ``Member``, ``Event``...) are generated at import from
engine.schema.record: each declared field becomes a typed, bounded pydantic field, and the
declared cross-field checks run as model validators. They describe the record in the
OpenAPI schema and validate it where a model is wanted; engine.schema.validate is the fast
validator of the hot path, built from the same declaration. Every refusal names the field
path and says what is wrong in Chinese and English.
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
    WithJsonSchema,
    create_model,
    model_validator,
)
from pydantic_core import PydanticCustomError

from engine.policies import localities
from engine.schema import record as R
from engine.schema.masking import check_digit as id_check_digit  # noqa: F401  (re-exported)
from engine.schema.masking import mask_id_number  # noqa: F401  (re-exported)
from engine.schema.money import MAX_YUAN, MONEY_DIGITS, MoneyError, fmt_money, parse_money
from engine.schema.record import MAX_EVENT_EXTRAS, MAX_INT, MAX_MEMBERS, MAX_TEXT  # noqa: F401  (re-exported)
from engine.schema.text import ID_EN, ID_ZH, TEXT_EN, TEXT_ZH, has_control, is_id
from engine.schema.vocab import PROGRAM_CODES  # noqa: F401  (re-exported)


def _money(value: Any) -> mpq:
    if isinstance(value, type(mpq(0))):
        return value
    try:
        return parse_money(value)
    except MoneyError as e:
        raise PydanticCustomError("money", "{zh} / {en}", {"zh": e.zh, "en": e.en}) from None


# How money is written, for the OpenAPI schema (engine.schema.money is the check itself).
MONEY_JSON = [
    {"type": "string", "pattern": rf"^\d{{1,{MONEY_DIGITS}}}(\.\d{{1,2}})?$"},
    {"type": "number", "minimum": 0, "maximum": MAX_YUAN + 0.99, "multipleOf": 0.01},
]
_MONEY_DOC = {"description": f"金额（元），最多两位小数，不能为负，不超过 {MAX_YUAN}.99", "examples": ["1200.00"]}
Money = Annotated[
    Any,
    BeforeValidator(_money),
    PlainSerializer(fmt_money, return_type=str),
    WithJsonSchema({"anyOf": MONEY_JSON, **_MONEY_DOC}),
]
MoneyOrNone = Annotated[Money | None, WithJsonSchema({"anyOf": [*MONEY_JSON, {"type": "null"}]})]


def _locality(value: Any) -> str:
    try:
        localities.division(value)
    except localities.LocalityError as e:
        raise PydanticCustomError("locality", "{zh} / {en}", {"zh": e.zh, "en": e.en}) from None
    return value


LocalityCode = Annotated[
    str,
    BeforeValidator(_locality),
    WithJsonSchema({"type": "string", "pattern": r"^\d{6}$", "description": "6位行政区划代码"}),
]


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


def _labelled_enum(f: R.Field) -> Any:
    """An enum whose refusal lists the values with their Chinese names (events[].type)."""
    values, labels = f.values, f.labels or {}
    choices = "、".join(f"{t}（{labels[t]}）" for t in values)

    def check(value: Any) -> str:
        if isinstance(value, str) and value in values:
            return value
        raise PydanticCustomError(
            "literal_error",
            "{zh} / {en}",
            {"zh": f"未知的事件类型，可选值：{choices}", "en": f"unknown event type {value!r}, expected one of {list(values)}"},
        )

    return Annotated[str, BeforeValidator(check)]


def _id_number(v: str) -> str:
    problem = R.id_number_problem(v)
    if problem is not None:
        raise PydanticCustomError("id_number", "{zh} / {en}", {"zh": problem[0], "en": problem[1]})
    return v


IdNumber = Annotated[str, AfterValidator(_id_number)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True, arbitrary_types_allowed=True)


def _bounded_extras(self: BaseModel) -> BaseModel:
    """Extra fields of an event (kept for monitoring): a few scalars, bounded like every other field."""
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
            raise _located(
                (k,), "附加字段应为文本、数字、true/false 或 null", "an extra field must be text, a number, a boolean or null"
            )
    return self


# The cross-field checks of R.CHECKS, on the models.
def _member_checks(self: Any) -> Any:
    if self.id_number is not None:
        problem = R.id_number_matches_birth(self.id_number, self.birth_date)
        if problem is not None:
            raise _located((problem[0],), problem[1], problem[2])
    return self


def _household_checks(self: Any) -> Any:
    for _, (path, zh, en) in R.distinct_member_ids([m.id for m in self.members]):
        raise _located(_loc(path), zh, en)
    for i, m in enumerate(self.members):
        problem = R.born_by_as_of(i, m.birth_date, self.as_of)
        if problem is not None:
            raise _located(_loc(problem[0]), problem[1], problem[2])
    for j, e in enumerate(self.events):
        problem = R.event_by_as_of(j, e.date, self.as_of)
        if problem is not None:
            raise _located(_loc(problem[0]), problem[1], problem[2])
    return self


_RECORD_CHECKS = {"household": _household_checks, "member": _member_checks}
_LOC_PART = re.compile(r"([A-Za-z_]+)|\[(\d+)\]")


def _loc(path: str) -> tuple:
    """``members[1].birth_date`` -> ("members", 1, "birth_date")."""
    return tuple(name or int(index) for name, index in _LOC_PART.findall(path))


def _field(f: R.Field, models: dict[str, type[BaseModel]]) -> tuple[Any, Any]:
    """The annotation and default (a pydantic ``Field``) of a declared field."""
    k = f.kind
    bounds: dict[str, Any] = {}
    if k == R.IDENT:
        ann: Any = Ident
        bounds = {"min_length": f.lo, "max_length": f.hi}
    elif k == R.LOCALITY:
        ann = LocalityCode
    elif k == R.DATE_:
        ann = Date
    elif k == R.ENUM:
        ann = _labelled_enum(f) if f.labels else Literal[f.values]
    elif k == R.ENUM_LIST:
        ann = list[Literal[f.values]]
        bounds = {"max_length": f.hi}
    elif k == R.BOOL_:
        ann = bool
        bounds = {"strict": True}
    elif k == R.INT_:
        ann = int
        bounds = {"ge": f.lo, "le": f.hi, "strict": True}
    elif k == R.MONEY_:
        ann = Money
    elif k == R.ID_NUMBER:
        ann = IdNumber
    elif k == R.TAGS:
        ann = list[Annotated[str, Field(pattern=R.TAG_PATTERN)]]
        bounds = {"max_length": f.hi}
    elif k == R.RECORD:
        ann = models[f.record]
    elif k == R.RECORD_LIST:
        ann = list[models[f.record]]
        bounds = {"max_length": f.hi, **({"min_length": f.lo} if f.lo else {})}
    elif k == R.MONEY_MAP:
        ann = dict[Literal[f.values], Money]
    else:
        raise ValueError(f"no model type for {k}")
    if f.required:
        return ann, Field(**bounds)
    if f.nullable:
        return (MoneyOrNone if k == R.MONEY_ else ann | None), Field(default=None, **bounds)
    default = list(f.default) if isinstance(f.default, tuple) else f.default
    return ann, Field(default=default, **bounds)


def build_models(records: dict[str, R.Record] = R.RECORDS, root: str = R.ROOT) -> dict[str, type[BaseModel]]:
    """One pydantic model per declared record (nested records first), by record name."""
    models: dict[str, type[BaseModel]] = {}

    def build(name: str) -> type[BaseModel]:
        if name in models:
            return models[name]
        rec = records[name]
        for f in rec.fields:
            if f.kind in (R.RECORD, R.RECORD_LIST):
                build(f.record)
        validators = {}
        if rec.extras:
            validators["_bounded_extras"] = model_validator(mode="after")(_bounded_extras)
        if name in _RECORD_CHECKS:
            validators["_cross_checks"] = model_validator(mode="after")(_RECORD_CHECKS[name])
        models[name] = create_model(
            rec.model,
            __base__=_Open if rec.extras else _Strict,
            __doc__=rec.doc or None,
            __module__=__name__,
            __validators__=validators,
            **{f.name: _field(f, models) for f in rec.fields if f.input},
        )
        return models[name]

    build(root)
    return models


_MODELS = build_models()
Household = _MODELS["household"]
Member = _MODELS["member"]
Disability = _MODELS["disability"]
Income = _MODELS["income"]
Parent = _MODELS["parent"]
Assets = _MODELS["assets"]
Vehicle = _MODELS["vehicle"]
RigidExpense = _MODELS["expense"]
Event = _MODELS["event"]


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

"""Response shapes, for the OpenAPI document and for tests that check answers against it.

Routes on the hot path return pre-serialised JSON; these models describe that
JSON (docs/contract.md's determination plus the record fields) without re-validating it.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from engine.schema.text import TEXT_EN, TEXT_ZH, has_control


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class ErrorItem(BaseModel):
    field: str = Field(description="出错的字段，如 members[1].birth_date")
    message: str = Field(description="字段与中英文说明")
    message_zh: str
    message_en: str
    code: str


class ErrorBody(BaseModel):
    """An RFC 9457 problem document (``application/problem+json``); ``errors`` lists every field's error."""

    type: str = Field(description="问题类型（URN，按第一处错误的 code）", examples=["urn:jiuzhu:problem:missing"])
    title: str = Field(description="问题类别的简短说明（按状态码）")
    status: int = Field(description="HTTP 状态码")
    detail: str = Field(description="第一处错误的说明")
    errors: list[ErrorItem]


class Reason(_Open):
    rule: str
    kind: str | None = None
    passed: bool | None
    text: str = Field(description="中文说明")
    values: dict[str, Any]
    citation: str = Field(description="法规或地方文件出处")


class ProgramResult(_Open):
    program: str
    name: str
    scope: Literal["household", "member"]
    members: list[str]
    status: Literal["eligible", "ineligible", "gradual_exit", "needs_info"]
    monthly_amount: str | None = Field(description="每月金额（元，两位小数），不发放现金或无法计算时为 null")
    reasons: list[Reason]
    missing: list[str]


class HouseholdFacts(_Open):
    counted_members: list[str]
    monthly_income: str | None
    per_capita_income: str | None
    dibao_standard: str | None


class Determination(_Open):
    household_id: str
    locality: str
    locality_chain: list[str]
    as_of: str
    ruleset_version: str
    household: HouseholdFacts
    programs: list[ProgramResult]
    determination_id: str = Field(description="认定记录编号，可用于 GET /v1/determinations/{id}")
    recorded_at: str = Field(description="记录入库时间（UTC）")


class BatchAnswered(BaseModel):
    index: int
    status: Literal["answered"]
    determination_id: str
    determination: dict[str, Any]


class BatchRefused(BaseModel):
    index: int
    status: Literal["refused"]
    errors: list[ErrorItem]


class BatchResponse(BaseModel):
    batch_id: str
    recorded_at: str
    count: int
    answered: int
    refused: int
    results: list[BatchAnswered | BatchRefused]


class CallerOut(BaseModel):
    key_id: str
    name: str
    role: str


class DeterminationRecordOut(BaseModel):
    determination_id: str
    recorded_at: str
    household_id: str
    locality: str
    as_of: str
    ruleset_version: str
    caller: CallerOut
    batch_id: str | None
    input: dict[str, Any] = Field(description="提交的家庭记录（身份证号已脱敏）")
    determination: dict[str, Any]


class ProgramStatus(BaseModel):
    program: str
    members: list[str]
    status: str
    monthly_amount: str | None


class HistoryItem(BaseModel):
    determination_id: str
    recorded_at: str
    locality: str
    as_of: str
    ruleset_version: str
    caller: CallerOut
    batch_id: str | None
    programs: list[ProgramStatus]


class HistoryOut(BaseModel):
    household_id: str
    determinations: list[HistoryItem]
    next_before: str | None = Field(description="还有更早的记录时，作为下一页的 before 参数")


class LocalityRef(BaseModel):
    code: str
    name: str


class LocalitySummary(BaseModel):
    code: str
    name: str
    full_name: str
    level: str
    document: str
    chain: list[LocalityRef]


class LocalityDetail(BaseModel):
    code: str
    name: str
    full_name: str
    level: str
    ancestors: list[LocalityRef] = Field(description="本级及上级区划，由近及远")
    chain: list[LocalityRef] = Field(description="参数继承链：有政策文件的层级，由近及远")
    has_policy_file: bool


class ParameterOut(BaseModel):
    key: str
    label: str
    value: Any = Field(description="按标准单位的取值；金额为两位小数字符串；未配置为 null")
    display: str
    unit: str | None
    configured: bool
    level: str | None = Field(description="取值所在的政策层级（区划代码）")
    level_name: str | None
    effective_from: str | None
    source: str
    note: str | None
    project_default: bool
    formula: str | None
    original: str | None = Field(description="政策文件中的原始写法，如 6934 元/人/年")


class ParametersOut(BaseModel):
    locality: str
    name: str
    date: str
    chain: list[LocalityRef]
    parameters: list[ParameterOut]


class ProgramSummary(BaseModel):
    code: str
    name: str
    scope: str
    basis: str
    rules: int
    file: str


class RuleOut(BaseModel):
    id: str
    title: str
    kind: str
    scope: str
    gate: bool
    citation: str
    text_pass: str | None
    text_fail: str | None
    text: str | None
    project_default: bool
    file: str
    line: int


class DecisionOut(BaseModel):
    status: str
    text: str | None
    line: int


class ProgramRules(BaseModel):
    code: str
    name: str
    scope: str
    basis: str
    file: str
    rules: list[RuleOut]
    decision: list[DecisionOut]


class KeyOut(BaseModel):
    key_id: str
    name: str
    role: str
    prefix: str
    locality: str = Field(description="权限范围：行政区划代码，含其下辖地区；100000 为全国")
    created_at: str
    revoked_at: str | None


def _no_control(v: str) -> str:
    # the name is stored with every determination the key records (PostgreSQL cannot hold NUL)
    if has_control(v):
        raise ValueError(f"{TEXT_ZH} / {TEXT_EN}")
    return v


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, AfterValidator(_no_control)] = Field(min_length=1, max_length=200, examples=["城关镇窗口"])
    role: Literal["window", "caseworker", "policy", "admin"]
    locality: str | None = Field(
        default=None,
        max_length=6,
        description="权限范围（行政区划代码）：210102 只含和平区，210000 含辽宁全省，100000 为全国；缺省时与创建者相同",
        examples=["210102"],
    )


class KeyCreated(KeyOut):
    key: str = Field(description="密钥全文，只显示这一次")


class Health(BaseModel):
    status: str


class Ready(BaseModel):
    status: str
    checks: dict[str, str]
    ruleset_version: str | None = None
    worker: int | None = Field(default=None, description="应答的工作进程号")

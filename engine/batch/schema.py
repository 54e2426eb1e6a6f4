"""The population file layout: two tables (households, members) and an optional third (events).

Each column is mapped to the docs/contract.md field it fills. The column reference of
docs/batch.md is this table (``jiuzhu batch --columns`` prints it); a test keeps the two
in agreement.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.schema.vocab import (
    AREAS,
    DISABILITY_CATEGORIES,
    EXPENSE_TYPES,
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

HOUSEHOLDS, MEMBERS, EVENTS = "households", "members", "events"

CATEGORIES = DISABILITY_CATEGORIES
MEMBER_STATUS = MEMBER_STATUSES


@dataclass(frozen=True)
class Column:
    table: str
    name: str
    kind: str  # text | enum | locality | date | money | int | bool | list | id_number
    contract: str  # the docs/contract.md field
    zh: str  # what it holds, for docs/batch.md
    required: bool = False
    values: tuple[str, ...] = ()  # allowed values (enum, list elements)
    lo: int = 0
    hi: int = 0
    null: str = ""  # what an empty cell means


def _c(*a, **k) -> Column:
    return Column(*a, **k)


COLUMNS: tuple[Column, ...] = (
    # ---- households ----------------------------------------------------------------
    _c(HOUSEHOLDS, "household_id", "text", "household_id", "户编号，在文件中唯一", required=True),
    _c(HOUSEHOLDS, "locality", "locality", "locality", "申请地6位行政区划代码（GB/T 2260）", required=True),
    _c(HOUSEHOLDS, "as_of", "date", "as_of", "评估日期；给出 --as-of 时可省略（以 --as-of 为准）", null="使用 --as-of"),
    _c(HOUSEHOLDS, "area", "enum", "area", "城乡类别", required=True, values=AREAS),
    _c(
        HOUSEHOLDS,
        "assets_financial",
        "money",
        "assets.financial",
        "家庭金融资产（元）",
        null="与 assets_properties 同为空：未提供财产情况（needs_info）",
    ),
    _c(HOUSEHOLDS, "assets_properties", "int", "assets.properties", "住房套数", hi=1000, null="见 assets_financial"),
    _c(
        HOUSEHOLDS,
        "vehicles_nonexempt",
        "int",
        "assets.vehicles[] {exempt: false}",
        "非生活必需机动车辆数（每辆一条记录）",
        hi=50,
        null="0",
    ),
    _c(
        HOUSEHOLDS,
        "vehicles_exempt",
        "int",
        "assets.vehicles[] {exempt: true}",
        "经认定豁免的车辆数（如残疾人代步车）",
        hi=50,
        null="0",
    ),
    *(
        _c(HOUSEHOLDS, f"rigid_{t}", "money", f"rigid_expenses[] {{type: {t}}}", f"刚性支出（{t}）月额（元）", null="无此项支出")
        for t in EXPENSE_TYPES
    ),
    _c(
        HOUSEHOLDS,
        "current_benefits",
        "list",
        "current_benefits",
        "正在享受的项目代码，逗号分隔（或 Parquet 字符串列表）",
        values=PROGRAM_CODES,
        null="无",
    ),
    *(
        _c(
            HOUSEHOLDS,
            f"current_amount_{code}",
            "money",
            f"current_amounts.{code}",
            f"现领取的 {code} 月金额（元，渐退期按原金额发放）",
            null="未提供",
        )
        for code in PROGRAM_CODES
    ),
    # ---- members -------------------------------------------------------------------
    _c(MEMBERS, "household_id", "text", "(所属户)", "所属户编号；成员须按户排列，且户的顺序与 households 表一致", required=True),
    _c(MEMBERS, "member_id", "text", "members[].id", "成员编号，在户内唯一", required=True),
    _c(MEMBERS, "relation", "enum", "members[].relation", "与户主关系", required=True, values=RELATIONS),
    _c(MEMBERS, "birth_date", "date", "members[].birth_date", "出生日期，不晚于评估日期", required=True),
    _c(MEMBERS, "sex", "enum", "members[].sex", "性别", values=SEXES, null="未提供"),
    _c(
        MEMBERS,
        "id_number",
        "id_number",
        "members[].id_number",
        "18位身份证号（校验位与出生日期须一致；不写入结果）",
        null="未提供",
    ),
    _c(MEMBERS, "hukou_locality", "locality", "members[].hukou_locality", "户籍所在地代码", null="未提供（needs_info）"),
    _c(
        MEMBERS,
        "residence_permit_locality",
        "locality",
        "members[].residence_permit_locality",
        "居住证所在地代码",
        null="无居住证",
    ),
    _c(
        MEMBERS,
        "disability_category",
        "enum",
        "members[].disability.category",
        "残疾类别（与 disability_grade 同时给出）",
        values=CATEGORIES,
        null="无残疾",
    ),
    _c(MEMBERS, "disability_grade", "int", "members[].disability.grade", "残疾等级（1–4，一级最重）", lo=1, hi=4, null="无残疾"),
    _c(MEMBERS, "serious_illness", "bool", "members[].serious_illness", "是否患重病", null="false"),
    _c(MEMBERS, "self_care", "enum", "members[].self_care", "生活自理能力", values=SELF_CARE, null="未提供"),
    _c(MEMBERS, "schooling", "enum", "members[].schooling", "在学情况", values=SCHOOLING, null="none"),
    _c(MEMBERS, "employed", "bool", "members[].employed", "是否就业", null="false"),
    _c(MEMBERS, "status", "list", "members[].status", "不计入共同生活成员的情形，逗号分隔", values=MEMBER_STATUS, null="无"),
    _c(
        MEMBERS,
        "supporters",
        "enum",
        "members[].supporters",
        "法定赡养、抚养、扶养义务人情况",
        values=SUPPORTERS,
        null="未提供（needs_info）",
    ),
    _c(
        MEMBERS,
        "parent1_status",
        "enum",
        "members[].parents[0].status",
        "父/母一方情况（儿童）",
        values=PARENT_STATUSES,
        null="未提供",
    ),
    _c(
        MEMBERS,
        "parent2_status",
        "enum",
        "members[].parents[1].status",
        "父/母另一方情况（儿童）",
        values=PARENT_STATUSES,
        null="未提供",
    ),
    *(
        _c(
            MEMBERS,
            f"income_{t}",
            "money",
            f"members[].incomes[] {{type: {t}}}",
            f"月收入：{t}（元；同类多笔请合计）",
            null="无此项收入",
        )
        for t in INCOME_TYPES
    ),
    _c(MEMBERS, "tags", "list", "members[].tags", "其他标签，逗号分隔（小写字母、数字、下划线）", null="无"),
    _c(
        MEMBERS,
        "current_benefits",
        "list",
        "members[].current_benefits",
        "该成员本人正在享受的项目，逗号分隔",
        values=PROGRAM_CODES,
        null="沿用户的 current_benefits",
    ),
    # ---- events (optional third table) -------------------------------------------------
    _c(EVENTS, "household_id", "text", "(所属户)", "所属户编号", required=True),
    _c(EVENTS, "type", "enum", "events[].type", "事件类型", required=True, values=HOUSEHOLD_EVENT_TYPES),
    _c(EVENTS, "date", "date", "events[].date", "事件日期，不晚于评估日期", required=True),
    _c(EVENTS, "loss", "money", "events[].loss", "损失金额（元）", null="未提供（needs_info）"),
    _c(EVENTS, "locality", "locality", "events[].locality", "事件发生地代码（如异地遭遇急难）", null="未提供"),
)

BY_TABLE: dict[str, dict[str, Column]] = {}
for _col in COLUMNS:
    BY_TABLE.setdefault(_col.table, {})[_col.name] = _col


def markdown() -> str:
    """The column reference as a Markdown table (the one in docs/batch.md)."""
    lines = ["| table | column | type | contract field | meaning | empty means |", "|---|---|---|---|---|---|"]
    for c in COLUMNS:
        kind = c.kind
        if c.values and len(c.values) <= 12:
            kind += ": " + " / ".join(c.values)
        elif c.kind == "int" and c.hi:
            kind += f" {c.lo}–{c.hi}"
        req = "（必填）" if c.required else ""
        lines.append(f"| {c.table} | `{c.name}` | {kind} | `{c.contract}` | {c.zh}{req} | {c.null or '—'} |")
    return "\n".join(lines)

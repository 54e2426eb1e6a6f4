"""The household record of docs/contract.md, declared once.

``RECORDS`` is a table of fields: for each, its type (``kind``), bounds, vocabulary
(engine.schema.vocab), whether it is required and what its absence means, its Chinese and English
label, the facts the rules see (``facts``) and the batch columns that fill it (``columns``).
``CHECKS`` lists the checks that span fields. Everything else is derived from these two:

- the facts the rule checker knows (``fact_tables``; engine.schema.facts),
- the pydantic models and so the OpenAPI schema (engine.schema.model, api.app),
- the keys, vocabularies and bounds of the runtime validator (engine.schema.validate),
- the batch column layout (``column_spec``; engine.batch.schema),
- the field tables of docs/contract.md (a test keeps them equal).

A new field is one ``F(...)`` line here (and, if a rule should read it, a fact name).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.expr.types import BOOL, DATE, INT, MONEY, STR, T, enum, list_of, set_of
from engine.schema.masking import check_digit
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

# kinds of field
IDENT = "ident"  # engine.schema.text's identifier; lo..hi characters
LOCALITY = "locality"  # GB/T 2260 code known to engine.policies.localities
DATE_ = "date"  # "YYYY-MM-DD", a real calendar date
ENUM = "enum"  # one of ``values``
ENUM_LIST = "enum_list"  # a list of ``values``, at most hi items
BOOL_ = "bool"
INT_ = "int"  # an integer lo..hi (JSON booleans refused)
MONEY_ = "money"  # yuan, exact (engine.schema.money)
ID_NUMBER = "id_number"  # an 18-character resident ID number
TAGS = "tags"  # a list of lower-case names, at most hi items
RECORD = "record"  # one nested record (``record``)
RECORD_LIST = "records"  # a list of nested records, lo..hi items
MONEY_MAP = "money_map"  # an object: one of ``values`` -> money
POSITION = "position"  # not an input: the member's index in members (a fact only)

TAG_PATTERN = r"^[a-z][a-z0-9_]{0,47}$"

# What an omitted field means when it has no default (``absent``)
UNKNOWN = "unknown"  # a fact not known: a decision that needs it says needs_info
NONE = "none"  # nothing (no disability, no residence permit...)
INHERIT = "inherit"  # members[].current_benefits: the household's list


@dataclass(frozen=True)
class Fact:
    """A fact the rules see, filled from a field. ``type`` None: derived from the field."""

    name: str
    type: T | None = None


@dataclass(frozen=True)
class Column:
    """A batch column that fills a field (docs/batch.md). ``kind``/``values``/``hi``: from the field unless given."""

    table: str
    name: str
    zh: str
    contract: str = ""  # the docs/contract.md field it fills; default: the field's path
    kind: str = ""
    required: bool = False
    values: tuple[str, ...] | None = None
    lo: int | None = None
    hi: int | None = None
    null: str = ""


@dataclass(frozen=True)
class Field:
    name: str
    kind: str
    zh: str
    en: str
    required: bool = False
    default: Any = None  # the value when omitted (lists: ())
    absent: str = ""  # when omitted without a default: UNKNOWN, NONE or INHERIT
    values: tuple[str, ...] = ()
    labels: Mapping[str, str] | None = None  # Chinese names of ``values`` shown in a refusal
    lo: int = 0  # int: smallest value; text: shortest; list: fewest items
    hi: int = 0  # int: largest value; text: longest; list: most items
    record: str = ""  # RECORD / RECORD_LIST: the record's name in RECORDS
    facts: tuple[Fact, ...] = ()
    columns: tuple[Column, ...] = ()

    @property
    def input(self) -> bool:
        return self.kind != POSITION

    @property
    def nullable(self) -> bool:
        """``null`` is taken for "not given" where omitting the field has no default."""
        return not self.required and self.absent in (UNKNOWN, NONE, INHERIT)


@dataclass(frozen=True)
class Record:
    name: str  # the rule language's record name ("income") and the key in RECORDS
    model: str  # the pydantic model's (and OpenAPI schema's) name
    fields: tuple[Field, ...]
    extras: bool = False  # other keys kept (events), bounded by EXTRAS
    doc: str = ""

    def get(self, name: str) -> Field:
        return next(f for f in self.fields if f.name == name)


# Events keep up to this many other fields (a monitoring system's notes): text up to MAX_TEXT
# characters, an integer within ±MAX_INT, a finite number, a boolean or null.
MAX_EVENT_EXTRAS = 20
MAX_TEXT = 500
MAX_INT = 2**53 - 1  # exact in JSON, in int64 and in a double alike
MAX_MEMBERS = 50

H, M, E = "households", "members", "events"  # batch tables


def F(name: str, kind: str, zh: str, en: str, *facts: str | Fact, **k: Any) -> Field:
    return Field(name, kind, zh, en, facts=tuple(f if isinstance(f, Fact) else Fact(f) for f in facts), **k)


# A table: one field to a line or two reads better than the formatter's layout.
# fmt: off
RECORDS: dict[str, Record] = {
    r.name: r
    for r in (
        Record("household", "Household", (
            F("household_id", IDENT, "户编号", "household number", "household_id", required=True, lo=1, hi=128,
              columns=(Column(H, "household_id", "户编号，在文件中唯一", kind="text", required=True),)),
            F("locality", LOCALITY, "申请地", "where the household applies", "locality", required=True,
              columns=(Column(H, "locality", "申请地6位行政区划代码（GB/T 2260）", required=True),)),
            F("as_of", DATE_, "评估日期", "assessment date", "as_of", required=True,
              columns=(Column(H, "as_of", "评估日期；给出 --as-of 时可省略（以 --as-of 为准）", null="使用 --as-of"),)),
            F("area", ENUM, "城乡类别", "urban or rural", "area", required=True, values=AREAS,
              columns=(Column(H, "area", "城乡类别", required=True),)),
            F("members", RECORD_LIST, "家庭成员", "members", "members", required=True, record="member", lo=1, hi=MAX_MEMBERS,
              columns=(Column(M, "household_id", "所属户编号；成员须按户排列，且户的顺序与 households 表一致",
                              contract="(所属户)", kind="text", required=True),)),
            F("assets", RECORD, "家庭财产情况（存款等金融资产、车辆、住房）", "the household's property", absent=UNKNOWN,
              record="assets",
              columns=(
                  Column(H, "assets_financial", "家庭金融资产（元）", contract="assets.financial", kind="money",
                         null="与 assets_properties 同为空：未提供财产情况（needs_info）"),
                  Column(H, "assets_properties", "住房套数", contract="assets.properties", kind="int", hi=1000,
                         null="见 assets_financial"),
                  Column(H, "vehicles_nonexempt", "非生活必需机动车辆数（每辆一条记录）",
                         contract="assets.vehicles[] {exempt: false}", kind="int", hi=50, null="0"),
                  Column(H, "vehicles_exempt", "经认定豁免的车辆数（如残疾人代步车）",
                         contract="assets.vehicles[] {exempt: true}", kind="int", hi=50, null="0"),
              )),
            F("rigid_expenses", RECORD_LIST, "刚性支出", "necessary expenses", "rigid_expenses", default=(),
              record="expense", hi=50,
              columns=tuple(Column(H, f"rigid_{t}", f"刚性支出（{t}）月额（元）", contract=f"rigid_expenses[] {{type: {t}}}",
                                   kind="money", values=(), null="无此项支出") for t in EXPENSE_TYPES)),
            F("current_benefits", ENUM_LIST, "现享受的救助", "benefits received now", "current_benefits", default=(),
              values=PROGRAM_CODES, hi=20,
              columns=(Column(H, "current_benefits", "正在享受的项目代码，逗号分隔（或 Parquet 字符串列表）", kind="list",
                              null="无"),)),
            F("current_amounts", MONEY_MAP, "现领取金额", "amounts received now", "current_amounts", default={},
              values=PROGRAM_CODES,
              columns=tuple(Column(H, f"current_amount_{c}", f"现领取的 {c} 月金额（元，渐退期按原金额发放）",
                                   contract=f"current_amounts.{c}", kind="money", values=(), null="未提供")
                            for c in PROGRAM_CODES)),
            F("events", RECORD_LIST, "事件", "events", "events", default=(), record="event", hi=200,
              columns=(Column(E, "household_id", "所属户编号", contract="(所属户)", kind="text", required=True),)),
        )),
        Record("member", "Member", (
            F("id", IDENT, "成员编号", "member id", "id", required=True, lo=1, hi=64,
              columns=(Column(M, "member_id", "成员编号，在户内唯一", kind="text", required=True),)),
            F("index", POSITION, "成员序号", "position in members", "index"),
            F("relation", ENUM, "与户主关系", "relation to the head", "relation", required=True, values=RELATIONS,
              columns=(Column(M, "relation", "与户主关系", required=True),)),
            F("birth_date", DATE_, "出生日期", "birth date", "birth_date", required=True,
              columns=(Column(M, "birth_date", "出生日期，不晚于评估日期", required=True),)),
            F("sex", ENUM, "性别", "sex", "sex", absent=UNKNOWN, values=SEXES,
              columns=(Column(M, "sex", "性别", null="未提供"),)),
            F("id_number", ID_NUMBER, "身份证号码", "resident ID number", absent=NONE,
              columns=(Column(M, "id_number", "18位身份证号（校验位与出生日期须一致；不写入结果）", null="未提供"),)),
            F("hukou_locality", LOCALITY, "户籍所在地", "household registration", "hukou_locality", absent=UNKNOWN,
              columns=(Column(M, "hukou_locality", "户籍所在地代码", null="未提供（needs_info）"),)),
            F("residence_permit_locality", LOCALITY, "居住证所在地", "residence permit", "residence_permit_locality",
              absent=NONE, columns=(Column(M, "residence_permit_locality", "居住证所在地代码", null="无居住证"),)),
            F("disability", RECORD, "残疾人证", "disability certificate", Fact("has_disability", BOOL), absent=NONE,
              record="disability"),
            F("serious_illness", BOOL_, "是否患重病", "serious illness", "serious_illness", default=False,
              columns=(Column(M, "serious_illness", "是否患重病", null="false"),)),
            F("self_care", ENUM, "生活自理能力", "self-care", "self_care", absent=UNKNOWN, values=SELF_CARE,
              columns=(Column(M, "self_care", "生活自理能力", null="未提供"),)),
            F("schooling", ENUM, "在学情况", "schooling", "schooling", default="none", values=SCHOOLING,
              columns=(Column(M, "schooling", "在学情况", null="none"),)),
            F("employed", BOOL_, "是否就业", "employed", "employed", default=False,
              columns=(Column(M, "employed", "是否就业", null="false"),)),
            F("status", ENUM_LIST, "不计入共同生活成员的情形", "situations out of the household", "status", default=(),
              values=MEMBER_STATUSES, hi=5,
              columns=(Column(M, "status", "不计入共同生活成员的情形，逗号分隔", kind="list", null="无"),)),
            F("supporters", ENUM, "法定赡养、抚养、扶养义务人情况", "legal supporters", "supporters", absent=UNKNOWN,
              values=SUPPORTERS,
              columns=(Column(M, "supporters", "法定赡养、抚养、扶养义务人情况", null="未提供（needs_info）"),)),
            F("parents", RECORD_LIST, "父母情况", "parents", "parents", default=(), record="parent", hi=2,
              columns=(
                  Column(M, "parent1_status", "父/母一方情况（儿童）", contract="members[].parents[0].status", kind="enum",
                         values=PARENT_STATUSES, null="未提供"),
                  Column(M, "parent2_status", "父/母另一方情况（儿童）", contract="members[].parents[1].status", kind="enum",
                         values=PARENT_STATUSES, null="未提供"),
              )),
            F("incomes", RECORD_LIST, "月收入", "monthly incomes", "incomes", default=(), record="income", hi=50,
              columns=tuple(Column(M, f"income_{t}", f"月收入：{t}（元；同类多笔请合计）",
                                   contract=f"members[].incomes[] {{type: {t}}}", kind="money", values=(), null="无此项收入")
                            for t in INCOME_TYPES)),
            F("tags", TAGS, "标签", "tags", "tags", default=(), hi=20,
              columns=(Column(M, "tags", "其他标签，逗号分隔（小写字母、数字、下划线）", kind="list", null="无"),)),
            F("current_benefits", ENUM_LIST, "本人现享受的救助", "benefits this member receives now", "benefits",
              absent=INHERIT, values=PROGRAM_CODES, hi=20,
              columns=(Column(M, "current_benefits", "该成员本人正在享受的项目，逗号分隔", kind="list",
                              null="沿用户的 current_benefits"),)),
        )),
        Record("disability", "Disability", (
            F("category", ENUM, "残疾类别", "disability category", "disability_category", required=True,
              values=DISABILITY_CATEGORIES,
              columns=(Column(M, "disability_category", "残疾类别（与 disability_grade 同时给出）", null="无残疾"),)),
            F("grade", INT_, "残疾等级", "disability grade", "disability_grade", required=True, lo=1, hi=4,
              columns=(Column(M, "disability_grade", "残疾等级（1–4，一级最重）", null="无残疾"),)),
        )),
        Record("income", "Income", (
            F("type", ENUM, "收入类型", "income type", "type", required=True, values=INCOME_TYPES),
            F("monthly", MONEY_, "月收入", "monthly amount", "monthly", required=True),
        )),
        Record("parent", "Parent", (
            F("status", ENUM, "父/母情况", "parent's situation", "status", required=True, values=PARENT_STATUSES),
        )),
        Record("assets", "Assets", (
            F("financial", MONEY_, "金融资产", "financial assets", "assets.financial", required=True),
            F("vehicles", RECORD_LIST, "机动车辆", "motor vehicles", "assets.vehicles", default=(), record="vehicle", hi=50),
            F("properties", INT_, "住房套数", "homes owned", "assets.properties", required=True, lo=0, hi=1000),
        )),
        Record("vehicle", "Vehicle", (
            F("exempt", BOOL_, "豁免", "exempt", "exempt", required=True),
        )),
        Record("expense", "RigidExpense", (
            F("type", ENUM, "支出类型", "expense type", "type", required=True, values=EXPENSE_TYPES),
            F("monthly", MONEY_, "月支出", "monthly amount", "monthly", required=True),
        )),
        Record("event", "Event", (
            # STR, not the event vocabulary: rules compare it with the policy's event_types list
            F("type", ENUM, "事件类型", "event type", Fact("type", STR), required=True, values=HOUSEHOLD_EVENT_TYPES,
              labels=HOUSEHOLD_EVENT_LABELS, columns=(Column(E, "type", "事件类型", required=True),)),
            F("date", DATE_, "事件日期", "event date", "date", required=True,
              columns=(Column(E, "date", "事件日期，不晚于评估日期", required=True),)),
            F("loss", MONEY_, "损失金额", "loss", "loss", absent=UNKNOWN,
              columns=(Column(E, "loss", "损失金额（元）", null="未提供（needs_info）"),)),
            F("locality", LOCALITY, "事件发生地", "where it happened", "locality", absent=NONE,
              columns=(Column(E, "locality", "事件发生地代码（如异地遭遇急难）", null="未提供"),)),
        ), extras=True, doc="A dated fact (fire, illness, job loss...). Extra fields are kept for monitoring."),
    )
}
# fmt: on
ROOT = "household"


# ---------------------------------------------------------------------------
# Cross-field checks: each names the field it refuses (relative to the record it is given) and
# says why in Chinese and English. The model (engine.schema.model) and the validator (engine.schema.validate)
# both call these.

Problem = tuple[str, str, str]  # (path, zh, en)


def duplicate_member_id(i: int, mid: str, first: int) -> Problem:
    return (
        f"members[{i}].id",
        f"成员编号 {mid} 重复（与 members[{first}] 相同）",
        f"duplicate member id {mid!r} (same as members[{first}])",
    )


def distinct_member_ids(ids: list[str]) -> Iterator[tuple[int, Problem]]:
    """members[i].id: each member id once in a household."""
    seen: dict[str, int] = {}
    for i, mid in enumerate(ids):
        if mid in seen:
            yield i, duplicate_member_id(i, mid, seen[mid])
        else:
            seen[mid] = i


def born_by_as_of(i: int, birth: dt.date, as_of: dt.date) -> Problem | None:
    """members[i].birth_date is not after as_of."""
    if birth > as_of:
        return f"members[{i}].birth_date", "出生日期晚于评估日期 as_of", "birth_date is after as_of"
    return None


def event_by_as_of(j: int, date: dt.date, as_of: dt.date) -> Problem | None:
    """events[j].date is not after as_of."""
    if date > as_of:
        return f"events[{j}].date", "事件日期晚于评估日期 as_of", "event date is after as_of"
    return None


_ID_NUMBER = re.compile(r"^\d{17}[\dX]$")


def id_number_problem(v: Any) -> tuple[str, str] | None:
    """members[i].id_number alone: 17 digits and a digit or X, its GB 11643 check character, a real birth date."""
    if type(v) is not str or not _ID_NUMBER.match(v):
        return "身份证号码应为18位，前17位为数字，末位为数字或X", "ID number must be 17 digits and a digit or X"
    if check_digit(v[:17]) != v[17]:
        return "身份证号码校验位错误", "ID number check digit is wrong"
    try:
        id_number_birth_date(v)
    except ValueError:
        return "身份证号码中的出生日期无效", "ID number holds an invalid birth date"
    return None


def id_number_birth_date(id_number: str) -> dt.date:
    return dt.date(int(id_number[6:10]), int(id_number[10:12]), int(id_number[12:14]))


def id_number_matches_birth(id_number: str, birth: dt.date) -> Problem | None:
    """members[i].id_number: the birth date inside it is birth_date."""
    if id_number_birth_date(id_number) != birth:
        return (
            "id_number",
            "身份证号码中的出生日期与 birth_date 不一致",
            "the birth date in the ID number differs from birth_date",
        )
    return None


@dataclass(frozen=True)
class Check:
    name: str
    fields: tuple[str, ...]  # the fields it reads; it refuses the first
    fn: Any = field(compare=False)


CHECKS: tuple[Check, ...] = (
    Check("distinct_member_ids", ("members[].id",), distinct_member_ids),
    Check("born_by_as_of", ("members[].birth_date", "as_of"), born_by_as_of),
    Check("event_by_as_of", ("events[].date", "as_of"), event_by_as_of),
    Check("id_number_problem", ("members[].id_number",), id_number_problem),
    Check("id_number_matches_birth", ("members[].id_number", "members[].birth_date"), id_number_matches_birth),
)


# ---------------------------------------------------------------------------
# Derived: the facts the rules see


def _fact_type(f: Field, optional: bool) -> T:
    k = f.kind
    if k in (IDENT,):
        return STR
    if k == LOCALITY:
        return T("str", optional=True) if optional else STR
    if k == DATE_:
        return DATE
    if k == MONEY_:
        return MONEY
    if k == BOOL_:
        return BOOL
    if k in (INT_, POSITION):
        return T("int", optional=True) if optional else INT
    if k == ENUM:
        return T("str", frozenset(f.values), optional=True) if optional else enum(*f.values)
    if k == ENUM_LIST:
        return set_of(*f.values)
    if k == TAGS:
        return T("set")
    if k == RECORD_LIST:
        return list_of(f.record)
    if k == MONEY_MAP:
        return MONEY
    raise ValueError(f"no fact type for {f.kind}")


def record_facts(name: str, records: Mapping[str, Record] = RECORDS, optional: bool = False) -> dict[str, T]:
    """Facts of one record: its fields' facts, and those of a nested single record in its place."""
    out: dict[str, T] = {}
    for f in records[name].fields:
        for fact in f.facts:
            if f.kind == MONEY_MAP:
                for key in f.values:
                    out[f"{fact.name}.{key}"] = fact.type or MONEY
            else:
                out[fact.name] = fact.type or _fact_type(f, optional or f.absent == NONE)
        if f.kind == RECORD:
            out.update(record_facts(f.record, records, optional or f.absent == NONE))
    return out


def list_records(records: Mapping[str, Record] = RECORDS, root: str = ROOT) -> list[str]:
    """Records that come in lists (members, incomes...), in the order they are met."""
    out: list[str] = []

    def walk(name: str) -> None:
        for f in records[name].fields:
            if f.kind == RECORD_LIST and f.record not in out:
                out.append(f.record)
            if f.kind in (RECORD, RECORD_LIST):
                walk(f.record)

    walk(root)
    return out


def fact_tables(
    records: Mapping[str, Record] = RECORDS, root: str = ROOT
) -> tuple[dict[str, T], dict[str, T], dict[str, dict[str, T]]]:
    """(household facts, member facts, the list records' facts but the member's), as engine.schema.facts names them."""
    lists = list_records(records, root)
    return (
        record_facts(root, records),
        record_facts("member", records),
        {r: record_facts(r, records) for r in lists if r != "member"},
    )


def missing_labels(record: str, records: Mapping[str, Record] = RECORDS) -> dict[str, str]:
    """Chinese labels of the fields whose absence the rules see as unknown ("缺少成员p2的性别")."""
    return {f.name: f.zh for f in records[record].fields if f.absent == UNKNOWN}


# ---------------------------------------------------------------------------
# Derived: the batch column layout

_COLUMN_KIND = {
    IDENT: "text",
    LOCALITY: "locality",
    DATE_: "date",
    ENUM: "enum",
    ENUM_LIST: "list",
    BOOL_: "bool",
    INT_: "int",
    MONEY_: "money",
    ID_NUMBER: "id_number",
    TAGS: "list",
}
TABLES = (H, M, E)
_BOUNDED = (INT_, IDENT)  # a column's lo..hi: an integer's range, an identifier's length


@dataclass(frozen=True)
class ColumnSpec:
    """One batch column, complete (what engine.batch.schema.Column holds)."""

    table: str
    name: str
    kind: str
    contract: str
    zh: str
    required: bool
    values: tuple[str, ...]
    lo: int
    hi: int
    null: str


def column_spec(records: Mapping[str, Record] = RECORDS, root: str = ROOT) -> tuple[ColumnSpec, ...]:
    """Every batch column, households first, then members and events, each in the order of its fields."""
    out: list[ColumnSpec] = []

    def walk(name: str, path: str) -> None:
        for f in records[name].fields:
            here = f"{path}.{f.name}" if path else f.name
            for c in f.columns:
                out.append(
                    ColumnSpec(
                        c.table,
                        c.name,
                        c.kind or _COLUMN_KIND[f.kind],
                        c.contract or here,
                        c.zh,
                        c.required,
                        f.values if c.values is None else c.values,
                        (f.lo if f.kind in _BOUNDED else 0) if c.lo is None else c.lo,
                        (f.hi if f.kind in _BOUNDED else 0) if c.hi is None else c.hi,
                        c.null,
                    )
                )
            if f.kind == RECORD:
                walk(f.record, here)
            elif f.kind == RECORD_LIST:
                walk(f.record, here + "[]")

    walk(root, "")
    return tuple(sorted(out, key=lambda c: TABLES.index(c.table)))


def input_fields(record: str, records: Mapping[str, Record] = RECORDS) -> tuple[Field, ...]:
    return tuple(f for f in records[record].fields if f.input)

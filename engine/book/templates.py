"""Explanation sentences: ``家庭人均收入{per_capita_income}元低于低保标准{standard}元``.

A template is split once, at load, into literal text and named slots; each
slot is an expression name checked like any other, so a misspelt slot is a
load error, not a blank in a caseworker's printout.
"""

from __future__ import annotations

import re
from typing import Any

from gmpy2 import mpq

from engine.expr.runtime import Missing
from engine.expr.types import T
from engine.schema.money import fmt_money, fmt_number

_SLOT = re.compile(r"\{([^{}]*)\}")

LABELS: dict[str, str] = {
    # areas
    "urban": "城市",
    "rural": "农村",
    # member status
    "incarcerated": "服刑",
    "compulsory_rehab": "强制隔离戒毒",
    "religious_apart_3y": "宗教教职人员且连续三年以上脱离家庭独立生活",
    "declared_missing": "宣告失踪",
    "deceased": "已死亡",
    "declared_dead": "宣告死亡",
    # parents
    "severe_disability": "重度残疾",
    "serious_illness": "重病",
    "restricted": "被限制人身自由",
    "unreachable": "失联",
    "normal": "正常",
    # supporters
    "able": "有赡养（抚养、扶养）能力",
    "unable": "无赡养（抚养、扶养）能力",
    # disability categories
    "visual": "视力残疾",
    "hearing": "听力残疾",
    "speech": "言语残疾",
    "limb": "肢体残疾",
    "intellectual": "智力残疾",
    "mental": "精神残疾",
    "multiple": "多重残疾",
    # self care
    "full": "全自理",
    "partial": "半失能",
    # schooling
    "preschool": "学前教育",
    "compulsory": "义务教育",
    "high_school": "普通高中",
    "vocational": "中等职业或大中专",
    "college": "大学",
    "graduate": "研究生",
    # incomes
    "wage": "工资性收入",
    "business": "经营净收入",
    "property": "财产净收入",
    "transfer": "转移净收入",
    "pension": "养老金",
    "other": "其他收入",
    "special_care": "优待抚恤金",
    "family_planning_award": "计划生育奖励与扶助金",
    "scholarship": "奖学金、助学金",
    "heroism_award": "见义勇为奖励",
    "social_assistance": "社会救助款物",
    "resident_pension_base": "城乡居民基本养老保险基础养老金",
    # rigid expenses
    "medical": "医疗费用",
    "rehabilitation": "康复费用",
    "care": "照护费用",
    "education": "教育费用",
    "housing": "住房费用",
    # programs
    "dibao": "最低生活保障",
    "dibao_single": "低保单人户",
    "tekun": "特困人员救助供养",
    "dibao_edge": "低保边缘家庭",
    "temporary": "临时救助",
    "orphan": "孤儿基本生活保障",
    "unattended_child": "事实无人抚养儿童基本生活保障",
    "orphan_education": "孤儿助学",
    "disability_living": "困难残疾人生活补贴",
    "disability_care": "重度残疾人护理补贴",
    "elderly_subsidy": "经济困难的高龄、失能老年人补贴",
    "home_care_service": "居家养老服务（“7+1”类）",
    "rigid_expense": "支出型困难家庭",
    "funeral_waiver": "基本殡葬服务费用减免",
    # 临时救助: type, approval level, emergency events
    "emergency": "急难型",
    "expense": "支出型",
    "township": "乡镇（街道）审批",
    "county": "县级民政部门审批",
    "case_by_case": "“一事一议”个案研究",
    "fire": "火灾",
    "flood": "洪涝",
    "natural_disaster": "自然灾害",
    "traffic_accident": "交通事故",
    "accident": "意外事故",
    "epidemic": "传染病疫情",
    "other_emergency": "其他急难情形",
    # “7+1” groups
    "poverty_registered": "建档立卡贫困户",
    "priority_veteran": "重点优抚对象",
    "family_planning_special": "计划生育特殊家庭成员",
    "left_behind": "农村留守老年人",
    "no_group": "不属于七类对象",
    # basic funeral services, in the order they are given (接运、纸棺、暂存、火化、骨灰盒、骨灰存放):
    # a set is read in the order of this table (see ``set_order``)
    "body_transport": "遗体接运",
    "paper_coffin": "纸棺",
    "body_storage": "遗体暂存",
    "cremation": "火化",
    "urn": "骨灰盒",
    "ashes_storage": "骨灰存放",
    # 特困: the ground of 无劳动能力 that applies (rules/tekun.yaml work_ground)
    "tekun_elderly": "为60周岁以上的老年人，属于无劳动能力",
    "tekun_minor": "为未成年人，属于无劳动能力",
    "tekun_disabled": "的残疾类别和等级达到无劳动能力的认定标准，属于无劳动能力",
    "tekun_student": "已超过未成年人年龄上限，作为原特困人员仍在校就读，按规定继续享受救助供养",
    "tekun_able": "不属于无劳动能力",
    # statuses
    "eligible": "符合",
    "ineligible": "不符合",
    "gradual_exit": "渐退",
    "needs_info": "需补充信息",
}


# Values shared by several enums read differently in each ("none" is 无义务人 for
# supporters, 全失能 for self-care, 未在学 for schooling): labels by exact domain first.
DOMAIN_LABELS: dict[frozenset[str], dict[str, str]] = {
    frozenset({"none", "unable", "able"}): {
        "none": "无法定义务人",
        "unable": "义务人无履行义务能力",
        "able": "义务人有履行义务能力",
    },
    frozenset({"full", "partial", "none"}): {"full": "全自理", "partial": "半失能", "none": "全失能"},
    # the program a member is covered by (困难残疾人生活补贴); "none" never shows in a pass sentence
    frozenset({"dibao", "dibao_single", "dibao_edge", "none"}): {
        "dibao": "最低生活保障",
        "dibao_single": "低保单人户",
        "dibao_edge": "低保边缘家庭",
        "none": "低保及低保边缘以外",
    },
    frozenset({"none", "preschool", "compulsory", "high_school", "vocational", "college", "graduate"}): {
        **{k: LABELS[k] for k in ("preschool", "compulsory", "high_school", "vocational", "college", "graduate")},
        "none": "未在学",
    },
}


_RANK = {code: i for i, code in enumerate(LABELS)}


def set_order(items) -> list:
    """A set's members in reading order: the order of LABELS (funeral services in service order), then by code."""
    return sorted(items, key=lambda x: (_RANK.get(x, len(_RANK)), x))


def label(code: str) -> str:
    return LABELS.get(code, code)


def labeler(t: T):
    table = DOMAIN_LABELS.get(t.domain) if t.domain else None
    if table is None:
        return label
    return lambda code: table.get(code, LABELS.get(code, code))


_MONEY_CACHE: dict = {}


def money_text(v: Any) -> str:
    """fmt_money with a bounded cache: the same standard or income recurs across many sentences."""
    s = _MONEY_CACHE.get(v)
    if s is None:
        if len(_MONEY_CACHE) > 200_000:
            _MONEY_CACHE.clear()
        s = fmt_money(mpq(v))
        _MONEY_CACHE[v] = s
    return s


def converter(t: T):
    """A function value -> (text for the sentence, JSON value for ``values``) for type ``t``."""
    kind = t.kind

    def missing_or_none(v):
        # no brackets: the value usually sits inside a sentence's own brackets
        return ("未知", None) if v.__class__ is Missing else ("无", None)

    if kind == "money":

        def conv(v):
            if v is None or v.__class__ is Missing:
                return missing_or_none(v)
            s = money_text(v)
            return s, s
    elif kind == "number":

        def conv(v):
            if v is None or v.__class__ is Missing:
                return missing_or_none(v)
            s = fmt_number(mpq(v))
            return s, s
    elif kind == "int":

        def conv(v):
            if v is None or v.__class__ is Missing:
                return missing_or_none(v)
            return str(v), int(v)
    elif kind == "bool":

        def conv(v):
            if v is None or v.__class__ is Missing:
                return missing_or_none(v)
            return ("是" if v else "否"), v
    elif kind == "date":

        def conv(v):
            if v is None or v.__class__ is Missing:
                return missing_or_none(v)
            s = v.isoformat()
            return s, s
    elif kind == "str":
        lab = labeler(t) if t.domain else str

        def conv(v):
            if v is None or v.__class__ is Missing:
                return missing_or_none(v)
            return lab(v), v
    elif kind == "set":
        lab = labeler(t)

        def conv(v):
            if v is None or v.__class__ is Missing:
                return missing_or_none(v)
            items = sorted(v)
            return ("、".join(lab(x) for x in set_order(items)) or "无"), items
    elif kind == "list" and t.record == "member":

        def conv(v):
            if v is None or v.__class__ is Missing:
                return missing_or_none(v)
            ids = [r["id"] for r in v]
            return ("、".join(ids) or "无"), ids
    else:

        def conv(v):
            if v is None or v.__class__ is Missing:
                return missing_or_none(v)
            return str(len(v)), len(v)

    return conv


def show(value: Any, t: T) -> str:
    """A value as it reads in a Chinese sentence."""
    return converter(t)(value)[0]


def as_json(value: Any, t: T) -> Any:
    """A value as it appears in ``reasons[].values``: money as "0.00" strings."""
    return converter(t)(value)[1]


def split(template: str) -> list[tuple[bool, str]]:
    """``"a{x}b"`` -> ``[(False, "a"), (True, "x"), (False, "b")]``."""
    out: list[tuple[bool, str]] = []
    pos = 0
    for m in _SLOT.finditer(template):
        if m.start() > pos:
            out.append((False, template[pos : m.start()]))
        out.append((True, m.group(1).strip()))
        pos = m.end()
    if pos < len(template):
        out.append((False, template[pos:]))
    return out


def unbalanced(template: str) -> bool:
    stripped = _SLOT.sub("", template)
    return "{" in stripped or "}" in stripped

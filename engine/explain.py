"""A determination as a printable Chinese report for caseworkers and families."""

from __future__ import annotations

from . import localities
from .templates import LABELS

_MARK = {True: "✓ 满足", False: "✗ 不满足", None: "？ 待核实"}
_STATUS = {
    "eligible": "符合",
    "ineligible": "不符合",
    "gradual_exit": "渐退期",
    "needs_info": "需补充信息",
}
_NUM = "一二三四五六七八九十"


def _place(code: str) -> str:
    try:
        return f"{localities.full_name(code)}（{code}）"
    except localities.LocalityError:
        return code


def render_report(det: dict) -> str:
    lines: list[str] = []
    add = lines.append
    add("社会救助资格评估报告")
    add("=" * 24)
    add(f"户编号：{det['household_id']}")
    add(f"评估日期：{det['as_of']}")
    add(f"申请地：{_place(det['locality'])}")
    chain = " → ".join(_place(c) for c in det["locality_chain"]) or "（无）"
    add(f"适用政策：{chain}")
    add(f"规则版本：{det['ruleset_version'][:23]}…")
    add("")

    hh = det["household"]
    add("一、家庭基本情况")
    members = "、".join(hh["counted_members"]) or "（无）"
    add(f"  共同生活的家庭成员：{members}（{len(hh['counted_members'])}人）")
    add(
        f"  家庭月收入：{_yuan(hh['monthly_income'])}　扣减：{_yuan(hh.get('deductions'))}　人均月收入：{_yuan(hh['per_capita_income'])}"
    )
    add(f"  适用低保标准：{_yuan(hh['dibao_standard'], '/人/月')}")
    for r in hh.get("reasons", []):
        _reason(add, r, "  ")
    add("")

    add("二、认定结果")
    total = 0
    for i, p in enumerate(det["programs"], 1):
        who = "全户" if p["scope"] == "household" else f"成员{p['members'][0]}"
        amount = _amount_text(p)
        if p.get("paid") is False:
            amount += "（不重复发放）"
        add(f"  {i}. {p['name']}（{who}）：【{_STATUS.get(p['status'], p['status'])}】{amount}")
        if p.get("monthly_amount") and p["status"] in ("eligible", "gradual_exit"):
            total += 1
        for r in p["reasons"]:
            _reason(add, r, "     ")
        for part in p.get("amount_breakdown", []):
            amt = f"{part['amount']}元" if part.get("amount") else f"未计入（{part.get('note', '')}）"
            add(f"       · {part['name']}：{amt}")
        for name, value in (p.get("details") or {}).items():
            add(f"       · {_DETAIL_NAMES.get(name, name)}：{_detail(value)}")
        for link in p.get("links", []):
            text = f"：{link['text']}" if link.get("text") else ""
            add(f"       → 可衔接：{link['name']}{text}（{link['citation']}）")
        add("")

    summary = det.get("summary")
    if summary:
        add("三、救助金额合计（不重复计算）")
        add(f"  {summary.get('text', '')}")
        for item in summary.get("paid", []):
            who = "全户" if item.get("scope") == "household" else f"成员{item['members'][0]}"
            add(f"  + {item['name']}（{who}）：{_amount_text(item).lstrip('，')}")
        for item in summary.get("not_paid", []):
            who = "全户" if item.get("scope") == "household" else f"成员{item['members'][0]}"
            add(f"  − {item['name']}（{who}）未计入：{item['text']}")
        for item in summary.get("non_cash", []):
            who = "全户" if item.get("scope") == "household" else f"成员{item['members'][0]}"
            add(f"  · {item['name']}（{who}）：非现金救助{_amount_text(item)}")
        for item in summary.get("review", []):
            add(f"  ! 请复核：{item['text']}")
        add("")

    missing = sorted({m for p in det["programs"] for m in p.get("missing", [])})
    if missing:
        add("需补充的信息")
        for m in missing:
            add(f"  - {m}")
        add("")
    add("说明：")
    add("  1. 金额按精确值计算，仅在显示时四舍五入到分，分项显示值之间可能有0.01元尾差。")
    add("  2. 标注“项目默认值，待地方确认”的条件，种子文件未作规定，采用本系统的默认取值。")
    add("  3. 本报告为资格预评估结果，最终以乡镇（街道）审核、县级民政部门确认为准。")
    return "\n".join(lines) + "\n"


_DETAIL_NAMES = {
    "assistance_type": "救助类型",
    "months": "建议救助月数",
    "approval_level": "审批层级",
    "hardship": "急难损失或刚性支出",
    "shortfall": "家庭无力解决的缺口",
    "items": "减免项目",
}


def _amount_text(p: dict) -> str:
    if p.get("monthly_amount"):
        return f"，每月{p['monthly_amount']}元"
    if p.get("annual_amount"):
        return f"，每学年{p['annual_amount']}元"
    if p.get("one_off_amount"):
        return f"，一次性{p['one_off_amount']}元（建议）"
    if p.get("monthly_service_value"):
        return f"，服务价值每月不低于{p['monthly_service_value']}元"
    return ""


def _detail(value) -> str:
    if isinstance(value, list):
        return "、".join(LABELS.get(v, v) for v in value) or "无"
    if isinstance(value, str):
        return LABELS.get(value, value)
    return "未知" if value is None else str(value)


def _yuan(v: str | None, unit: str = "") -> str:
    return f"{v}元{unit}" if v is not None else "未知"


def _reason(add, r: dict, indent: str) -> None:
    if r.get("kind") == "decision":
        add(f"{indent}  ⇒ {r['text']}")
        add(f"{indent}    依据：{r['citation']}")
        return
    mark = _MARK.get(r.get("passed"), "·")
    if r.get("kind") == "interaction":
        mark = "⇄ 衔接"
    elif r.get("kind") == "fact":
        mark = "· 认定" if r.get("passed") is not None else _MARK[None]
    add(f"{indent}{mark}：{r['text']}")
    add(f"{indent}    依据：{r['citation']}")


__all__ = ["LABELS", "render_report"]

"""The report of a determination, answer first: one structure, rendered as text and as printable HTML.

Page one is for the family and the window: each program granted, refused or waiting for
information, with one plain sentence naming the member by relation and id; the monthly amounts
and the household total; the 专项救助 the family may apply for; what to supply or bring next; a
disclaimer, the date and the ruleset version. The appendix, for review, lists every rule checked
with its values and citation. ``build_report`` works on the determination dict (and, when given,
the household it was made for, which holds each member's relation), so the service and the CLI
print the same report.
"""

from __future__ import annotations

import html
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from engine.book.templates import LABELS, set_order
from engine.policies import localities

RELATIONS = {
    "head": "户主",
    "spouse": "配偶",
    "child": "子女",
    "parent": "父母",
    "grandparent": "祖父母",
    "grandchild": "孙子女",
    "sibling": "兄弟姐妹",
    "other": "家庭成员",
}
STATUS = {"eligible": "符合", "gradual_exit": "渐退期", "ineligible": "不符合", "needs_info": "需补充信息"}
GRANTED = ("eligible", "gradual_exit")
DISCLAIMER = (
    "本结果为依据所填信息作出的资格预评估，不是审批决定；最终以乡镇人民政府（街道办事处）审核、县级人民政府民政部门确认为准。"
)
NEXT_STEP = "携带户口簿、居民身份证及收入、财产等证明材料，向户籍所在地乡镇人民政府（街道办事处）提出申请。"
# "（项目默认值，待地方确认：A、B）" -> "（项目默认值，待地方确认）" on page one
_NOTE = re.compile(r"（(项目默认值，待地方确认|按对政策文件的解释取值，待地方确认)：[^（）]*(?:（[^（）]*）[^（）]*)*）")
_DETAIL_NAMES = {
    "assistance_type": "救助类型",
    "months": "建议救助月数",
    "approval_level": "审批层级",
    "hardship": "急难损失或刚性支出",
    "shortfall": "家庭无力解决的缺口",
    "items": "减免项目",
}


@dataclass
class Line:
    """One program's answer on page one."""

    program: str
    name: str
    who: str  # 全户 / 户主p1 / 户主p1、子女p2
    status: str  # eligible | gradual_exit | ineligible | needs_info
    status_text: str
    amount: str  # "每月522.00元", "" when none
    why: str  # one plain sentence
    paid: bool = True


@dataclass
class Report:
    household_id: str
    as_of: str
    place: str
    ruleset_version: str
    notes: list[str]  # e.g. no policy file of its own
    granted: list[Line]
    needs_info: list[Line]
    refused: list[Line]
    monthly_total: str
    totals_text: str
    not_paid: list[str]
    may_apply: list[dict]  # {name, text}
    next_steps: list[str]
    disclaimer: str
    appendix: list[dict] = field(default_factory=list)  # {heading, items: [{mark, text, citation}]}
    # next_steps split by who acts: facts the family can supply, and settings the bureau has not configured
    supply: list[str] = field(default_factory=list)
    unconfigured: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def build_report(det: dict, household: dict | None = None) -> Report:
    relations = {m.get("id"): m.get("relation") for m in (household or {}).get("members", [])}
    who = _Namer(relations)
    code = det["locality"]
    notes = []
    chain = det.get("locality_chain") or []
    if code not in chain:
        upper = "、".join(_name(c) for c in chain if c != "100000") or "全国"
        notes.append(f"本地区无专门政策文件，按上级（{upper}）政策评估")
    granted: list[Line] = []
    needs: list[Line] = []
    refused_by_program: dict[str, list[dict]] = {}
    for p in det["programs"]:
        status = p["status"]
        if status in GRANTED:
            granted.append(_line(p, who, _granted_why(p), paid=p.get("paid") is not False))
        elif status == "needs_info":
            needs.append(_line(p, who, _decision(p)))
        else:
            refused_by_program.setdefault(p["program"], []).append(p)
    refused = [_refused_line(ps, who) for ps in refused_by_program.values()]
    summary = det.get("summary") or {}
    not_paid = [
        f"{x['name']}（{who.members(x['members'], x['scope'])}）：{who.short(x['text'])}"
        for x in summary.get("not_paid", [])
        if x.get("reason") == "amount_unknown"  # needs_info and excluded ones are on the answer list already
    ]
    may_apply = _links(det)
    supply, unconfigured = _missing(det, who)
    next_steps = supply + [f"（窗口）{s}" for s in unconfigured] + [NEXT_STEP]
    return Report(
        household_id=det["household_id"],
        as_of=det["as_of"],
        place=_name(code),
        ruleset_version=det["ruleset_version"][:23],
        notes=notes,
        granted=granted,
        needs_info=needs,
        refused=refused,
        monthly_total=summary.get("monthly_total", "0.00"),
        totals_text=summary.get("text", ""),
        not_paid=not_paid,
        may_apply=may_apply,
        next_steps=next_steps,
        disclaimer=DISCLAIMER,
        appendix=_appendix(det, who),
        supply=supply,
        unconfigured=unconfigured,
    )


# -- page one pieces ---------------------------------------------------------------------


class _Namer:
    """Members by relation and id ("户主p1"), in sentences too ("成员p1" -> "户主p1")."""

    def __init__(self, relations: dict):
        self.relations = relations
        ids = sorted((i for i in relations if i), key=len, reverse=True)
        one = "(?:" + "|".join(map(re.escape, ids)) + r")(?![A-Za-z0-9_.-])"
        self._one = re.compile(one) if ids else None
        self._re = re.compile(f"成员({one}(?:、{one})*)") if ids else None

    def member(self, mid: str) -> str:
        rel = self.relations.get(mid)
        return f"{RELATIONS.get(rel, '成员')}{mid}" if rel else f"成员{mid}"

    def members(self, ids: list[str], scope: str) -> str:
        if scope == "household":
            return "全户"
        return "、".join(self.member(m) for m in ids)

    def sentence(self, text: str) -> str:
        """ "成员p1" and "成员g1、c1" read "户主p1", "祖父母g1、孙子女c1"."""
        if self._re is None:
            return text
        return self._re.sub(lambda m: self._one.sub(lambda n: self.member(n.group(0)), m.group(1)), text)

    def short(self, text: str) -> str:
        """A page-one sentence: the long lists of defaults and readings stay in the appendix."""
        return _NOTE.sub(lambda m: f"（{m.group(1)}）", self.sentence(text))


def _name(code: str) -> str:
    try:
        return localities.full_name(code)
    except localities.LocalityError:
        return code


def _amount(p: dict) -> str:
    if p.get("monthly_amount"):
        return f"每月{p['monthly_amount']}元"
    if p.get("annual_amount"):
        return f"每学年{p['annual_amount']}元"
    if p.get("one_off_amount"):
        return f"一次性{p['one_off_amount']}元（建议）"
    if p.get("monthly_service_value"):
        return f"服务价值每月不低于{p['monthly_service_value']}元"
    return ""


def _decision(p: dict) -> str:
    for r in reversed(p["reasons"]):
        if r.get("kind") == "decision":
            return r["text"]
    return ""


def _granted_why(p: dict) -> str:
    if p.get("paid") is False:
        for r in p["reasons"]:
            if r.get("kind") == "interaction" and r.get("passed") is False:
                return r["text"]
    return _decision(p)


def _first_failure(p: dict) -> str:
    for r in p["reasons"]:
        if r.get("kind") == "check" and r.get("passed") is False:
            return r["text"]
    return _decision(p)


def _line(p: dict, who: _Namer, why: str, paid: bool = True) -> Line:
    amount = _amount(p)
    if not paid:
        amount = f"{amount}（不重复发放）" if amount else "不重复发放"
    return Line(
        p["program"],
        p["name"],
        who.members(p["members"], p["scope"]),
        p["status"],
        STATUS.get(p["status"], p["status"]),
        amount,
        who.short(why),
        paid,
    )


def _refused_line(ps: list[dict], who: _Namer) -> Line:
    first = ps[0]
    if first["scope"] == "household":
        return _line(first, who, _first_failure(first))
    reasons = [who.short(_first_failure(p)) for p in ps]
    why = "；".join(dict.fromkeys(reasons))
    members = [m for p in ps for m in p["members"]]
    return Line(first["program"], first["name"], who.members(members, "member"), "ineligible", "不符合", "", why)


def _links(det: dict) -> list[dict]:
    seen: dict[str, dict] = {}
    for p in det["programs"]:
        if p["status"] not in GRANTED:
            continue
        for link in p.get("links", []):
            key = link.get("code") or link["name"]
            if key not in seen:
                seen[key] = {"name": link["name"], "text": link.get("text", "")}
    return list(seen.values())


def _missing(det: dict, who: _Namer) -> tuple[list[str], list[str]]:
    facts: list[str] = []
    settings: list[str] = []
    for p in det["programs"]:
        if p["status"] != "needs_info":
            continue
        text = _decision(p)
        for part in text.split("：", 1)[-1].split("；"):
            part = who.sentence(part.strip())
            if part.startswith("请补充") and part not in facts:
                facts.append(part)
            elif part.startswith("本地尚未配置") and part not in settings:
                settings.append(part)
    return facts, settings


# -- appendix -----------------------------------------------------------------------------

_MARK = {True: "✓ 满足", False: "✗ 不满足", None: "？ 待核实"}


def _appendix(det: dict, who: _Namer) -> list[dict]:
    hh = det["household"]
    head = [
        {"mark": "· 认定", "text": f"共同生活的家庭成员：{who.members(hh['counted_members'], 'member') or '无'}", "citation": ""},
        {
            "mark": "· 认定",
            "text": f"家庭月收入{_yuan(hh['monthly_income'])}，扣减{_yuan(hh.get('deductions'))}，"
            f"人均月收入{_yuan(hh['per_capita_income'])}；适用低保标准{_yuan(hh['dibao_standard'])}/人/月",
            "citation": "",
        },
    ]
    sections = [{"heading": "家庭基本情况", "items": head + [_item(r, who) for r in hh.get("reasons", [])]}]
    for p in det["programs"]:
        items = [_item(r, who) for r in p["reasons"]]
        for part in p.get("amount_breakdown", []):
            amt = f"{part['amount']}元" if part.get("amount") else part.get("note", "未计入")
            items.append({"mark": "· 金额", "text": f"{part['name']}：{amt}", "citation": ""})
        for name, value in (p.get("details") or {}).items():
            items.append({"mark": "· 明细", "text": f"{_DETAIL_NAMES.get(name, name)}：{_detail(value)}", "citation": ""})
        for link in p.get("links", []):
            items.append({"mark": "→ 可申请", "text": f"{link['name']}：{link.get('text', '')}", "citation": link["citation"]})
        heading = f"{p['name']}（{who.members(p['members'], p['scope'])}）：{STATUS.get(p['status'], p['status'])}"
        if _amount(p):
            heading += f"，{_amount(p)}"
        if p.get("paid") is False:
            heading += "（不重复发放）"
        sections.append({"heading": heading, "items": items})
    return sections


def _item(r: dict, who: _Namer) -> dict:
    kind = r.get("kind")
    if kind == "decision":
        mark = "⇒ 结论"
    elif kind == "interaction":
        mark = "⇄ 衔接"
    elif kind == "fact":
        mark = "· 认定" if r.get("passed") is not None else _MARK[None]
    else:
        mark = _MARK.get(r.get("passed"), "·")
    return {"mark": mark, "text": who.sentence(r["text"]), "citation": r.get("citation", "")}


def _detail(value: Any) -> str:
    if isinstance(value, list):
        return "、".join(LABELS.get(v, v) for v in set_order(value)) or "无"
    if isinstance(value, str):
        return LABELS.get(value, value)
    return "未知" if value is None else str(value)


def _yuan(v: str | None) -> str:
    return f"{v}元" if v is not None else "未知"


# -- renderings ---------------------------------------------------------------------------


def page_one_text(rep: Report) -> list[str]:
    out = ["社会救助资格评估报告", "=" * 24]
    out.append(f"户编号：{rep.household_id}　评估日期：{rep.as_of}")
    out.append(f"申请地：{rep.place}")
    out += [f"注：{n}" for n in rep.notes]
    out.append("")
    out.append("一、评估结论")
    for ln in rep.granted:
        out.append(f"  ✓ {ln.name}（{ln.who}）：{ln.status_text}" + (f"，{ln.amount}" if ln.amount else ""))
        out.append(f"      {ln.why}")
    for ln in rep.needs_info:
        out.append(f"  ？ {ln.name}（{ln.who}）：{ln.status_text}")
        out.append(f"      {ln.why}")
    for ln in rep.refused:
        out.append(f"  ✗ {ln.name}（{ln.who}）：{ln.why}")
    out.append("")
    out.append(f"二、救助金额合计（同一人不重复计算）：每月现金{rep.monthly_total}元")
    if rep.totals_text and rep.totals_text != f"每月现金救助合计{rep.monthly_total}元":
        out.append(f"  {rep.totals_text}")
    out += [f"  未计入：{x}" for x in rep.not_paid]
    if rep.may_apply:
        out.append("")
        out.append("三、还可以申请的专项救助")
        out += [f"  · {x['name']}：{x['text']}" for x in rep.may_apply]
    out.append("")
    out.append("四、下一步")
    out += [f"  · {s}" for s in rep.next_steps]
    out.append("")
    out.append(f"说明：{rep.disclaimer}")
    out.append(f"评估日期：{rep.as_of}　规则版本：{rep.ruleset_version}")
    return out


def render_text(rep: Report) -> str:
    out = page_one_text(rep)
    out += ["", "=" * 24, "审核附录：逐条规则、取值与依据", "=" * 24]
    for sec in rep.appendix:
        out.append("")
        out.append(sec["heading"])
        for it in sec["items"]:
            out.append(f"  {it['mark']}：{it['text']}")
            if it["citation"]:
                out.append(f"      依据：{it['citation']}")
    out.append("")
    out.append(
        "说明：金额按精确值计算，仅在显示时四舍五入到分；标注“项目默认值，待地方确认”或“按对政策文件的解释取值”的，"
        "种子文件未作明确规定，采用本系统的默认取值或解释。"
    )
    return "\n".join(out) + "\n"


_CSS = """
@page { size: A4; margin: 14mm 12mm; }
body { font-family: "Noto Sans CJK SC", "Source Han Sans SC", "Microsoft YaHei", sans-serif; font-size: 9.5pt;
       line-height: 1.35; color: #000; margin: 0; }
h1 { font-size: 14pt; margin: 0 0 4pt; } h2 { font-size: 11pt; margin: 8pt 0 3pt; }
.meta, .note, .page-one p { margin: 0 0 2pt; } .note { font-weight: bold; }
ul { margin: 0; padding-left: 1.2em; } .answers { list-style: none; padding-left: 0; }
.answers li { margin: 0 0 2pt; break-inside: avoid; } .answers .head { font-weight: bold; }
.answers .refused { padding-left: 1.4em; text-indent: -1.4em; } .answers .refused .head { font-weight: normal; }
.why { padding-left: 1.4em; display: inline-block; }
.total { font-size: 12pt; font-weight: bold; margin: 0; }
.page-one .footer { margin-top: 8pt; break-inside: avoid; font-size: 9pt; border-top: 0.5pt solid #888; padding-top: 3pt; }
.appendix { page-break-before: always; break-before: page; font-size: 9pt; }
.appendix ul { list-style: none; padding-left: 0; } .appendix li { padding-left: 1.4em; text-indent: -1.4em; }
.appendix .cite { color: #444; padding-left: 2em; text-indent: 0; }
@media screen { body { max-width: 210mm; margin: 0 auto; padding: 12mm; } }
"""


def render_html(rep: Report) -> str:
    e = html.escape
    rows = []
    for cls, mark, lines in (("granted", "✓", rep.granted), ("needs", "？", rep.needs_info), ("refused", "✗", rep.refused)):
        for ln in lines:
            if cls == "refused":
                # one line each, as in the text form: page one must hold every program on one A4 page
                rows.append(f'<li class="{cls}"><span class="head">{e(f"{mark} {ln.name}（{ln.who}）")}</span>：{e(ln.why)}</li>')
                continue
            head = f"{mark} {ln.name}（{ln.who}）：{ln.status_text}" + (f"，{ln.amount}" if ln.amount else "")
            rows.append(f'<li class="{cls}"><span class="head">{e(head)}</span><br><span class="why">{e(ln.why)}</span></li>')
    parts = [
        "<!DOCTYPE html>",
        '<html lang="zh-CN"><head><meta charset="utf-8">',
        f"<title>社会救助资格评估报告 {e(rep.household_id)}</title><style>{_CSS}</style></head><body>",
        '<section class="page-one">',
        "<h1>社会救助资格评估报告</h1>",
        f'<p class="meta">户编号：{e(rep.household_id)}　评估日期：{e(rep.as_of)}　申请地：{e(rep.place)}</p>',
        *[f'<p class="note">注：{e(n)}</p>' for n in rep.notes],
        "<h2>一、评估结论</h2>",
        '<ul class="answers">',
        *rows,
        "</ul>",
        f'<h2>二、救助金额合计（同一人不重复计算）</h2><p class="total">每月现金{e(rep.monthly_total)}元</p>',
        f"<p>{e(rep.totals_text)}</p>" if rep.totals_text else "",
        *[f"<p>未计入：{e(x)}</p>" for x in rep.not_paid],
    ]
    if rep.may_apply:
        parts.append("<h2>三、还可以申请的专项救助</h2><ul>")
        parts += [f"<li>{e(x['name'])}：{e(x['text'])}</li>" for x in rep.may_apply]
        parts.append("</ul>")
    parts.append("<h2>四、下一步</h2><ul>")
    parts += [f"<li>{e(s)}</li>" for s in rep.next_steps]
    parts.append("</ul>")
    parts.append(
        f'<p class="footer">说明：{e(rep.disclaimer)}<br>评估日期：{e(rep.as_of)}　规则版本：{e(rep.ruleset_version)}</p>'
    )
    parts.append("</section>")
    parts += _appendix_html(rep)
    parts.append("</body></html>")
    return "\n".join(p for p in parts if p) + "\n"


def _appendix_html(rep: Report) -> list[str]:
    e = html.escape
    parts = ['<section class="appendix"><h1>审核附录：逐条规则、取值与依据</h1>']
    for sec in rep.appendix:
        parts.append(f"<h2>{e(sec['heading'])}</h2><ul>")
        for it in sec["items"]:
            cite = f'<div class="cite">依据：{e(it["citation"])}</div>' if it["citation"] else ""
            parts.append(f"<li>{e(it['mark'])}：{e(it['text'])}{cite}</li>")
        parts.append("</ul>")
    parts.append("</section>")
    return parts


_SHEET_CSS = """
table.decisions { border-collapse: collapse; width: 100%; margin: 2pt 0 4pt; }
.decisions th, .decisions td { border: 0.5pt solid #666; padding: 2pt 4pt; text-align: left; vertical-align: top; }
table.decisions { font-size: 9pt; line-height: 1.3; table-layout: fixed; }
.decisions th { background: #eee; white-space: nowrap; } .decisions td.amount { text-align: right; }
.decisions col.name { width: 8.5em; } .decisions col.who { width: 5.5em; } .decisions col.status { width: 3.2em; }
.decisions col.amount { width: 7.5em; } .decisions td.status { white-space: nowrap; }
.decisions tr.status-eligible td.status, .decisions tr.status-gradual_exit td.status { font-weight: bold; }
.decisions tr { break-inside: avoid; } .decisions .why { padding-left: 0; display: inline; }
.signatures { display: flex; gap: 12mm; margin-top: 10pt; break-inside: avoid; }
.signatures div { flex: 1; border-bottom: 0.5pt solid #000; padding-top: 12pt; }
"""


def render_sheet(rep: Report, *, printed_on: str, appendix: bool = False) -> str:
    """Page one as the sheet the window prints and signs (A4): the answers as a table, signature lines
    for 申请人 / 经办人 / 审核人, the print date; the review appendix on further pages when asked."""
    e = html.escape
    rows = []
    for lines in (rep.granted, rep.needs_info):
        for ln in lines:
            rows.append(
                f'<tr class="status-{e(ln.status)}"><td class="name">{e(ln.name)}</td><td class="who">{e(ln.who)}</td>'
                f'<td class="status">{e(ln.status_text)}</td>'
                f'<td class="amount">{e(ln.amount)}</td><td>{e(ln.why)}</td></tr>'
            )
    parts = [
        "<!DOCTYPE html>",
        '<html lang="zh-CN"><head><meta charset="utf-8">',
        f"<title>社会救助资格评估报告 {e(rep.household_id)}</title><style>{_CSS}{_SHEET_CSS}</style></head><body>",
        '<section class="page-one">',
        "<h1>社会救助资格评估报告</h1>",
        f'<p class="meta">申请地：{e(rep.place)}　评估日期：{e(rep.as_of)}　户编号：{e(rep.household_id)}</p>',
        *[f'<p class="note">注：{e(n)}</p>' for n in rep.notes],
        "<h2>一、评估结论</h2>",
        '<table class="decisions"><colgroup><col class="name"><col class="who"><col class="status"><col class="amount"><col></colgroup><thead><tr><th>救助项目</th><th>对象</th><th>结论</th><th>金额</th><th>理由</th></tr></thead>',
        "<tbody>",
        *rows,
        "</tbody></table>",
        # refused programs one line each, as on page one of the report: the sheet must stay one A4 page
        '<ul class="answers">' if rep.refused else "",
        *[f'<li class="refused"><span class="head">{e(f"✗ {ln.name}（{ln.who}）")}</span>：{e(ln.why)}</li>' for ln in rep.refused],
        "</ul>" if rep.refused else "",
        f'<h2>二、救助金额合计（同一人不重复计算）</h2><p class="total">每月现金{e(rep.monthly_total)}元</p>',
        *[f"<p>未计入：{e(x)}</p>" for x in rep.not_paid],
    ]
    if rep.may_apply:
        parts.append("<h2>三、还可以申请的专项救助</h2><ul>")
        parts += [f"<li>{e(x['name'])}：{e(x['text'])}</li>" for x in rep.may_apply]
        parts.append("</ul>")
    parts.append("<h2>四、下一步</h2><ul>")
    parts += [f"<li>{e(s)}</li>" for s in rep.next_steps]
    parts.append("</ul>")
    parts.append('<div class="signatures"><div>申请人（签字）：</div><div>经办人（签字）：</div><div>审核人（签字）：</div></div>')
    parts.append(
        f'<p class="footer">说明：{e(rep.disclaimer)}<br>'
        f"评估日期：{e(rep.as_of)}　打印日期：{e(printed_on)}　规则版本：{e(rep.ruleset_version)}</p>"
    )
    parts.append("</section>")
    if appendix:
        parts += _appendix_html(rep)
    parts.append("</body></html>")
    return "\n".join(p for p in parts if p) + "\n"


def report(det: dict, household: dict | None = None) -> dict:
    """For the service: the structured report and its text and HTML renderings."""
    rep = build_report(det, household)
    return {"report": rep.as_dict(), "text": render_text(rep), "html": render_html(rep)}

"""Briefing charts as one self-contained HTML file (inline SVG: no script, no network, no fonts to install).

Two charts a policy officer puts in a briefing: the distribution of household
per-capita income against the 低保 standard and the 低保边缘 line before and after the
reform (one panel per area), and the monthly cost of each program before and after.
"""

from __future__ import annotations

import math
from html import escape

from . import briefing

W, H = 760, 300
PAD_L, PAD_R, PAD_T, PAD_B = 64, 20, 30, 46
COLORS = {"baseline": "#7f8c8d", "reform": "#c0392b", "bar": "#5b8db8", "bar2": "#e67e22"}
LINE_NAMES = {"dibao": "低保标准", "dibao_edge": "低保边缘线"}
AREA_NAMES = {"urban": "城市", "rural": "农村"}


def ticks(hi: float, target: int = 5, integer: bool = False) -> list[float]:
    """Round tick values from 0 to at least ``hi``: steps of 1, 2 or 5 × 10^k (``integer``: counts, step >= 1),
    so the labels read 0, 200, 400 … rather than 0, 387, 774 or a count of 1.25 shown as 1."""
    hi = hi if hi > 0 else 1.0
    raw = hi / target
    e = 10 ** math.floor(math.log10(raw))
    step = next(m * e for m in (1, 2, 5, 10) if raw <= m * e)
    if integer:
        step = max(1.0, math.ceil(step))
    n = math.ceil(hi / step - 1e-9)
    return [round(k * step, 10) for k in range(n + 1)]


def _label(v: float) -> str:
    return f"{v:,.0f}" if float(v).is_integer() else f"{v:,g}"


def histogram_svg(area: str, h: dict) -> str:
    edges, counts = h["edges"], h["counts"]
    if not counts:
        return ""
    x0, x1 = edges[0], edges[-1]
    yticks = ticks(max(counts) or 1, 4, integer=True)
    ymax = yticks[-1]
    iw, ih = W - PAD_L - PAD_R, H - PAD_T - PAD_B

    def sx(x: float) -> float:
        return PAD_L + (x - x0) / (x1 - x0 or 1) * iw

    def sy(y: float) -> float:
        return PAD_T + ih - y / ymax * ih

    out = [f'<svg viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" aria-label="人均收入分布">']
    for i, c in enumerate(counts):
        xa, xb = sx(edges[i]), sx(edges[i + 1])
        out.append(
            f'<rect x="{xa:.1f}" y="{sy(c):.1f}" width="{max(xb - xa - 1, 0.5):.1f}" height="{sy(0) - sy(c):.1f}" fill="{COLORS["bar"]}"/>'
        )
    for y in yticks:
        out.append(f'<line x1="{PAD_L}" x2="{W - PAD_R}" y1="{sy(y):.1f}" y2="{sy(y):.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{PAD_L - 6}" y="{sy(y) + 4:.1f}" text-anchor="end" font-size="11">{_label(y)}</text>')
    for x in ticks(x1, 6):
        if x0 <= x <= x1:
            out.append(f'<line x1="{sx(x):.1f}" x2="{sx(x):.1f}" y1="{sy(0):.1f}" y2="{sy(0) + 4:.1f}" stroke="#555"/>')
            out.append(f'<text x="{sx(x):.1f}" y="{H - PAD_B + 16}" text-anchor="middle" font-size="11">{_label(x)}</text>')
    out.append(f'<text x="{PAD_L + iw / 2}" y="{H - 8}" text-anchor="middle" font-size="12">家庭人均月收入（元）</text>')
    out.append(
        f'<text x="14" y="{PAD_T + ih / 2}" transform="rotate(-90 14 {PAD_T + ih / 2})" text-anchor="middle" font-size="12">户数</text>'
    )
    row = 0
    for label, dash in (("baseline", "6,4"), ("reform", "")):
        for kind, value in sorted(h.get("thresholds", {}).get(label, {}).items()):
            if not x0 <= value <= x1:
                continue
            color = COLORS[label]
            x = sx(value)
            out.append(
                f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{PAD_T}" y2="{sy(0):.1f}" stroke="{color}" stroke-width="2" stroke-dasharray="{dash}"/>'
            )
            name = f"{'现行' if label == 'baseline' else '改革后'}{LINE_NAMES.get(kind, kind)} {value:.2f}"
            # a white halo keeps the label readable over the bars
            out.append(
                f'<text x="{x + 4:.1f}" y="{PAD_T + 12 + 13 * row}" font-size="11" fill="{color}" stroke="#fff" stroke-width="3" '
                f'paint-order="stroke">{escape(name)}</text>'
            )
            row += 1
    out.append("</svg>")
    title = f"{AREA_NAMES.get(area, area)}家庭人均月收入分布（{h['households']} 户"
    if h.get("above_range"):
        title += f"，另有 {h['above_range']} 户高于图示范围"
    title += "）"
    return f"<figure><figcaption>{escape(title)}</figcaption>{''.join(out)}</figure>"


def cost_svg(cost: dict, names: dict[str, str]) -> str:
    items = [
        (code, c)
        for code, c in cost.items()
        if c["pays"] == "monthly" and (c["baseline_monthly"] != "0.00" or c["reform_monthly"] != "0.00")
    ]
    if not items:
        return ""
    vals = [(code, float(c["baseline_monthly"]), float(c["reform_monthly"])) for code, c in items]
    if not vals:
        return ""
    vticks = ticks(max(max(b, r) for _c, b, r in vals) / 10000, 4)
    vmax = vticks[-1]
    iw, ih = W - PAD_L - PAD_R, H - PAD_T - PAD_B
    group = iw / len(vals)
    bw = min(60.0, group / 3)

    def sy(y: float) -> float:
        return PAD_T + ih - y / vmax * ih

    out = [f'<svg viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" aria-label="各项目月支出">']
    for y in vticks:
        out.append(f'<line x1="{PAD_L}" x2="{W - PAD_R}" y1="{sy(y):.1f}" y2="{sy(y):.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{PAD_L - 6}" y="{sy(y) + 4:.1f}" text-anchor="end" font-size="11">{_label(y)}</text>')
    for i, (code, b, r) in enumerate(vals):
        cx = PAD_L + group * (i + 0.5)
        for j, (v, color) in enumerate(((b, COLORS["baseline"]), (r, COLORS["bar2"]))):
            x = cx - bw + j * bw
            yv = v / 10000
            out.append(f'<rect x="{x:.1f}" y="{sy(yv):.1f}" width="{bw - 2:.1f}" height="{sy(0) - sy(yv):.1f}" fill="{color}"/>')
        change = (r - b) / 10000
        out.append(
            f'<text x="{cx:.1f}" y="{min(sy(b / 10000), sy(r / 10000)) - 6:.1f}" text-anchor="middle" font-size="11">{change:+.1f} 万元</text>'
        )
        out.append(
            f'<text x="{cx:.1f}" y="{H - PAD_B + 16}" text-anchor="middle" font-size="12">{escape(names.get(code, code))}</text>'
        )
    out.append(
        f'<text x="14" y="{PAD_T + ih / 2}" transform="rotate(-90 14 {PAD_T + ih / 2})" text-anchor="middle" font-size="12">月支出（万元）</text>'
    )
    lx = W - PAD_R - 200
    out.append(
        f'<rect x="{lx}" y="6" width="12" height="12" fill="{COLORS["baseline"]}"/><text x="{lx + 16}" y="16" font-size="11">现行</text>'
    )
    out.append(
        f'<rect x="{lx + 70}" y="6" width="12" height="12" fill="{COLORS["bar2"]}"/><text x="{lx + 86}" y="16" font-size="11">改革后</text>'
    )
    out.append("</svg>")
    return f"<figure><figcaption>各项目月支出：现行与改革后</figcaption>{''.join(out)}</figure>"


def report_html(d: dict) -> str:
    names = {p["code"]: p["name"] for p in d["programs"]}
    r = d["reform"]
    parts = [
        "<!doctype html><html lang='zh-CN'><head><meta charset='utf-8'>",
        f"<title>改革试算：{escape(r['name'])}</title>",
        "<style>body{font-family:'Noto Sans CJK SC','Microsoft YaHei',sans-serif;margin:24px;color:#222;max-width:900px}"
        "table{border-collapse:collapse;margin:8px 0 20px}td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}"
        "th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}.warn{background:#fff3cd;padding:8px 12px;border:1px solid #e0c060}"
        "figure{margin:16px 0}figcaption{font-weight:bold;margin-bottom:4px}</style></head><body>",
        f"<h1>改革试算：{escape(r['name'])}</h1>",
    ]
    if d.get("synthetic"):
        parts.append("<p class='warn'>⚠ 本试算使用合成人口（jiuzhu synth 生成，不对应任何真实的人或家庭），仅供方法演示。</p>")
    if r.get("description"):
        parts.append(f"<p>{escape(r['description'])}</p>")
    parts.append("<ul>" + "".join(f"<li>{escape(c)}</li>" for c in r.get("changes", [])))
    parts.append("".join(f"<li>替换规则文件 {escape(x)}</li>" for x in r.get("rules", [])) + "</ul>")
    parts.append(
        f"<p>人口：{escape(d['population'])}，{d['households']} 户、{d['members']} 人；评估日期：{escape(d['as_of'] or '按数据')}。"
        f"规则版本：现行 <code>{escape(d['baseline_version'][:19])}…</code>，改革后 <code>{escape(d['reform_version'][:19])}…</code></p>"
    )
    t = d["total_cost"]
    parts.append(f"<p class='headline'><b>{escape(briefing.headline(d))}</b></p>")
    parts.append(
        f"<p><b>年支出合计</b>（按月发放的 ×12，另加按学年发放的）：现行 {briefing.wan(t['baseline_annual'])} 万元，"
        f"改革后 {briefing.wan(t['reform_annual'])} 万元，变化 {briefing.wan(t['change_annual'], signed=True)} 万元。</p>"
    )
    unpriced = [r for r in briefing.cost_rows(d) if r["unpriced"]]
    if unpriced:
        parts.append(
            "<p class='warn'>标准未配置：" + "；".join(f"{escape(r['program'])} {r['unpriced']:,} {r['unit']}符合条件但无法计算金额" for r in unpriced)
            + "。这些金额未计入支出（不是 0 元）。</p>"
        )
    for area, h in d.get("histogram", {}).items():
        parts.append(histogram_svg(area, h))
    parts.append(cost_svg(d["cost"], names))
    parts.append("<h2>人数（户或人）</h2><table><tr><th>项目</th><th>结论</th><th>现行</th><th>改革后</th><th>变化</th></tr>")
    for r in briefing.count_rows(d):
        parts.append(
            f"<tr><td>{escape(r['program'])}（{r['unit']}）</td><td>{escape(r['status_zh'])}</td><td>{r['baseline']:,}</td>"
            f"<td>{r['reform']:,}</td><td>{r['change']:+,}</td></tr>"
        )
    parts.append(
        "</table><h2>支出（万元/年，按实际发放：不重复享受的不计）</h2>"
        "<table><tr><th>项目</th><th>发放方式</th><th>现行</th><th>改革后</th><th>变化</th></tr>"
    )
    for r in briefing.cost_rows(d):
        if r["unpriced"]:
            cells = f"<td colspan='3' class='warn'>标准未配置：{r['unpriced']:,} {r['unit']}无法计算金额，未计入</td>"
        else:
            cells = f"<td>{r['baseline']}</td><td>{r['reform']}</td><td>{r['change']}</td>"
        parts.append(f"<tr><td>{escape(r['program'])}</td><td>{escape(r['pays'])}</td>{cells}</tr>")
    localities = briefing.locality_rows(d)
    if localities:
        parts.append(
            "</table><h2>分地区（低保户数；年支出，万元）</h2><table><tr><th>地区</th><th>低保户 现行</th><th>改革后</th>"
            "<th>变化</th><th>年支出 现行</th><th>改革后</th><th>变化</th></tr>"
        )
        for p in localities:
            for r, indent in [(p, ""), *((c, "　") for c in p["counties"] if c["code"] != p["code"])]:
                parts.append(
                    f"<tr><td>{indent}{escape(r['name'])}</td><td>{r['baseline']:,}</td><td>{r['reform']:,}</td><td>{r['change']:+,}</td>"
                    f"<td>{r['baseline_cost']}</td><td>{r['reform_cost']}</td><td>{r['change_cost']}</td></tr>"
                )
    parts.append("</table><h2>受影响的户</h2><table><tr><th>项目</th><th>新纳入</th><th>退出</th><th>金额变化</th></tr>")
    for p in d["programs"]:
        code = p["code"]
        parts.append(
            f"<tr><td>{escape(p['name'])}</td><td>{d['gains'].get(code, 0)}</td><td>{d['losses'].get(code, 0)}</td>"
            f"<td>{d['amount_changes'].get(code, 0)}</td></tr>"
        )
    parts.append("</table>")
    if d.get("files", {}).get("gains_losses"):
        parts.append("<p>新纳入与退出的户（含户编号）见 gains_losses.csv；全部变化见 changes.parquet。</p>")
    parts.append("</body></html>")
    return "".join(parts)

"""A simulation's briefing as a policy officer reads it: a headline sentence, 万元 with separators,
statuses in Chinese, the breakdown by prefecture and county, and standards that are not configured.

Pure functions of ``SimulationResult.to_dict()`` (what ``summary.json`` and ``GET /v1/simulations/{id}``
hold), so the workbench page and any other reader say the same thing about the same run.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from engine.book.statuses import GRANTED
from engine.explain.report import STATUS
from engine.policies import localities

WAN = Decimal(10000)
PAYS_ZH = {"monthly": "每月", "annual": "每学年", "one_off": "一次性", "in_kind": "服务（每月折合）", "none": "不发放现金"}


def wan(yuan: str | Decimal | int, signed: bool = False) -> str:
    """``"7555000.00"`` -> ``"755.5"`` (万元, one decimal, thousands separated); a non-zero amount
    below 0.05 万元 reads ``"<0.1"`` rather than a misleading 0.0."""
    v = Decimal(str(yuan)) / WAN
    r = v.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    if r == 0 and v != 0:
        return ("+" if signed and v > 0 else "-" if v < 0 else "") + "<0.1"
    text = f"{abs(r):,.1f}"
    sign = "-" if r < 0 else "+" if signed and r > 0 else ""
    return sign + text


def status_zh(status: str) -> str:
    return STATUS.get(status, status)


def _unit(program: dict) -> str:
    return "人" if program.get("scope") == "member" else "户"


def _granted(counts: dict, which: str) -> int:
    return sum(counts.get(s, {}).get(which, 0) for s in GRANTED)


def _annual_change(c: dict) -> Decimal:
    if c["pays"] in ("monthly", "annual"):
        return Decimal(c["change_annual"])
    return Decimal(0)


def headline(d: dict) -> str:
    """One sentence: the program whose cost (else whose numbers) moved most, and the change in yearly spending.
    e.g. ``新增最低生活保障 223 户，年增支 755.5 万元``."""
    programs = d["programs"]
    net = {p["code"]: _granted(d["counts"][p["code"]], "reform") - _granted(d["counts"][p["code"]], "baseline") for p in programs}
    moved = [p for p in programs if net[p["code"]] or _annual_change(d["cost"].get(p["code"], {"pays": "none"}))]
    if not moved:
        return "改革后各救助项目的人数和支出均没有变化"
    top = max(moved, key=lambda p: (abs(_annual_change(d["cost"].get(p["code"], {"pays": "none"}))), abs(net[p["code"]])))
    n = net[top["code"]]
    parts = []
    if n:
        parts.append(f"{'新增' if n > 0 else '减少'}{top['name']} {abs(n):,} {_unit(top)}")
    else:
        parts.append(f"{top['name']}人数不变")
    total = Decimal(d["total_cost"]["change_annual"])
    if total:
        parts.append(f"年{'增支' if total > 0 else '减支'} {wan(abs(total))} 万元")
    else:
        parts.append("年支出不变")
    return "，".join(parts)


def count_rows(d: dict) -> list[dict]:
    """Households (or members) by program and status, before and after, statuses in Chinese; empty rows left out."""
    rows = []
    for p in d["programs"]:
        for status, v in d["counts"][p["code"]].items():
            if v["baseline"] or v["reform"]:
                rows.append(
                    {
                        "program": p["name"],
                        "unit": _unit(p),
                        "status": status,
                        "status_zh": status_zh(status),
                        "baseline": v["baseline"],
                        "reform": v["reform"],
                        "change": v["reform"] - v["baseline"],
                    }
                )
    return rows


def cost_rows(d: dict) -> list[dict]:
    """Spending per paying program in 万元; a program whose granted households have no amount (a standard
    not configured where they live) is flagged instead of being shown as a cost of 0."""
    names = {p["code"]: p for p in d["programs"]}
    unpriced = d.get("unpriced", {})
    rows = []
    for code, c in d["cost"].items():
        k = c["pays"]
        if k in ("monthly", "annual"):
            b, r, ch = c["baseline_annual"], c["reform_annual"], c["change_annual"]
        elif k == "one_off":
            b, r, ch = c["baseline_one_off"], c["reform_one_off"], c["change_one_off"]
        elif k == "in_kind":
            b, r, ch = (Decimal(c[f"{w}_monthly_services"]) * 12 for w in ("baseline", "reform", "change"))
        else:
            continue
        missing = unpriced.get(code, {})
        granted = _granted(d["counts"].get(code, {}), "baseline") + _granted(d["counts"].get(code, {}), "reform")
        if not granted and not Decimal(str(b)) and not Decimal(str(r)):
            continue
        p = names.get(code, {"name": code, "scope": "household"})
        rows.append(
            {
                "code": code,
                "program": p["name"],
                "pays": PAYS_ZH.get(k, k),
                "baseline": wan(b),
                "reform": wan(r),
                "change": wan(ch, signed=True),
                "rising": Decimal(str(ch)) > 0,
                "unpriced": max(missing.get("baseline", 0), missing.get("reform", 0)),
                "unit": _unit(p),
            }
        )
    return rows


def _locality_annual(progs: dict, which: str) -> Decimal:
    total = Decimal(0)
    for c in progs.values():
        amount = Decimal(c[f"{which}_amount"])
        if c["pays"] == "monthly":
            total += 12 * amount
        elif c["pays"] == "annual":
            total += amount
    return total


def _division_name(code: str) -> str:
    try:
        return localities.full_name(code)
    except localities.LocalityError:
        return code


def locality_rows(d: dict, program: str = "dibao") -> list[dict]:
    """By prefecture, then its counties: households granted ``program`` before and after, and the yearly
    spending of all paying programs (万元, excluding one-off aid as the total does)."""
    by = d.get("by_locality", {})
    pref: dict[str, dict] = {}
    for loc, progs in by.items():
        key = loc[:4] + "00" if len(loc) == 6 and loc.isdigit() else loc
        p = progs.get(program, {})
        row = {
            "code": loc,
            "name": _division_name(loc),
            "baseline": p.get("baseline", 0),
            "reform": p.get("reform", 0),
            "baseline_cost": _locality_annual(progs, "baseline"),
            "reform_cost": _locality_annual(progs, "reform"),
        }
        agg = pref.setdefault(
            key,
            {
                "code": key,
                "name": _division_name(key),
                "baseline": 0,
                "reform": 0,
                "baseline_cost": Decimal(0),
                "reform_cost": Decimal(0),
                "counties": [],
            },
        )
        for f in ("baseline", "reform", "baseline_cost", "reform_cost"):
            agg[f] += row[f]
        agg["counties"].append(row)
    out = []
    for key in sorted(pref):
        agg = pref[key]
        for r in [agg, *agg["counties"]]:
            r["change"] = r["reform"] - r["baseline"]
            r["change_cost"] = wan(r["reform_cost"] - r["baseline_cost"], signed=True)
            r["baseline_cost"], r["reform_cost"] = wan(r["baseline_cost"]), wan(r["reform_cost"])
        agg["counties"].sort(key=lambda r: r["code"])
        out.append(agg)
    return out

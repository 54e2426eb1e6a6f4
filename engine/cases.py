"""YAML test cases: a household plus the outcomes policy staff expect.

A case file looks like::

    defaults:                 # merged into every case's household
      locality: "210102"
      as_of: 2021-08-01
      area: urban
    cases:
      - name: 收入刚好等于低保标准
        household:
          members:
            - {id: p1, relation: head, birth_date: 1970-01-01, hukou_locality: "210102",
               incomes: [{type: wage, monthly: 672}]}
          assets: {financial: 0, properties: 1}
        expect:
          dibao: ineligible                       # status only
          dibao_edge: {status: eligible}
          tekun[p1]: {status: ineligible, monthly_amount: null}
          household.per_capita_income: "672.00"
          summary.monthly_total: "0.00"             # the household summary (paid/not_paid read as codes)
          rules:                                  # rule outcomes, by id (member rules as id[p1])
            dibao.income_below_standard: false

A case may instead expect an input error: ``expect: {error: members[0].birth_date}``.
"""

from __future__ import annotations

import copy
import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from .evaluate import Determination, Engine
from .model import InputError
from .text import to_id
from .yamlio import LineDict, YamlError, load_yaml


@dataclass
class Case:
    file: str
    line: int
    name: str
    household: dict
    expect: dict


@dataclass
class CaseResult:
    case: Case
    failures: list[str] = field(default_factory=list)
    determination: Determination | None = None

    @property
    def passed(self) -> bool:
        return not self.failures


def _plain(v: Any) -> Any:
    """YAML values -> JSON-like values (dates to text, decimals kept exact)."""
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_plain(x) for x in v]
    if isinstance(v, dt.date):
        return v.isoformat()
    if isinstance(v, Decimal):
        return format(v, "f")
    return v


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = v
    return out


def load_cases(path: Path) -> list[Case]:
    files = sorted(path.rglob("*.yaml")) if path.is_dir() else [path]
    cases: list[Case] = []
    for f in files:
        data = load_yaml(f, str(f))
        if not isinstance(data, LineDict) or not isinstance(data.get("cases"), list):
            raise YamlError(str(f), 1, "用例文件需要 cases 列表 / a case file needs a 'cases' list")
        defaults = _plain(data.get("defaults") or {})
        for i, c in enumerate(data["cases"]):
            if not isinstance(c, LineDict) or "name" not in c or "household" not in c or "expect" not in c:
                raise YamlError(
                    str(f),
                    data["cases"].line_of(i),
                    "每个用例需要 name、household、expect / each case needs name, household, expect",
                )
            household = _merge(defaults, _plain(c["household"]))
            household.setdefault("household_id", to_id(str(c["name"])))  # the name, in the id character set
            cases.append(Case(str(f), c.line, str(c["name"]), household, _plain(c["expect"])))
    return cases


def _show(v: Any) -> str:
    if v is None:
        return "null"
    return repr(v)


def check_case(engine: Engine, case: Case) -> CaseResult:
    result = CaseResult(case)
    expect = case.expect
    try:
        det = engine.evaluate(case.household)
    except InputError as e:
        wanted = expect.get("error") if isinstance(expect, dict) else None
        if wanted is None:
            result.failures.append(f"输入被拒绝 / input refused: {e}")
        elif not any(err.field == wanted for err in e.errors):
            result.failures.append(f"期望字段 {wanted} 报错，实际 / expected an error on {wanted}, got: {e}")
        return result
    result.determination = det
    if "error" in expect:
        result.failures.append(f"期望输入错误 {expect['error']}，但评估成功 / expected an input error")
        return result
    for key, want in expect.items():
        if key == "rules":
            _check_rules(det, want, result)
        elif key.startswith(("household.", "summary.")):
            section, rest = key.split(".", 1)
            got = _dig(det.get(section) or {}, rest)
            if got != want:
                result.failures.append(f"{key}: 期望 {_show(want)}，实际 {_show(got)}")
        else:
            _check_program(det, key, want, result)
    return result


def _split_key(key: str) -> tuple[str, str | None]:
    if key.endswith("]") and "[" in key:
        code, member = key[:-1].split("[", 1)
        return code, member
    return key, None


def _check_program(det: Determination, key: str, want: Any, result: CaseResult) -> None:
    code, member = _split_key(key)
    prog = det.program(code, member)
    if prog is None:
        if want in ("absent", {"status": "absent"}):
            return
        result.failures.append(f"{key}: 结果中没有该项目 / program not in the determination")
        return
    if isinstance(want, str):
        want = {"status": want}
    for field_name, value in want.items():
        if field_name == "missing":
            got = prog["missing"]
            for m in value if isinstance(value, list) else [value]:
                if m not in got:
                    result.failures.append(f"{key}.missing: 期望包含 {m!r}，实际 {got}")
        elif field_name == "text_contains":
            texts = " ".join(r["text"] for r in prog["reasons"])
            for frag in value if isinstance(value, list) else [value]:
                if frag not in texts:
                    result.failures.append(f"{key}: 说明中没有“{frag}” / no reason mentions {frag!r}")
        elif field_name == "links":
            got_links = [link.get("code") for link in prog.get("links", [])]
            if got_links != value:
                result.failures.append(f"{key}.links: 期望 {_show(value)}，实际 {_show(got_links)}")
        else:
            got = _dig(prog, field_name)
            if got != value:
                result.failures.append(f"{key}.{field_name}: 期望 {_show(value)}，实际 {_show(got)}")


def _dig(d: Any, path: str) -> Any:
    """``details.approval_level`` -> d["details"]["approval_level"]; a list of programs reads as their codes."""
    for part in path.split("."):
        if not isinstance(d, dict):
            return None
        d = d.get(part)
    if isinstance(d, list) and d and isinstance(d[0], dict) and "program" in d[0]:
        return [x["program"] if x.get("scope") == "household" else f"{x['program']}[{x['members'][0]}]" for x in d]
    return d


def _check_rules(det: Determination, want: dict, result: CaseResult) -> None:
    outcomes: dict[str, Any] = {}
    for r in det["household"]["reasons"]:
        k = f"{r['rule']}[{r['member']}]" if "member" in r else r["rule"]
        outcomes.setdefault(k, r["passed"])
    for p in det["programs"]:
        for r in p["reasons"]:
            k = f"{r['rule']}[{p['members'][0]}]" if p["scope"] == "member" else r["rule"]
            outcomes.setdefault(k, r["passed"])
    for rid, value in want.items():
        if rid not in outcomes:
            result.failures.append(f"rules.{rid}: 该规则未被检查 / rule was not checked")
        elif outcomes[rid] != value:
            result.failures.append(f"rules.{rid}: 期望 {_show(value)}，实际 {_show(outcomes[rid])}")


def run_cases(engine: Engine, path: Path) -> list[CaseResult]:
    return [check_case(engine, c) for c in load_cases(path)]

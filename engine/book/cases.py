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

from engine.book.rules import STATUSES, RuleBook
from engine.book.yamlio import LineDict, YamlError, load_yaml
from engine.executors.evaluate import Determination, Engine
from engine.schema.model import InputError
from engine.schema.text import to_id


@dataclass
class Case:
    file: str
    line: int
    name: str
    household: dict
    expect: dict
    # line of each expectation ("dibao", "rules.dibao.income_below_standard"), for errors in the case file
    lines: dict[str, int] = field(default_factory=dict)


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
            cases.append(Case(str(f), c.line, str(c["name"]), household, _plain(c["expect"]), _lines(c["expect"], c.line)))
    return cases


def _lines(expect: Any, default: int) -> dict[str, int]:
    if not isinstance(expect, LineDict):
        return {}
    lines = {k: expect.line_of(k) for k in expect}
    rules = expect.get("rules")
    if isinstance(rules, LineDict):
        lines.update({f"rules.{k}": rules.line_of(k) for k in rules})
    return lines


class CaseFileError(ValueError):
    """Expectations that can never be met as written (an unknown status, program or rule id): a mistake
    in the case file, reported with file and line before any case runs, rather than as a failing case."""

    def __init__(self, errors: list[YamlError]):
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))


_EXPECTED_STATUSES = (*STATUSES, "absent")


def case_errors(book: RuleBook, cases: list[Case]) -> list[YamlError]:
    """Every expectation naming a status, program or rule the rule book does not have."""
    codes = {p.code for p in book.programs}
    rule_ids = {s.id for p in book.programs for s in p.steps}
    if book.facts is not None:
        rule_ids |= {s.id for s in book.facts.steps}
    errors: list[YamlError] = []
    for case in cases:
        expect = case.expect if isinstance(case.expect, dict) else {}

        def err(key: str, zh: str, en: str, case: Case = case) -> None:
            errors.append(YamlError(case.file, case.lines.get(key, case.line), f"{zh} / {en}"))

        for key, want in expect.items():
            if key == "error" or key.startswith(("household.", "summary.")):
                continue
            if key == "rules":
                for rid, value in (want if isinstance(want, dict) else {}).items():
                    if _split_key(rid)[0] not in rule_ids:
                        err(f"rules.{rid}", f"未知的规则 {rid}", f"unknown rule id {rid!r}")
                    elif not isinstance(value, bool):
                        err(f"rules.{rid}", f"规则 {rid} 的期望应为 true 或 false", f"rule {rid!r} expects true or false")
                continue
            code = _split_key(key)[0]
            if code not in codes:
                err(key, f"未知的项目 {code}（可选：{', '.join(sorted(codes))}）", f"unknown program {code!r}")
                continue
            status = want if isinstance(want, str) else want.get("status") if isinstance(want, dict) else None
            if status is not None and status not in _EXPECTED_STATUSES:
                err(
                    key,
                    f"未知的状态 {status}（可选：{', '.join(_EXPECTED_STATUSES)}）",
                    f"unknown status {status!r}",
                )
    return errors


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
    cases = load_cases(path)
    errors = case_errors(engine.book, cases)
    if errors:
        raise CaseFileError(errors)
    return [check_case(engine, c) for c in cases]

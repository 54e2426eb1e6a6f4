"""Reference data: localities, the parameters in force, programs and their rules, as plain dicts.

What a caseworker or policy officer browses to see why; the routes (api/routes/reference.py) only
parse the path and query and return these. Refusals are ``ApiError``s (404 unknown, 422 malformed).
"""

from __future__ import annotations

import datetime as dt
import re

from api.core.errors import ApiError, not_found
from engine.book.rules import RuleBook
from engine.expr.runtime import Missing
from engine.policies import localities
from engine.policies.parameters import PolicyStore
from engine.schema.money import fmt_money, fmt_number

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _ref(code: str) -> dict:
    return {"code": code, "name": localities.full_name(code)}


def _short_name(code: str) -> str:
    try:
        return localities.division(code).name
    except localities.LocalityError:  # a level missing from the code table
        return code


def _division(code: str):
    try:
        return localities.division(code)
    except localities.LocalityError as e:
        if not isinstance(code, str) or not re.fullmatch(r"\d{6}", code):
            raise ApiError(422, "code", e.zh, e.en, "locality") from None
        raise not_found("code", e.zh, e.en) from None


def list_localities(store: PolicyStore) -> list[dict]:
    out = []
    for code in sorted(store.files):
        d = localities.division(code)
        out.append(
            {
                "code": code,
                "name": store.names.get(code, d.name),
                "full_name": localities.full_name(code),
                "level": d.level,
                "document": store.documents.get(code, ""),
                "chain": [_ref(c) for c in store.chain(code)],
            }
        )
    return out


def locality(store: PolicyStore, code: str) -> dict:
    d = _division(code)
    return {
        "code": code,
        "name": d.name,
        "full_name": localities.full_name(code),
        "level": d.level,
        "ancestors": [{"code": c, "name": _short_name(c)} for c in localities.ancestors(code)],
        "chain": [_ref(c) for c in store.chain(code)],
        "has_policy_file": code in store.files,
    }


def _value(v, unit: str | None):
    if v.__class__ is Missing:
        return None
    if isinstance(v, bool | int):
        return v
    if isinstance(v, frozenset):
        return sorted(v)
    if unit and unit.startswith("元"):
        return fmt_money(v)
    return fmt_number(v)


def parameters(store: PolicyStore, code: str, date: str | None) -> dict:
    """Every parameter in force at ``code`` on ``date`` (YYYY-MM-DD; None: today)."""
    _division(code)
    if date is None:
        on = dt.date.today()
    else:
        try:
            if not _DATE_RE.match(date):
                raise ValueError
            on = dt.date.fromisoformat(date)
        except ValueError:
            raise ApiError(422, "date", "日期格式应为 YYYY-MM-DD", "date must be YYYY-MM-DD", "date") from None
    ps = store.resolve(code, on)
    params = []
    for key in store.schema:
        r = ps.info[key]
        params.append(
            {
                "key": key,
                "label": r.label,
                "value": _value(r.value, r.unit),
                "display": r.display(),
                "unit": r.unit,
                "configured": r.configured,
                "level": r.level,
                "level_name": localities.full_name(r.level) if r.level else None,
                "effective_from": r.start.isoformat() if r.start else None,
                "source": r.source,
                "note": r.note,
                "project_default": r.project_default,
                "formula": r.formula,
                "original": r.original,
            }
        )
    return {
        "locality": code,
        "name": localities.full_name(code),
        "date": on.isoformat(),
        "chain": [_ref(c) for c in ps.chain],
        "parameters": params,
    }


def programs(book: RuleBook) -> list[dict]:
    return [
        {"code": p.code, "name": p.name, "scope": p.scope, "basis": p.basis, "rules": len(p.rule_ids), "file": p.file}
        for p in book.programs
    ]


def _src(tpl) -> str | None:
    return tpl.source if tpl is not None else None


def _rule(s, facts: dict) -> dict:
    shown = facts.get(s.id, s) if s.kind == "use" else s
    return {
        "id": s.id,
        "title": shown.title,
        "kind": s.kind,
        "scope": s.scope,
        "gate": s.gate,
        "citation": shown.citation,
        "text_pass": _src(shown.text_pass),
        "text_fail": _src(shown.text_fail),
        "text": _src(shown.text),
        "project_default": shown.project_default,
        "file": shown.file,
        "line": shown.line,
    }


def program_rules(book: RuleBook, code: str) -> dict:
    """A program's rules (``household``: the shared household facts); 404 for an unknown program."""
    facts = {s.id: s for s in book.facts.steps} if book.facts else {}
    if code == "household" and book.facts:
        return {
            "code": "household",
            "name": "家庭共同事实（计入成员、收入、财产、户籍）",
            "scope": "household",
            "basis": "",
            "file": book.facts.file,
            "rules": [_rule(s, facts) for s in book.facts.steps if s.listed],
            "decision": [],
        }
    prog = book.program(code)
    if prog is None:
        raise not_found("code", f"未知的救助项目 {code}", f"unknown program {code}")
    return {
        "code": prog.code,
        "name": prog.name,
        "scope": prog.scope,
        "basis": prog.basis,
        "file": prog.file,
        "rules": [_rule(s, facts) for s in prog.steps if s.kind != "let"],
        "decision": [{"status": c.status, "text": _src(c.text), "line": c.line} for c in prog.decision],
    }

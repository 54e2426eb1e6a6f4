"""The 新建评估 form as data: posted fields <-> a household record (docs/contract.md), and errors by field.

Every input is named by the contract's own path (``members[1].birth_date``), so an error the validator
reports for a path lands beside the input of that name. The posted values are kept as typed, in a
tree of strings (``FormTree``), and the page is re-rendered from that tree: nothing typed is lost. Only
``to_household`` turns the tree into a record; everything it cannot judge it passes on as typed, for
the validator the API uses (engine.schema.validate) to refuse with its own message.
"""

from __future__ import annotations

import re
from itertools import pairwise
from typing import Any

from engine.book.templates import LABELS
from engine.explain.report import RELATIONS as RELATION_LABELS
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

FormTree = dict[str, Any]  # str | list[str] leaves, dicts, lists of dicts

# Where one code means different things in different fields, the field's own word (docs/contract.md).
_OWN_LABELS: dict[str, dict[str, str]] = {
    "relation": {**RELATION_LABELS, "grandparent": "（外）祖父母", "grandchild": "（外）孙子女", "other": "其他"},
    "sex": {"male": "男", "female": "女"},
    "self_care": {"none": "完全失能"},
    "schooling": {"none": "未在学"},
    "supporters": {"none": "无法定赡养（抚养、扶养）义务人", "unable": "有义务人但无能力", "able": "有义务人且有能力"},
    "parents.status": {"deceased": "死亡", "severe_disability": "重度残疾", "serious_illness": "重病"},
    "events.type": HOUSEHOLD_EVENT_LABELS,
    "rigid_expenses.type": {"other": "其他支出"},
    "disability.grade": {"1": "一级", "2": "二级", "3": "三级", "4": "四级"},
}
_VOCAB: dict[str, tuple[str, ...]] = {
    "area": AREAS,
    "relation": RELATIONS,
    "sex": SEXES,
    "disability.category": DISABILITY_CATEGORIES,
    "disability.grade": ("1", "2", "3", "4"),
    "self_care": SELF_CARE,
    "schooling": SCHOOLING,
    "status": MEMBER_STATUSES,
    "supporters": SUPPORTERS,
    "parents.status": PARENT_STATUSES,
    "incomes.type": INCOME_TYPES,
    "rigid_expenses.type": EXPENSE_TYPES,
    "current_benefits": PROGRAM_CODES,
    "events.type": HOUSEHOLD_EVENT_TYPES,
}


def label(field: str, code: str) -> str:
    return _OWN_LABELS.get(field, {}).get(code) or LABELS.get(code) or code


# field -> [(code, 中文)], in the vocabulary's order: the form offers exactly what the validator accepts.
CHOICES: dict[str, list[tuple[str, str]]] = {f: [(c, label(f, c)) for c in codes] for f, codes in _VOCAB.items()}

# Rows a caseworker adds and removes, and the fields of a blank one.
ROWS: dict[str, tuple[str, ...]] = {
    "members": ("relation", "id_number", "birth_date", "sex", "hukou_locality"),
    "incomes": ("type", "monthly"),
    "rigid_expenses": ("type", "monthly"),
    "current_amounts": ("program", "monthly"),
    "events": ("type", "date", "loss", "locality"),
}

_SEGMENT = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?:\[(\d{1,3})\])?")
_SIMPLE_MEMBER = ("relation", "birth_date", "sex", "hukou_locality", "self_care", "schooling", "supporters")
_FLAGS = ("serious_illness", "employed")
MAX_ROWS = 60  # a little above the contract's bounds (50 members, 50 incomes): the validator says the rest


def parse_path(name: str) -> list[str | int] | None:
    """``members[1].incomes[0].type`` -> ["members", 1, "incomes", 0, "type"]; None for any other name."""
    out: list[str | int] = []
    for part in name.split("."):
        m = _SEGMENT.fullmatch(part)
        if m is None:
            return None
        out.append(m.group(1))
        if m.group(2) is not None:
            index = int(m.group(2))
            if index >= MAX_ROWS:
                return None
            out.append(index)
    return out


def tree_from_form(form: dict[str, list[str]]) -> FormTree:
    """The posted fields as a tree; rows in index order and renumbered from 0 (a removed row leaves no gap)."""
    raw: dict = {}
    for name, values in form.items():
        path = parse_path(name)
        if not path or not isinstance(path[0], str) or path[0] in ("csrf_token", "action"):
            continue
        node = raw
        for key, nxt in pairwise(path):
            node = node.setdefault(key, {} if isinstance(nxt, str) else {"__rows__": {}})
            if not isinstance(node, dict) or isinstance(nxt, int) != ("__rows__" in node):
                break  # a name that clashes with another's shape ("members" and "members[0].id"): ignored
            if isinstance(nxt, int):
                node = node["__rows__"]
        else:
            leaf = path[-1]
            if isinstance(leaf, str) and not isinstance(node.get(leaf), dict):
                node[leaf] = values if len(values) > 1 or leaf in ("status", "current_benefits") else values[0]
    return _compact(raw)


def _compact(node: Any) -> Any:
    if isinstance(node, dict):
        if "__rows__" in node:
            return [_compact(node["__rows__"][i]) for i in sorted(node["__rows__"])]
        return {k: _compact(v) for k, v in node.items()}
    return node


def text_of(v: Any) -> str:
    """A posted value as stripped text ("" for none)."""
    return _s(v)


def _s(v: Any) -> str:
    if isinstance(v, list):
        v = v[0] if v else ""
    return v.strip() if isinstance(v, str) else ""


def _blank(row: Any) -> bool:
    if isinstance(row, dict):
        return all(_blank(v) for v in row.values())
    if isinstance(row, list):
        return all(_blank(v) for v in row)
    return _s(row) == ""


def _rows(tree: FormTree, key: str) -> list[dict]:
    rows = tree.get(key)
    return [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []


def normalise(tree: FormTree) -> FormTree:
    """Drop blank sub-rows (an income row left empty is no income), so that the record's indices and the
    re-rendered form's are the same and an error's path names the row the caseworker sees."""
    out = dict(tree)
    for key in ("rigid_expenses", "current_amounts", "events"):
        out[key] = [r for r in _rows(tree, key) if not _blank(r)]
    members = []
    for m in _rows(tree, "members"):
        m = dict(m)
        m["incomes"] = [r for r in _rows(m, "incomes") if not _blank(r)]
        m["parents"] = [r for r in _rows(m, "parents") if not _blank(r)]
        members.append(m)
    out["members"] = members
    return out


def _number(text: str) -> int | str:
    """A whole number as typed; anything else as typed, for the validator to refuse by name."""
    return int(text) if text.isdigit() and len(text) < 10 else text


def to_household(tree: FormTree) -> tuple[dict, list[dict]]:
    """The household record of a normalised tree, and the errors of the form's own fields (vehicle counts)."""
    own: list[dict] = []
    h: dict[str, Any] = {}
    for key in ("household_id", "locality", "as_of", "area"):
        if _s(tree.get(key)):
            h[key] = _s(tree.get(key))
    h["members"] = [_member(i, m) for i, m in enumerate(_rows(tree, "members"))]
    assets = tree.get("assets") if isinstance(tree.get("assets"), dict) else {}
    if not _blank(assets):
        a: dict[str, Any] = {}
        if _s(assets.get("financial")):
            a["financial"] = _s(assets.get("financial"))
        if _s(assets.get("properties")):
            a["properties"] = _number(_s(assets.get("properties")))
        a["vehicles"] = _vehicles(assets, own)
        h["assets"] = a
    h["rigid_expenses"] = [_typed_row(r, ("type", "monthly")) for r in _rows(tree, "rigid_expenses")]
    benefits = tree.get("current_benefits")
    h["current_benefits"] = [v for v in (benefits if isinstance(benefits, list) else [benefits]) if _s(v)]
    amounts = {_s(r.get("program")) or "(未选择项目)": _s(r.get("monthly")) for r in _rows(tree, "current_amounts")}
    if amounts:
        h["current_amounts"] = amounts
    h["events"] = [_typed_row(r, ("type", "date", "loss", "locality")) for r in _rows(tree, "events")]
    return h, own


def _typed_row(row: dict, keys: tuple[str, ...]) -> dict:
    return {k: _s(row.get(k)) for k in keys if _s(row.get(k))}


def _vehicles(assets: dict, own: list[dict]) -> list[dict]:
    counts = []
    for key, zh in (("vehicle_count", "车辆数"), ("vehicle_exempt", "其中生活必需车辆数")):
        text = _s(assets.get(key)) or "0"
        if not text.isdigit() or int(text) > 50:
            own.append(_own_error(f"assets.{key}", f"{zh}应为0至50的整数"))
            text = "0"
        counts.append(int(text))
    total, exempt = counts
    if exempt > total:
        own.append(_own_error("assets.vehicle_exempt", "生活必需车辆数不能多于车辆总数"))
        exempt = total
    return [{"exempt": True}] * exempt + [{"exempt": False}] * (total - exempt)


def _own_error(field: str, zh: str) -> dict:
    return {"field": field, "message_zh": zh, "code": "invalid"}


def _member(i: int, m: dict) -> dict:
    out: dict[str, Any] = {"id": f"p{i + 1}"}
    for key in _SIMPLE_MEMBER:
        if _s(m.get(key)):
            out[key] = _s(m.get(key))
    id_number = re.sub(r"\s+", "", _s(m.get("id_number"))).upper()
    if id_number:
        out["id_number"] = id_number
    for key in _FLAGS:
        if _s(m.get(key)):
            out[key] = True
    status = m.get("status")
    status = [v for v in (status if isinstance(status, list) else [status]) if _s(v)]
    if status:
        out["status"] = status
    dis = m.get("disability") if isinstance(m.get("disability"), dict) else {}
    if not _blank(dis):
        out["disability"] = {
            k: v for k, v in (("category", _s(dis.get("category"))), ("grade", _number(_s(dis.get("grade"))))) if v != ""
        }
    parents = [{"status": _s(p.get("status"))} for p in _rows(m, "parents") if _s(p.get("status"))]
    if parents:
        out["parents"] = parents
    incomes = [_typed_row(r, ("type", "monthly")) for r in _rows(m, "incomes")]
    if incomes:
        out["incomes"] = incomes
    return out


# -- actions without JavaScript: add or remove a row, re-render -----------------------------------------


def apply_action(tree: FormTree, action: str) -> bool:
    """``add:members``, ``add:members[0].incomes``, ``remove:events[1]``: change the tree in place.
    False for anything else (the form is then evaluated)."""
    verb, _, target = action.partition(":")
    path = parse_path(target) if verb in ("add", "remove") else None
    if not path:
        return False
    if verb == "add":
        if not isinstance(path[-1], str) or path[-1] not in ROWS:
            return False
        parent = _walk(tree, path[:-1])
        if not isinstance(parent, dict):
            return False
        rows = parent.setdefault(path[-1], [])
        if isinstance(rows, list) and len(rows) < MAX_ROWS - 1:
            rows.append(new_row(path[-1], tree))
        return True
    if not isinstance(path[-1], int):
        return False
    rows = _walk(tree, path[:-1])
    if isinstance(rows, list) and 0 <= path[-1] < len(rows):
        rows.pop(path[-1])
    return True


def _walk(node: Any, path: list) -> Any:
    for key in path:
        if isinstance(key, int):
            node = node[key] if isinstance(node, list) and key < len(node) else None
        else:
            node = node.get(key) if isinstance(node, dict) else None
    return node


def new_row(kind: str, tree: FormTree) -> dict:
    row: dict[str, Any] = dict.fromkeys(ROWS[kind], "")
    if kind == "members":
        # most members are registered where the household applies; the caseworker changes it if not
        row["hukou_locality"] = _s(tree.get("locality"))
        row["incomes"] = []
        row["parents"] = []
    return row


def blank_tree(locality: str, as_of: str) -> FormTree:
    tree: FormTree = {"household_id": "", "locality": locality, "as_of": as_of, "area": "urban"}
    tree["members"] = [{**new_row("members", tree), "relation": "head"}]
    tree["assets"] = {}
    tree["rigid_expenses"] = []
    tree["current_amounts"] = []
    tree["events"] = []
    tree["current_benefits"] = []
    return tree


# -- errors beside their fields -------------------------------------------------------------------------

_GROUP = re.compile(r"^(.*?)(\[\d+\])?$")


def field_names(tree: FormTree) -> set[str]:
    """Every input (and row group) the form shows for this tree: where an error may be shown."""
    names = {
        "household_id",
        "locality",
        "as_of",
        "area",
        "members",
        "rigid_expenses",
        "events",
        "current_benefits",
        "current_amounts",
        "assets.financial",
        "assets.properties",
        "assets.vehicle_count",
        "assets.vehicle_exempt",
    }
    for i, m in enumerate(_rows(tree, "members")):
        p = f"members[{i}]"
        names |= {
            f"{p}.{k}"
            for k in (
                *_SIMPLE_MEMBER,
                *_FLAGS,
                "id_number",
                "status",
                "incomes",
                "parents",
                "disability.category",
                "disability.grade",
            )
        }
        names |= {f"{p}.parents[{j}].status" for j in range(2)}
        names |= {f"{p}.incomes[{j}].{k}" for j in range(len(_rows(m, "incomes"))) for k in ("type", "monthly")}
    for key, fields in (
        ("rigid_expenses", ("type", "monthly")),
        ("events", ROWS["events"]),
        ("current_amounts", ("program", "monthly")),
    ):
        names |= {f"{key}[{j}].{k}" for j in range(len(_rows(tree, key))) for k in fields}
    return names


def place_errors(errors: list[dict], tree: FormTree) -> tuple[dict[str, list[str]], list[dict]]:
    """Errors by the input they belong beside, and those that belong to no input (shown above the form).
    A path deeper than any input (``members[0].disability``, ``assets.vehicles[2].exempt``) goes to the
    nearest input or row group that holds it."""
    known = field_names(tree)
    amounts = {_s(r.get("program")): j for j, r in enumerate(_rows(tree, "current_amounts"))}
    by_field: dict[str, list[str]] = {}
    loose: list[dict] = []
    for e in errors:
        name = _input_for(e["field"], known, amounts)
        if name is None:
            loose.append(e)
        else:
            by_field.setdefault(name, []).append(e["message_zh"])
    return by_field, loose


def _input_for(path: str, known: set[str], amounts: dict[str, int]) -> str | None:
    if path.startswith("assets.vehicles"):
        return "assets.vehicle_count"
    if path.startswith("current_amounts."):
        j = amounts.get(path.split(".", 1)[1])
        return f"current_amounts[{j}].monthly" if j is not None else "current_amounts"
    if path == "assets":
        return "assets.financial"
    candidates = [path, path + ".category", path + "[0].status"]
    while path:
        candidates.append(path)
        head, index = _GROUP.match(path).groups()
        if index:  # members[0].status[1] -> members[0].status
            path = head
            continue
        path = path.rpartition(".")[0]
    return next((c for c in candidates if c in known), None)


def dom_id(name: str) -> str:
    """An element id for an input name (``members[1].birth_date`` -> ``f-members-1-birth_date``)."""
    return "f-" + re.sub(r"[^A-Za-z0-9_]+", "-", name).strip("-")

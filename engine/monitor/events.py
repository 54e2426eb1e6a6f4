"""The monitoring event vocabulary (动态监测事件) and its validation.

An event is one dated fact about a household (and usually one member of it):
income changed, a job found or lost, an illness, a hospitalisation, a disaster...
Events arrive one by one (``POST /v1/events``) or as JSON lines
(``jiuzhu monitor replay``). Each is validated here, field by field, and refused
whole with the field named in Chinese and English, as households are.

Checks that need the household's stored record (is ``member`` in the household?
is the household registered?) are made when the event is applied
(``engine.monitor.apply``), with the same kind of error.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from engine.schema.masking import pseudonym
from engine.schema.model import FieldError, InputError
from engine.schema.validate import _ABSENT, _Validator
from engine.schema.vocab import DISABILITY_CATEGORIES, INCOME_TYPES, PROGRAM_CODES, RELATIONS, SCHOOLING, SEXES

CHINA = dt.timezone(dt.timedelta(hours=8))

# type -> (Chinese name, {field: (kind, required)}); kinds are checked by _field below.
# ``member`` names an existing member (a new one for birth / member_moved_in).
EVENT_TYPES: dict[str, tuple[str, dict[str, tuple[str, bool]]]] = {
    "register": ("纳入监测（登记或更新家庭记录）", {"household": ("household", True)}),
    "income_change": (
        "收入变化",
        {"member": ("member", True), "income_type": ("income_type", True), "monthly": ("money", True)},
    ),
    "job_found": ("就业", {"member": ("member", True), "monthly": ("money", False)}),
    "job_lost": ("失业", {"member": ("member", True)}),
    "illness_diagnosed": ("确诊重病", {"member": ("member", True), "cost": ("money", False)}),
    "hospitalisation": ("住院", {"member": ("member", True), "cost": ("money", True), "days": ("days", False)}),
    "disability_certified": (
        "残疾认定",
        {"member": ("member", True), "category": ("disability_category", True), "grade": ("grade", True)},
    ),
    "disability_regraded": (
        "残疾等级调整",
        {"member": ("member", True), "category": ("disability_category", True), "grade": ("grade", True)},
    ),
    "disaster": ("遭受灾害", {"member": ("member", False), "cause": ("disaster_cause", False), "loss": ("money", True)}),
    "accident": ("遭遇意外事故", {"member": ("member", False), "cause": ("accident_cause", False), "loss": ("money", True)}),
    "death": ("死亡", {"member": ("member", True)}),
    "birth": (
        "出生",
        {
            "member": ("member", True),
            "sex": ("sex", False),
            "relation": ("relation", False),
            "hukou_locality": ("locality", False),
        },
    ),
    "school_enrolled": ("入学", {"member": ("member", True), "schooling": ("schooling", True)}),
    "school_left": ("离校（毕业或辍学）", {"member": ("member", True)}),
    "member_moved_in": ("成员迁入", {"member": ("member", False), "member_record": ("member_record", True)}),
    "member_moved_out": ("成员迁出", {"member": ("member", True)}),
    "benefit_started": ("开始享受救助", {"member": ("member", False), "program": ("program", True), "monthly": ("money", False)}),
    "benefit_stopped": ("停止享受救助", {"member": ("member", False), "program": ("program", True)}),
    "review_completed": ("定期核查完成", {}),
    "tick": ("时钟推进（按日期检查到期事项）", {}),
}
COMMON_FIELDS = frozenset({"household_id", "type", "date", "event_id", "note"})
DISASTER_CAUSES = ("fire", "flood", "natural_disaster", "epidemic", "other_emergency")
ACCIDENT_CAUSES = ("traffic_accident", "accident")
CAUSE_LABELS = {
    "fire": "火灾",
    "flood": "洪涝灾害",
    "natural_disaster": "自然灾害",
    "epidemic": "疫情",
    "other_emergency": "其他突发事件",
    "traffic_accident": "交通事故",
    "accident": "意外事故",
}

_ENUMS = {
    "income_type": frozenset(INCOME_TYPES),
    "disability_category": frozenset(DISABILITY_CATEGORIES),
    "disaster_cause": frozenset(DISASTER_CAUSES),
    "accident_cause": frozenset(ACCIDENT_CAUSES),
    "sex": frozenset(SEXES),
    "relation": frozenset(RELATIONS),
    "schooling": frozenset(s for s in SCHOOLING if s != "none"),
    "program": frozenset(PROGRAM_CODES),
}
_TYPES = frozenset(EVENT_TYPES)


@dataclass(slots=True)
class Event:
    """A validated event. ``data`` holds the type's own fields (money as mpq)."""

    household_id: str
    type: str
    date: dt.date
    event_id: str | None
    member: str | None
    data: dict[str, Any] = field(default_factory=dict)
    note: str | None = None
    raw: dict = field(default_factory=dict)  # as received (for storage, ID numbers masked there)

    @property
    def label(self) -> str:
        return EVENT_TYPES[self.type][0]


def today() -> dt.date:
    """Today in China (events dated after it are refused)."""
    return dt.datetime.now(CHINA).date()


def _error(field: str, zh: str, en: str, code: str = "invalid") -> FieldError:
    return FieldError(field=field, message=f"{field}: {zh} ({en})", message_zh=zh, message_en=en, code=code)


def refuse(field: str, zh: str, en: str, code: str = "invalid") -> InputError:
    return InputError([_error(field, zh, en, code)])


def parse_event(data: Any, prefix: str = "", latest: dt.date | None = None) -> Event:
    """Validate one event (a dict); raise ``InputError`` naming every bad field (``prefix`` + field)."""
    v = _Validator()
    p = (prefix + ".") if prefix else ""
    d = v.obj(data, prefix, None)
    if d is None:
        raise InputError(v.e.items)
    et = v.required(d, "type", prefix)
    if et is not _ABSENT:
        et = v.enum(et, p + "type", _TYPES)
    else:
        et = None
    spec = EVENT_TYPES[et][1] if et else {}
    if et:
        allowed = COMMON_FIELDS | set(spec)
        for k in d:
            if k not in allowed:
                v.e.add(p + str(k), f"事件类型 {et} 不允许此字段（请检查拼写）", f"unknown field for an event of type {et}", "extra_forbidden")
    hid = v.required(d, "household_id", prefix)
    hid = v.ident(hid, p + "household_id", 128) if hid is not _ABSENT else None
    raw_date = v.required(d, "date", prefix)
    date = v.date(raw_date, p + "date") if raw_date is not _ABSENT else None
    limit = latest or today()
    if date is not None and date > limit:
        v.e.add(p + "date", f"事件日期晚于今天（{limit.isoformat()}）", f"event date is after today ({limit.isoformat()})")
    event_id = d.get("event_id")
    if event_id is not None:
        event_id = v.ident(event_id, p + "event_id", 128)
    note = d.get("note")
    if note is not None:
        note = v.text(note, p + "note", 0, 500)
    out: dict[str, Any] = {}
    for name, (kind, required) in spec.items():
        value = d.get(name, _ABSENT)
        if value is _ABSENT or value is None:
            if required:
                v.e.add(p + name, f"事件类型 {et} 需要此字段", f"required for an event of type {et}", "missing")
            continue
        out[name] = _field(v, kind, value, p + name)
    if v.e.items:
        raise InputError(v.e.items)
    member = out.pop("member", None)
    if et == "member_moved_in":
        rec_id = out["member_record"].get("id")
        if member is not None and member != rec_id:
            raise refuse(p + "member", "应与 member_record.id 相同", "must equal member_record.id")
        member = rec_id
        if not isinstance(member, str):
            raise refuse(p + "member_record.id", "缺少必填字段", "field required", "missing")
    return Event(hid, et, date, event_id, member, out, note, d)


def _field(v: _Validator, kind: str, value: Any, path: str) -> Any:
    if kind == "member":
        return v.ident(value, path, 64)
    if kind == "money":
        return v.money(value, path)
    if kind == "locality":
        return v.locality(value, path)
    if kind == "grade":
        return v.int_(value, path, 1, 4)
    if kind == "days":
        return v.int_(value, path, 1, 3650)
    if kind in _ENUMS:
        return v.enum(value, path, _ENUMS[kind])
    if kind in ("household", "member_record"):
        return v.obj(value, path, None)  # validated as a household when applied
    raise AssertionError(kind)


# Lengths of the columns the ids end in (api/storage/models.py): a pseudonym is longer than the id.
_ID_LIMITS = {"household_id": 128, "event_id": 128, "member": 64, "id": 64}


def _pseudonymous_json(value: Any, secret: bytes, key: str | None = None) -> Any:
    if isinstance(value, str):
        # ``id_number`` is validated as an ID number, then dropped from the record (engine.monitor.apply)
        return value if key == "id_number" else pseudonym(value, secret, _ID_LIMITS.get(key or ""))
    if isinstance(value, dict):
        return {pseudonym(k, secret) if isinstance(k, str) else k: _pseudonymous_json(v, secret, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_pseudonymous_json(v, secret, key if key == "id_number" else None) for v in value]
    return value


def pseudonymous(ev: Event, secret: bytes) -> Event:
    """``ev`` with every resident ID number in its ids and texts masked and tagged (``engine.schema.masking.pseudonym``).

    The monitor works on this form only: the households, members, event keys and alerts it stores
    hold no ID number, and two ids that mask alike stay two. The same id gives the same form in every
    event, process and replay, so later events find what earlier ones stored.
    """
    data = ev.data
    if any(k in data for k in ("household", "member_record")):
        data = {k: _pseudonymous_json(v, secret) if k in ("household", "member_record") else v for k, v in data.items()}
    return Event(
        household_id=pseudonym(ev.household_id, secret, _ID_LIMITS["household_id"]),
        type=ev.type,
        date=ev.date,
        event_id=pseudonym(ev.event_id, secret, _ID_LIMITS["event_id"]) if ev.event_id is not None else None,
        member=pseudonym(ev.member, secret, _ID_LIMITS["member"]) if ev.member is not None else None,
        data=data,
        note=pseudonym(ev.note, secret) if ev.note is not None else None,
        raw=_pseudonymous_json(ev.raw, secret),
    )


def parse_events(items: Any, field_name: str = "events") -> list[Event]:
    """A list of events, each validated; every bad field of every event is named (``events[3].date``)."""
    if not isinstance(items, list):
        raise refuse(field_name, "应为数组", "must be an array", "list_type")
    out: list[Event] = []
    errors: list[FieldError] = []
    latest = today()
    for i, item in enumerate(items):
        try:
            out.append(parse_event(item, f"{field_name}[{i}]", latest))
        except InputError as e:
            errors.extend(e.errors)
    if errors:
        raise InputError(errors)
    return out


def vocabulary() -> list[dict]:
    """The event types and their fields, for the documentation and ``GET /v1/events/types``."""
    return [
        {"type": t, "name": name, "fields": {f: {"kind": k, "required": r} for f, (k, r) in spec.items()}}
        for t, (name, spec) in EVENT_TYPES.items()
    ]

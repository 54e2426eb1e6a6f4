"""Validate a household record and turn it into the facts the rules read, in one pass.

This is the runtime validator for the library, the CLI, the HTTP service and
batch runs. What it checks comes from the record's declaration
(engine.schema.record): the keys of each record, the vocabularies, the bounds, the
cross-field checks and the facts each field fills. The pass over the fields the
service has always had is written out, with the common case inline: validating a
household is on the hot path of every evaluation, and this pass is several times
faster than a general model validator on this machine. A field declared since is
checked by the general pass (``_Validator.field``) from its declaration alone;
a property test keeps this validator and the models generated from the same
declaration (engine.schema.model) in agreement. Every error names its field
(``members[1].birth_date``) and says what is wrong in Chinese and English; input
is refused whole.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

import orjson
from gmpy2 import mpq

from engine.book.templates import LABELS
from engine.expr.runtime import Missing
from engine.policies import localities
from engine.schema import record as R
from engine.schema.facts import member_missing
from engine.schema.model import FieldError, InputError
from engine.schema.money import MAX_YUAN, MoneyError, parse_money, parse_money_fast
from engine.schema.record import MAX_EVENT_EXTRAS, MAX_INT, MAX_MEMBERS, MAX_TEXT
from engine.schema.text import ID_EN, ID_RE, ID_ZH, TEXT_EN, TEXT_ZH, has_control

_H = R.RECORDS["household"]
_M = R.RECORDS["member"]


def _values(record: str, name: str) -> frozenset[str]:
    return frozenset(R.RECORDS[record].get(name).values)


def _hi(record: str, name: str) -> int:
    return R.RECORDS[record].get(name).hi


# Vocabularies and bounds of the fields written out below, from the declaration
_AREAS = _values("household", "area")
_RELATIONS = _values("member", "relation")
_SEXES = _values("member", "sex")
_CATEGORIES = _values("disability", "category")
_SELF_CARE = _values("member", "self_care")
_SCHOOLING = _values("member", "schooling")
_STATUSES = _values("member", "status")
_SUPPORTERS = _values("member", "supporters")
_PARENT = _values("parent", "status")
_INCOMES = _values("income", "type")
_EXPENSES = _values("expense", "type")
_PROGRAMS = _values("household", "current_amounts")
_EVENT_TYPE = R.RECORDS["event"].get("type")
_EVENT_TYPES = frozenset(_EVENT_TYPE.values)
_EVENT_CHOICES = "、".join(f"{t}（{_EVENT_TYPE.labels[t]}）" for t in _EVENT_TYPE.values)
_GRADE = R.RECORDS["disability"].get("grade")
_PROPERTIES = R.RECORDS["assets"].get("properties")
_HID_MAX, _MID_MAX = _hi("household", "household_id"), _hi("member", "id")
_STATUS_MAX, _PARENTS_MAX, _INCOMES_MAX, _TAGS_MAX = (_hi("member", n) for n in ("status", "parents", "incomes", "tags"))
_MBENEFITS_MAX, _BENEFITS_MAX = _hi("member", "current_benefits"), _hi("household", "current_benefits")
_VEHICLES_MAX, _RIGID_MAX, _EVENTS_MAX = _hi("assets", "vehicles"), _hi("household", "rigid_expenses"), _hi("household", "events")
_is_id = ID_RE.fullmatch


# The fields each record's written-out pass checks itself.
_WRITTEN = {
        "household": frozenset(
            {"household_id", "locality", "as_of", "area", "members", "assets", "rigid_expenses", "current_benefits",
             "current_amounts", "events"}
        ),
        "member": frozenset(
            {"id", "relation", "birth_date", "sex", "id_number", "hukou_locality", "residence_permit_locality",
             "disability", "serious_illness", "self_care", "schooling", "employed", "status", "supporters", "parents",
             "incomes", "tags", "current_benefits"}
        ),
}  # fmt: skip


class Layout:
    """What the validator takes from a declaration: each record's keys, and the fields the pass
    written out below does not know (checked by ``_Validator.field``)."""

    def __init__(self, records: dict[str, R.Record] = R.RECORDS) -> None:
        self.records = records
        self.keys = {name: frozenset(f.name for f in r.fields if f.input) for name, r in records.items()}
        self.more: dict[str, tuple[R.Field, ...]] = {}
        for name, written in _WRITTEN.items():
            declared = self.keys[name]
            if not written <= declared:  # a field taken out of the declaration must go from the pass too
                raise ValueError(f"{name}: {sorted(written - declared)} checked but not declared")
            self.more[name] = tuple(f for f in records[name].fields if f.input and f.name not in written)


LAYOUT = Layout()
_EVENT_KEYS = LAYOUT.keys["event"]

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TAG_RE = re.compile(R.TAG_PATTERN)

_ASSETS_MISSING = Missing(frozenset({("assets", _H.get("assets").zh)}))
_EMPTY: tuple = ()
_NO_TAGS: frozenset = frozenset()


@dataclass(slots=True)
class Parsed:
    """A validated household: its identity and the facts the rules read."""

    household_id: str
    locality: str
    as_of: dt.date
    area: str
    h: dict[str, Any]  # household-scope facts
    members: list[dict[str, Any]]  # one fact record per member
    raw: dict  # the input as given (for storage; ID numbers still unmasked)


class _Errors:
    __slots__ = ("items",)

    def __init__(self) -> None:
        self.items: list[FieldError] = []

    def add(self, path: str, zh: str, en: str, code: str = "invalid") -> None:
        self.items.append(FieldError(field=path, message=f"{path}: {zh} ({en})", message_zh=zh, message_en=en, code=code))


_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _key_path(path: str, key: object) -> str:
    """``members[0].foo``, or ``members[0]["odd key"]`` when the key is not a plain name."""
    k = str(key)
    if _IDENT.match(k):
        return f"{path}.{k}" if path else k
    return f"{path}[{orjson.dumps(k).decode()}]"


def _choices(allowed: frozenset[str]) -> str:
    return "、".join(sorted(allowed))


class _Validator:
    __slots__ = ("e", "hkeys", "hmore", "mkeys", "mmore", "records")

    def __init__(self, layout: Layout = LAYOUT) -> None:
        self.e = _Errors()
        self.records = layout.records
        self.hkeys, self.mkeys = layout.keys["household"], layout.keys["member"]
        self.hmore, self.mmore = layout.more["household"], layout.more["member"]

    # -- scalars -----------------------------------------------------------------
    def str_(self, v: Any, path: str, min_len: int = 1, max_len: int = 128) -> str | None:
        if type(v) is not str:
            self.e.add(path, "应为文本", "must be a string", "string_type")
            return None
        if len(v) < min_len:
            self.e.add(path, "不能为空", "must not be empty", "string_too_short")
            return None
        if len(v) > max_len:
            self.e.add(path, f"过长（最多{max_len}个字符）", f"is too long (at most {max_len} characters)", "string_too_long")
            return None
        return v

    def ident(self, v: Any, path: str, max_len: int) -> str | None:
        """An identifier (household, member, event): engine.schema.text's character set, 1 to ``max_len`` long."""
        v = self.str_(v, path, 1, max_len)
        if v is not None and _is_id(v) is None:
            self.e.add(path, ID_ZH, ID_EN, "string_pattern_mismatch")
            return None
        return v

    def text(self, v: Any, path: str, min_len: int = 0, max_len: int = MAX_TEXT) -> str | None:
        """Free text: any printable character, tabs and line breaks; no other control character."""
        v = self.str_(v, path, min_len, max_len)
        if v is not None and has_control(v):
            self.e.add(path, TEXT_ZH, TEXT_EN, "string_control_character")
            return None
        return v

    def enum(self, v: Any, path: str, allowed: frozenset[str]) -> str | None:
        if type(v) is str and v in allowed:
            return v
        self.e.add(
            path,
            f"取值无效，可选值：{_choices(allowed)}",
            f"invalid value {v!r}, expected one of {sorted(allowed)}",
            "literal_error",
        )
        return None

    def bool_(self, v: Any, path: str) -> bool | None:
        if v is True or v is False:
            return v
        self.e.add(path, "应为 true 或 false", "must be true or false", "bool_type")
        return None

    def date(self, v: Any, path: str) -> dt.date | None:
        if type(v) is str and _DATE_RE.match(v):
            try:
                return dt.date.fromisoformat(v)
            except ValueError:
                self.e.add(path, f"日期 {v} 不存在", f"{v} is not a calendar date", "date")
                return None
        if isinstance(v, dt.date) and not isinstance(v, dt.datetime):
            return v
        self.e.add(path, "日期格式应为 YYYY-MM-DD", "date must be YYYY-MM-DD", "date")
        return None

    def money(self, v: Any, path: str) -> mpq | None:
        try:
            return parse_money(v)
        except MoneyError as err:
            self.e.add(path, err.zh, err.en, "money")
            return None

    def int_(self, v: Any, path: str, lo: int, hi: int) -> int | None:
        if type(v) is not int:
            self.e.add(path, "应为整数", "must be an integer", "int_type")
            return None
        if v < lo or v > hi:
            self.e.add(path, f"应在{lo}到{hi}之间", f"must be between {lo} and {hi}", "range")
            return None
        return v

    def locality(self, v: Any, path: str) -> str | None:
        try:
            localities.division(v)
        except localities.LocalityError as err:
            self.e.add(path, err.zh, err.en, "locality")
            return None
        return v

    def list_(self, v: Any, path: str, max_len: int, min_len: int = 0) -> list | None:
        if type(v) is not list:
            self.e.add(path, "应为数组", "must be an array", "list_type")
            return None
        if len(v) < min_len:
            self.e.add(path, f"至少需要{min_len}项", f"needs at least {min_len} item(s)", "too_short")
            return None
        if len(v) > max_len:
            self.e.add(path, f"最多{max_len}项", f"at most {max_len} items", "too_long")
            return None
        return v

    def obj(self, v: Any, path: str, keys: frozenset[str] | None) -> dict | None:
        if type(v) is not dict:
            self.e.add(path or "(root)", "应为对象", "must be an object", "dict_type")
            return None
        if keys is not None:
            for k in v:
                if k not in keys:
                    self.e.add(
                        _key_path(path, k), "不允许的字段（请检查拼写）", "unknown field (check the spelling)", "extra_forbidden"
                    )
        return v

    def required(self, d: dict, key: str, path: str) -> Any:
        if key not in d:
            self.e.add(f"{path}.{key}" if path else key, "缺少必填字段", "field required", "missing")
            return _ABSENT
        return d[key]

    def enum_list(self, v: Any, path: str, allowed: frozenset[str], max_len: int = 20) -> frozenset[str] | None:
        items = self.list_(v, path, max_len)
        if items is None:
            return None
        out = []
        for i, x in enumerate(items):
            r = self.enum(x, f"{path}[{i}]", allowed)
            if r is not None:
                out.append(r)
        return frozenset(out)

    # -- records -----------------------------------------------------------------
    # The member record is validated field by field with the common case inline: paths
    # ("members[2].schooling") are only built when a field is wrong, because a household is
    # validated on every evaluation and formatting dozens of unused paths is most of the cost.
    def bad_enum(self, v: Any, i: int, field: str, allowed: frozenset[str]) -> None:
        self.enum(v, f"members[{i}].{field}", allowed)

    def member(self, v: Any, i: int, as_of: dt.date | None, household_benefits: frozenset) -> dict | None:
        if type(v) is not dict:
            self.obj(v, f"members[{i}]", self.mkeys)
            return None
        if not self.mkeys.issuperset(v):
            self.obj(v, f"members[{i}]", self.mkeys)
        n = len(self.e.items)
        g = v.get
        mid = g("id", _ABSENT)
        # plain letters and digits ("p1") are an id without the regular expression (a quarter of the cost)
        if (
            type(mid) is not str
            or not 0 < len(mid) <= _MID_MAX
            or (not (mid.isascii() and mid.isalnum()) and _is_id(mid) is None)
        ):
            mid = self.required(v, "id", f"members[{i}]")
            mid = self.ident(mid, f"members[{i}].id", _MID_MAX) if mid is not _ABSENT else None
        rel = g("relation", _ABSENT)
        if rel.__class__ is not str or rel not in _RELATIONS:
            if rel is _ABSENT:
                self.required(v, "relation", f"members[{i}]")
            else:
                self.bad_enum(rel, i, "relation", _RELATIONS)
        bd = g("birth_date", _ABSENT)
        if bd.__class__ is str and _DATE_RE.match(bd):
            try:
                birth = dt.date.fromisoformat(bd)
            except ValueError:
                birth = self.date(bd, f"members[{i}].birth_date")
        elif bd is _ABSENT:
            birth = None
            self.required(v, "birth_date", f"members[{i}]")
        else:
            birth = self.date(bd, f"members[{i}].birth_date")
        sex = g("sex")
        if sex is not None and (sex.__class__ is not str or sex not in _SEXES):
            self.bad_enum(sex, i, "sex", _SEXES)
        idn = g("id_number")
        if idn is not None:
            self._id_number(idn, f"members[{i}].id_number", birth)
        hukou = g("hukou_locality")
        if hukou is not None and not localities.is_valid(hukou):
            self.locality(hukou, f"members[{i}].hukou_locality")
        permit = g("residence_permit_locality")
        if permit is not None and not localities.is_valid(permit):
            self.locality(permit, f"members[{i}].residence_permit_locality")
        dis = g("disability")
        category = grade = None
        if dis is not None:
            dd = self.obj(dis, f"members[{i}].disability", _DISABILITY_KEYS)
            if dd is not None:
                c = self.required(dd, "category", f"members[{i}].disability")
                category = self.enum(c, f"members[{i}].disability.category", _CATEGORIES) if c is not _ABSENT else None
                gr = self.required(dd, "grade", f"members[{i}].disability")
                grade = self.int_(gr, f"members[{i}].disability.grade", _GRADE.lo, _GRADE.hi) if gr is not _ABSENT else None
        ill = g("serious_illness", False)
        if ill is not True and ill is not False:
            self.bool_(ill, f"members[{i}].serious_illness")
        self_care = g("self_care")
        if self_care is not None and (self_care.__class__ is not str or self_care not in _SELF_CARE):
            self.bad_enum(self_care, i, "self_care", _SELF_CARE)
        schooling = g("schooling", "none")
        if schooling.__class__ is not str or schooling not in _SCHOOLING:
            self.bad_enum(schooling, i, "schooling", _SCHOOLING)
        employed = g("employed", False)
        if employed is not True and employed is not False:
            self.bool_(employed, f"members[{i}].employed")
        # list fields may be omitted or empty, but not null (as the pydantic model says)
        status = g("status", _ABSENT)
        if status is _ABSENT or status == []:
            status = _NO_TAGS
        else:
            status = self.enum_list(status, f"members[{i}].status", _STATUSES, _STATUS_MAX)
        supporters = g("supporters")
        if supporters is not None and (supporters.__class__ is not str or supporters not in _SUPPORTERS):
            self.bad_enum(supporters, i, "supporters", _SUPPORTERS)
        parents_raw = g("parents", _ABSENT)
        parents: tuple = _EMPTY
        if parents_raw and parents_raw is not _ABSENT:
            lst = self.list_(parents_raw, f"members[{i}].parents", _PARENTS_MAX)
            if lst is not None:
                out = []
                for j, p in enumerate(lst):
                    pd = self.obj(p, f"members[{i}].parents[{j}]", _PARENT_KEYS)
                    if pd is not None:
                        s = self.required(pd, "status", f"members[{i}].parents[{j}]")
                        if s is not _ABSENT:
                            s = self.enum(s, f"members[{i}].parents[{j}].status", _PARENT)
                            out.append({"status": s})
                parents = tuple(out)
        elif parents_raw is not _ABSENT and parents_raw != []:
            self.list_(parents_raw, f"members[{i}].parents", _PARENTS_MAX)
        incomes_raw = g("incomes", _ABSENT)
        incomes: tuple = _EMPTY
        if incomes_raw and incomes_raw is not _ABSENT:
            if incomes_raw.__class__ is list and len(incomes_raw) <= _INCOMES_MAX:
                incomes = tuple([self._income(x, i, j) for j, x in enumerate(incomes_raw)])
            else:
                self.list_(incomes_raw, f"members[{i}].incomes", _INCOMES_MAX)
        elif incomes_raw is not _ABSENT and incomes_raw != []:
            self.list_(incomes_raw, f"members[{i}].incomes", _INCOMES_MAX)
        tags_raw = g("tags", _ABSENT)
        tags = _NO_TAGS
        if tags_raw and tags_raw is not _ABSENT:
            lst = self.list_(tags_raw, f"members[{i}].tags", _TAGS_MAX)
            if lst is not None:
                good = []
                for j, t in enumerate(lst):
                    if type(t) is str and _TAG_RE.match(t):
                        good.append(t)
                    else:
                        self.e.add(
                            f"members[{i}].tags[{j}]",
                            "标签应为小写英文字母、数字和下划线",
                            "tag must be lower-case letters, digits and underscores",
                            "string_pattern_mismatch",
                        )
                tags = frozenset(good)
        elif tags_raw is not _ABSENT and tags_raw != []:
            self.list_(tags_raw, f"members[{i}].tags", _TAGS_MAX)
        benefits_raw = g("current_benefits")
        benefits = household_benefits
        if benefits_raw is not None:
            b = self.enum_list(benefits_raw, f"members[{i}].current_benefits", _PROGRAMS, _MBENEFITS_MAX)
            benefits = b if b is not None else household_benefits
        if birth is not None and as_of is not None and birth > as_of:
            self.e.add(*R.born_by_as_of(i, birth, as_of))
        more = None
        if self.mmore:
            more = {}
            for f in self.mmore:
                more.update(self.field(f, v, f"members[{i}]", f"成员{mid}的"))
        if len(self.e.items) != n:
            return None
        rec = {
            "id": mid,
            "index": i,
            "relation": rel,
            "birth_date": birth,
            "sex": sex if sex is not None else member_missing(i, mid, "sex"),
            "hukou_locality": hukou if hukou is not None else member_missing(i, mid, "hukou_locality"),
            "residence_permit_locality": permit,
            "has_disability": category is not None,
            "disability_category": category,
            "disability_grade": grade,
            "serious_illness": ill,
            "self_care": self_care if self_care is not None else member_missing(i, mid, "self_care"),
            "schooling": schooling,
            "employed": employed,
            "status": status,
            "supporters": supporters if supporters is not None else member_missing(i, mid, "supporters"),
            "parents": parents,
            "incomes": incomes,
            "tags": tags,
            "benefits": benefits,
        }
        if more:
            rec.update(more)
        return rec

    def _income(self, x: Any, i: int, j: int) -> dict | None:
        if x.__class__ is dict and len(x) == 2:
            t = x.get("type")
            m = x.get("monthly")
            if t.__class__ is str and t in _INCOMES and m is not None:
                if m.__class__ is str:
                    money = parse_money_fast(m)
                    if money is not None:
                        return {"type": t, "monthly": money}
                elif m.__class__ is int and 0 <= m <= MAX_YUAN:
                    return {"type": t, "monthly": mpq(m)}
        return self._typed_money(x, f"members[{i}].incomes[{j}]", _INCOMES, _INCOME_KEYS)

    def _typed_money(self, x: Any, path: str, allowed: frozenset[str], keys: frozenset[str]) -> dict | None:
        d = self.obj(x, path, keys)
        if d is None:
            return None
        t = self.required(d, "type", path)
        t = self.enum(t, f"{path}.type", allowed) if t is not _ABSENT else None
        m = self.required(d, "monthly", path)
        m = self.money(m, f"{path}.monthly") if m is not _ABSENT else None
        return {"type": t, "monthly": m}

    def _event_type(self, v: Any, path: str) -> str | None:
        if type(v) is str and v in _EVENT_TYPES:
            return v
        self.e.add(
            path,
            f"未知的事件类型，可选值：{_EVENT_CHOICES}",
            f"unknown event type {v!r}, expected one of {list(_EVENT_TYPE.values)}",
            "literal_error",
        )
        return None

    def _event_extras(self, ed: dict, path: str) -> None:
        """Fields kept on a household event for monitoring: a few scalars, bounded like every other field."""
        extras = [k for k in ed if k not in _EVENT_KEYS]
        if len(extras) > MAX_EVENT_EXTRAS:
            self.e.add(path, f"附加字段最多{MAX_EVENT_EXTRAS}个", f"at most {MAX_EVENT_EXTRAS} extra fields", "too_long")
            return
        for k in extras:
            p = _key_path(path, k)
            if len(k) > 64 or has_control(k):
                self.e.add(p, "字段名过长或含控制字符", "field name is too long or holds control characters", "invalid")
                continue
            x = ed[k]
            if x is None or x is True or x is False:
                continue
            if type(x) is str:
                self.text(x, p)
            elif type(x) is int:
                if not -MAX_INT <= x <= MAX_INT:
                    self.e.add(p, f"整数应在±{MAX_INT}之间", f"integer must be within ±{MAX_INT}", "range")
            elif type(x) is float:
                if x != x or x in (float("inf"), float("-inf")):
                    self.e.add(p, "应为有限数字", "must be a finite number", "finite_number")
            else:
                self.e.add(
                    p,
                    "附加字段应为文本、数字、true/false 或 null",
                    "an extra field must be text, a number, a boolean or null",
                    "invalid",
                )

    def _id_number(self, v: Any, path: str, birth: dt.date | None) -> str | None:
        problem = R.id_number_problem(v)
        if problem is not None:
            self.e.add(path, problem[0], problem[1], "id_number")
            return None
        if birth is not None:
            problem = R.id_number_matches_birth(v, birth)
            if problem is not None:
                self.e.add(path, problem[1], problem[2], "invalid")
                return None
        return v

    # -- a field from its declaration alone -------------------------------------------
    def field(self, f: R.Field, d: dict, path: str, owner: str) -> dict[str, Any]:
        """The facts of a declared field the written-out pass does not know, checked from its declaration.

        ``owner`` begins the label of a fact not given ("成员p2的"), which the field's label ends.
        """
        p = f"{path}.{f.name}" if path else f.name
        v = d.get(f.name, _ABSENT)
        if v is _ABSENT or (v is None and f.nullable):
            if f.required:
                self.required(d, f.name, path)
                return {}
            if f.absent == R.UNKNOWN:
                value: Any = Missing(frozenset({(p, f"{owner}{f.zh}")}))
            elif f.absent:
                value = None
            elif f.kind in (R.ENUM_LIST, R.TAGS):
                value = frozenset(f.default)
            else:
                value = tuple(f.default) if isinstance(f.default, list | tuple) else f.default
            if f.kind == R.MONEY_MAP:
                return {f"{fact.name}.{k}": value for fact in f.facts for k in f.values}
            return {fact.name: value for fact in f.facts}
        return self.value(f, v, p, owner)

    def value(self, f: R.Field, v: Any, p: str, owner: str) -> dict[str, Any]:
        k = f.kind
        facts: dict[str, Any] = {}
        if k == R.IDENT:
            x: Any = self.ident(v, p, f.hi)
        elif k == R.LOCALITY:
            x = self.locality(v, p)
        elif k == R.DATE_:
            x = self.date(v, p)
        elif k == R.ENUM:
            x = self.enum(v, p, frozenset(f.values))
        elif k == R.ENUM_LIST:
            x = self.enum_list(v, p, frozenset(f.values), f.hi)
        elif k == R.BOOL_:
            x = self.bool_(v, p)
        elif k == R.INT_:
            x = self.int_(v, p, f.lo, f.hi)
        elif k == R.MONEY_:
            x = self.money(v, p)
        elif k == R.ID_NUMBER:
            x = self._id_number(v, p, None)
        elif k == R.TAGS:
            x = self.list_(v, p, f.hi)
            for j, t in enumerate(x or ()):
                if type(t) is not str or not _TAG_RE.match(t):
                    self.e.add(f"{p}[{j}]", "标签应为小写英文字母、数字和下划线", "tag must be lower-case letters, digits and underscores",
                               "string_pattern_mismatch")  # fmt: skip
            x = frozenset(x or ())
        elif k == R.RECORD:
            rec = self.records[f.record]
            x = self.obj(v, p, frozenset(g.name for g in rec.fields if g.input)) is not None
            if x:
                for g in rec.fields:
                    facts.update(self.field(g, v, p, owner))
        elif k == R.RECORD_LIST:
            rec = self.records[f.record]
            items = self.list_(v, p, f.hi, f.lo) or ()
            keys = frozenset(g.name for g in rec.fields if g.input)
            out = []
            for j, item in enumerate(items):
                if self.obj(item, f"{p}[{j}]", keys) is not None:
                    one: dict[str, Any] = {}
                    for g in rec.fields:
                        one.update(self.field(g, item, f"{p}[{j}]", owner))
                    out.append(one)
            x = tuple(out)
        elif k == R.MONEY_MAP:
            m = self.obj(v, p, frozenset(f.values)) or {}
            return {f"{fact.name}.{key}": self.money(m[key], f"{p}.{key}") if key in m else None
                    for fact in f.facts for key in f.values}  # fmt: skip
        else:
            raise ValueError(f"no check for {k}")
        facts.update({fact.name: x for fact in f.facts})
        return facts

    # -- household ---------------------------------------------------------------
    def household(self, data: Any, previous: Parsed | None = None) -> Parsed:
        d = self.obj(data, "", self.hkeys)
        if d is None:
            raise InputError(self.e.items)
        hid = self.required(d, "household_id", "")
        hid = self.ident(hid, "household_id", _HID_MAX) if hid is not _ABSENT else None
        loc = self.required(d, "locality", "")
        loc = self.locality(loc, "locality") if loc is not _ABSENT else None
        ao = self.required(d, "as_of", "")
        as_of = self.date(ao, "as_of") if ao is not _ABSENT else None
        area = self.required(d, "area", "")
        area = self.enum(area, "area", _AREAS) if area is not _ABSENT else None
        g = d.get
        cb = g("current_benefits", _ABSENT)
        benefits = self.enum_list(cb, "current_benefits", _PROGRAMS, _BENEFITS_MAX) if cb is not _ABSENT else _NO_TAGS
        benefits = benefits if benefits is not None else _NO_TAGS

        members: list[dict] = []
        # A member given again as before, at the same place, is not validated again: what ``member``
        # checks and makes depends only on the member, its index, the household's current_benefits,
        # and birth_date <= as_of (still true when as_of has not moved back). The record of
        # ``previous.raw["members"][i]`` is ``previous.members[i]`` (a validated household has no gaps);
        # an ID number only ever refuses, so a raw member stripped of it still gives the same record.
        before_raw: list = []
        if previous is not None and as_of is not None and previous.as_of <= as_of and previous.h["current_benefits"] == benefits:
            before_raw = previous.raw["members"]
        mraw = self.required(d, "members", "")
        if mraw is not _ABSENT:
            lst = self.list_(mraw, "members", MAX_MEMBERS, 1)
            if lst is not None:
                seen: dict[str, int] = {}
                for i, m in enumerate(lst):
                    if i < len(before_raw) and before_raw[i] == m:
                        rec = dict(previous.members[i])  # a copy: evaluators may add values to member records
                    else:
                        rec = self.member(m, i, as_of, benefits)
                    if rec is None:
                        continue
                    if rec["id"] in seen:
                        self.e.add(*R.duplicate_member_id(i, rec["id"], seen[rec["id"]]))
                        continue
                    seen[rec["id"]] = i
                    members.append(rec)

        assets = g("assets")
        fin: Any = _ASSETS_MISSING
        vehicles: Any = _ASSETS_MISSING
        props: Any = _ASSETS_MISSING
        if assets is not None:
            ad = self.obj(assets, "assets", _ASSET_KEYS)
            if ad is not None:
                f = self.required(ad, "financial", "assets")
                fin = self.money(f, "assets.financial") if f is not _ABSENT else None
                pr = self.required(ad, "properties", "assets")
                props = self.int_(pr, "assets.properties", _PROPERTIES.lo, _PROPERTIES.hi) if pr is not _ABSENT else None
                vraw = ad.get("vehicles", _ABSENT)
                vehicles = _EMPTY
                if vraw is not _ABSENT:
                    lst = self.list_(vraw, "assets.vehicles", _VEHICLES_MAX)
                    if lst is not None:
                        out = []
                        for j, v in enumerate(lst):
                            vd = self.obj(v, f"assets.vehicles[{j}]", _VEHICLE_KEYS)
                            if vd is not None:
                                ex = self.required(vd, "exempt", f"assets.vehicles[{j}]")
                                if ex is not _ABSENT:
                                    out.append({"exempt": self.bool_(ex, f"assets.vehicles[{j}].exempt")})
                        vehicles = tuple(out)

        rigid: tuple = _EMPTY
        rraw = g("rigid_expenses", _ABSENT)
        if rraw is not _ABSENT:
            lst = self.list_(rraw, "rigid_expenses", _RIGID_MAX)
            if lst is not None:
                rigid = tuple(self._typed_money(x, f"rigid_expenses[{j}]", _EXPENSES, _EXPENSE_KEYS) for j, x in enumerate(lst))

        amounts: dict[str, Any] = {}
        araw = g("current_amounts", _ABSENT)
        if araw is not _ABSENT:
            ad = self.obj(araw, "current_amounts", None)
            if ad is not None:
                for k, v in ad.items():
                    if k not in _PROGRAMS:
                        self.e.add(
                            _key_path("current_amounts", k),
                            f"未知的项目代码，可选值：{_choices(_PROGRAMS)}",
                            "unknown program code",
                            "literal_error",
                        )
                        continue
                    m = self.money(v, f"current_amounts.{k}")
                    if m is not None:
                        amounts[k] = m

        events: tuple = _EMPTY
        eraw = g("events", _ABSENT)
        if eraw is not _ABSENT:
            lst = self.list_(eraw, "events", _EVENTS_MAX)
            if lst is not None:
                out = []
                for j, ev in enumerate(lst):
                    ed = self.obj(ev, f"events[{j}]", None)
                    if ed is None:
                        continue
                    et = self.required(ed, "type", f"events[{j}]")
                    et = self._event_type(et, f"events[{j}].type") if et is not _ABSENT else None
                    if not _EVENT_KEYS.issuperset(ed):
                        self._event_extras(ed, f"events[{j}]")
                    edt = self.required(ed, "date", f"events[{j}]")
                    edate = self.date(edt, f"events[{j}].date") if edt is not _ABSENT else None
                    loss: Any = ed.get("loss")
                    if loss is not None:
                        loss = self.money(loss, f"events[{j}].loss")
                    else:
                        loss = Missing(
                            frozenset({(f"events[{j}].loss", f"第{j + 1}项事件（{LABELS.get(et, '其他事件')}）的损失金额")})
                        )
                    place = ed.get("locality")
                    if place is not None:
                        place = self.locality(place, f"events[{j}].locality")
                    if edate is not None and as_of is not None and edate > as_of:
                        self.e.add(*R.event_by_as_of(j, edate, as_of))
                    out.append({"type": et, "date": edate, "loss": loss, "locality": place})
                events = tuple(out)

        more: dict[str, Any] = {}
        for f in self.hmore:
            more.update(self.field(f, d, "", ""))
        if self.e.items:
            raise InputError(self.e.items)
        h: dict[str, Any] = {
            "household_id": hid,
            "locality": loc,
            "as_of": as_of,
            "area": area,
            "members": tuple(members),
            "assets.financial": fin,
            "assets.vehicles": vehicles,
            "assets.properties": props,
            "rigid_expenses": rigid,
            "current_benefits": benefits,
            "events": events,
        }
        h.update(_NO_AMOUNTS)
        for code, v in amounts.items():
            h["current_amounts." + code] = v
        if more:
            h.update(more)
        return Parsed(hid, loc, as_of, area, h, members, d)


_ABSENT = object()
_DISABILITY_KEYS = LAYOUT.keys["disability"]
_PARENT_KEYS = LAYOUT.keys["parent"]
_ASSET_KEYS = LAYOUT.keys["assets"]
_VEHICLE_KEYS = LAYOUT.keys["vehicle"]
_INCOME_KEYS = LAYOUT.keys["income"]
_EXPENSE_KEYS = LAYOUT.keys["expense"]
_NO_AMOUNTS = {
    f"current_amounts.{code}": Missing(frozenset({(f"current_amounts.{code}", f"现领取的{LABELS.get(code, code)}月金额")}))
    for code in _H.get("current_amounts").values
}


def parse(data: Any, previous: Parsed | None = None, layout: Layout = LAYOUT) -> Parsed:
    """Validate a household given as a dict, JSON text/bytes, or ``engine.schema.model.Household``.

    ``previous``: an earlier result for the same household (the monitor applies events one after
    another); members given again, equal to their dicts then and at the same index, are not
    validated again. The caller must not have changed those member dicts in place since (the
    monitor copies before changing). ``layout``: another declaration's (a test of the derivation).
    """
    if isinstance(data, str | bytes | bytearray | memoryview):
        try:
            data = orjson.loads(data)
        except orjson.JSONDecodeError as err:
            raise InputError(
                [
                    FieldError(
                        field="(root)",
                        message=f"(root): 不是有效的 JSON (invalid JSON: {err})",
                        message_zh="不是有效的 JSON",
                        message_en=f"invalid JSON: {err}",
                        code="json_invalid",
                    )
                ]
            ) from None
    elif not isinstance(data, dict):
        from engine.schema.model import Household

        if isinstance(data, Household):
            data = data.model_dump(mode="json", exclude_none=True)
    return _Validator(layout).household(data, previous)

"""Benefits that exclude each other, declared in ``rules/interactions.yaml``.

Each exclusion names a group of programs that one person (or one household)
is not paid together, and which one is kept:

* ``keep: first`` - the first program of the list that is granted;
* ``keep: higher_amount`` - the granted program with the higher monthly amount
  (ties, and amounts that cannot be compared because a standard is
  unconfigured, go to the first of the list, and the explanation says so).

Member programs conflict for the same member. A household program conflicts
with a member program for the members it covers: when the member program is
kept for *every* member the household program covers, the household program
is not paid; when it covers only some of them, both stay paid and both
explanations say the amount needs review.

The stage runs after every program has been decided and works on the program
result dicts only: the loser keeps its status (the person *is* eligible) and
gets ``"paid": false`` and ``"excluded_by"``; every program of a resolved
conflict gets a reason of kind ``interaction`` saying which one is paid and why.

Loading lowers the file, once, into a frozen :class:`ExclusionPlan`: every choice
(the order of the groups, which program outranks which, the keep rule, ties,
unknown amounts, household-versus-member conflicts) is a field of the plan.
:func:`apply_exclusions` (one household) and the columnar ``Plan`` (batches) both
execute that plan object and decide nothing of their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from engine.book.ids import is_name
from engine.book.statuses import GRANTED
from engine.book.yamlio import LineDict

KEEP = ("first", "higher_amount")
# household_amount: how a household program's amount treats the members a member program covers:
# "includes_covered" (the default) counts them, so a partial overlap is flagged for review;
# "excludes_covered" (the rule file already pays only the others) needs no review.
HOUSEHOLD_AMOUNT = ("includes_covered", "excludes_covered")
_PD_NOTE = "项目默认值，待地方确认"


# what wins when the keep rule cannot choose: "first" = the earliest granted program of ``programs``
FALLBACK = ("first",)


@dataclass(frozen=True)
class Exclusion:
    """One lowered group of ``rules/interactions.yaml``: who is paid when several are granted."""

    id: str
    title: str
    programs: tuple[str, ...]  # in rank order: earlier outranks later
    keep: str  # first | higher_amount
    citation: str
    project_default: bool
    file: str
    line: int
    kind: str  # the scopes of its programs: household, member or mixed
    household_amount: str = "includes_covered"
    tie: str = "first"  # higher_amount with equal amounts keeps ...
    unknown: str = "first"  # higher_amount with an amount unknown (standard unconfigured) keeps ...
    household: str | None = None  # mixed: the group's one household program
    members_before: tuple[str, ...] = ()  # mixed: member programs that outrank the household program
    members_after: tuple[str, ...] = ()  # mixed: member programs the household program outranks

    def __post_init__(self) -> None:
        if self.keep not in KEEP or self.tie not in FALLBACK or self.unknown not in FALLBACK:
            raise ValueError(f"{self.id}: keep/tie/unknown outside {KEEP}/{FALLBACK}")
        if self.household_amount not in HOUSEHOLD_AMOUNT:
            raise ValueError(f"{self.id}: household_amount outside {HOUSEHOLD_AMOUNT}")


@dataclass(frozen=True)
class ExclusionPlan:
    """Every exclusion of the rule book, in the order they are resolved (file order)."""

    steps: tuple[Exclusion, ...] = ()

    def __iter__(self):
        return iter(self.steps)

    def __len__(self) -> int:
        return len(self.steps)

    def __bool__(self) -> bool:
        return bool(self.steps)


def lower(
    xid: str,
    title: str,
    programs: list[str],
    keep: str,
    citation: str,
    project_default: bool,
    file: str,
    line: int,
    scopes: dict[str, str],
    household_amount: str = "includes_covered",
) -> Exclusion:
    """The one place that turns a checked exclusion into its plan step (``scopes``: program -> scope)."""
    kinds = {scopes[p] for p in programs}
    kind = "mixed" if len(kinds) > 1 else next(iter(kinds))
    household = before = after = None
    if kind == "mixed":
        household = next(p for p in programs if scopes[p] == "household")
        h = programs.index(household)
        before = tuple(p for p in programs[:h] if scopes[p] == "member")
        after = tuple(p for p in programs[h + 1 :] if scopes[p] == "member")
    return Exclusion(
        xid,
        title,
        tuple(programs),
        keep,
        citation,
        project_default,
        file,
        line,
        kind,
        household_amount,
        household=household,
        members_before=before or (),
        members_after=after or (),
    )


def load_interactions(book: Any, rel: str, d: LineDict) -> ExclusionPlan:
    """Read and check the ``module: interactions`` file (``book`` is the RuleBook loading it) and lower it."""
    out: list[Exclusion] = []
    allowed_top = {"module", "name", "description", "exclusions"}
    for k in d:
        if k not in allowed_top:
            book._err(rel, d.line_of(k), f"未知字段 {k!r}（可用：{', '.join(sorted(allowed_top))}） / unknown field")
    items = d.get("exclusions")
    if not isinstance(items, list):
        book._err(rel, d.line, "module: interactions 需要 exclusions 列表 / 'exclusions' list required")
        return ExclusionPlan()
    known = {p.code: p for p in book.programs}
    allowed = {"id", "title", "programs", "keep", "citation", "project_default", "household_amount"}
    seen: set[str] = set()
    for item in items:
        if not isinstance(item, LineDict):
            book._err(rel, getattr(items, "line", d.line), "exclusions 的每一项应为映射 / each exclusion must be a mapping")
            continue
        for k in item:
            if k not in allowed:
                book._err(rel, item.line_of(k), f"未知字段 {k!r}（可用：{', '.join(sorted(allowed))}） / unknown field")
        xid = item.get("id")
        if not isinstance(xid, str) or not xid.startswith("interactions.") or not is_name(xid[13:]) or xid in seen:
            book._err(rel, item.line, "id 应写作 interactions.<名称> 且不重复 / ids are unique 'interactions.<name>'")
            continue
        seen.add(xid)
        citation = item.get("citation")
        if not isinstance(citation, str) or not citation.strip():
            book._err(rel, item.line, f"{xid} 缺少 citation / {xid} has no citation")
            continue
        title = item.get("title")
        if not isinstance(title, str) or not title.strip():
            book._err(rel, item.line, f"{xid} 缺少 title / {xid} has no title")
            continue
        programs = item.get("programs")
        if not isinstance(programs, list) or len(programs) < 2 or len(set(programs)) != len(programs):
            book._err(rel, item.line_of("programs"), "programs 应列出至少两个不同的项目 / list at least two programs")
            continue
        bad = [p for p in programs if p not in known]
        if bad and book.subset is not None:
            continue  # only some programs were loaded: an exclusion among absent ones does not apply
        if bad:
            book._err(rel, item.line_of("programs"), f"未知或未加载的项目 {bad} / unknown programs {bad}")
            continue
        keep = item.get("keep", "first")
        if keep not in KEEP:
            book._err(rel, item.line_of("keep"), f"keep 应为 {' 或 '.join(KEEP)} / keep must be one of {KEEP}")
            continue
        scopes = {known[p].scope for p in programs}
        if keep == "higher_amount" and scopes != {"member"} and scopes != {"household"}:
            book._err(
                rel,
                item.line_of("keep"),
                "家庭项目与成员项目之间不能比较金额，请用 keep: first / cannot compare a household with a member amount",
            )
            continue
        household_amount = item.get("household_amount", "includes_covered")
        if household_amount not in HOUSEHOLD_AMOUNT or (household_amount != "includes_covered" and len(scopes) == 1):
            book._err(
                rel,
                item.line_of("household_amount"),
                f"household_amount 应为 {' 或 '.join(HOUSEHOLD_AMOUNT)}，且只用于家庭与成员项目之间 / "
                "household_amount is one of these, for a household program with member programs",
            )
            continue
        if len([p for p in programs if known[p].scope == "household"]) > 1 and "member" in scopes:
            book._err(rel, item.line_of("programs"), "混合排斥只能含一个家庭项目 / a mixed group holds one household program")
            continue
        out.append(
            lower(
                xid,
                title.strip(),
                list(programs),
                keep,
                book._cite(rel, item.line_of("citation"), citation.strip()),
                bool(item.get("project_default", False)),
                rel,
                item.line,
                {p: known[p].scope for p in programs},
                household_amount,
            )
        )
    return ExclusionPlan(tuple(out))


# -- applying ------------------------------------------------------------------------


def _paid(entry: dict) -> bool:
    return entry["status"] in GRANTED and entry.get("paid", True) is not False


def _amount(entry: dict) -> Decimal | None:
    v = entry.get("monthly_amount")
    return Decimal(v) if v is not None else None


def _yuan(entry: dict) -> str:
    v = entry.get("monthly_amount")
    return f"每月{v}元" if v is not None else "金额未确定"


def apply_exclusions(exclusions: ExclusionPlan, entries: list[dict]) -> None:
    """Execute the plan on ``entries`` (the determination's program dicts), step by step."""
    if not exclusions:
        return
    household: dict[str, dict] = {}  # program -> its entry
    by_member: dict[str, dict[str, dict]] = {}  # member program -> member id -> entry
    for e in entries:
        if e["scope"] == "member":
            by_member.setdefault(e["program"], {})[e["members"][0]] = e
        else:
            household[e["program"]] = e
    for ex in exclusions:
        if ex.kind == "household":
            _resolve(ex, [household[p] for p in ex.programs if p in household], None)
        elif ex.kind == "member":
            tables = [by_member[p] for p in ex.programs if p in by_member]
            if len(tables) < 2:
                continue  # one program of the group gave no entry: nothing to resolve
            for mid in sorted({mid for t in tables for mid in t}):
                _resolve(ex, [t[mid] for t in tables if mid in t], mid)
        else:
            _resolve_mixed(ex, household, by_member)


def _resolve(ex: Exclusion, group: list[dict], member: str | None) -> None:
    paid = [e for e in group if _paid(e)]  # in declaration order
    if len(paid) < 2:
        return
    winner, why = _choose(ex, paid)
    for e in paid:
        if e is winner:
            others = "、".join(f"{o['name']}（{_yuan(o)}）" for o in paid if o is not e)
            text = f"同时符合{others}，{why}，享受{e['name']}"
            _note(e, ex, True, text, member, {"kept": e["program"]})
        else:
            e["paid"] = False
            e["excluded_by"] = winner["program"]
            text = f"同时符合{winner['name']}（{_yuan(winner)}），{why}，{e['name']}不重复发放"
            _note(e, ex, False, text, member, {"kept": winner["program"]})


def _choose(ex: Exclusion, paid: list[dict]) -> tuple[dict, str]:
    if ex.keep == "first":
        return paid[0], f"按规定优先享受{paid[0]['name']}"
    amounts = [_amount(e) for e in paid]
    if any(a is None for a in amounts):
        unknown = "、".join(e["name"] for e, a in zip(paid, amounts, strict=True) if a is None)
        return paid[0], f"{unknown}金额未确定（标准未配置），无法比较，暂按{paid[0]['name']}"
    best = max(range(len(paid)), key=lambda i: (amounts[i], -i))
    listing = "、".join(f"{e['name']}每月{e['monthly_amount']}元" for e in paid)
    if amounts.count(amounts[best]) > 1 and best == 0:
        return paid[0], f"金额相同（{listing}），按{paid[0]['name']}"
    return paid[best], f"按就高原则（{listing}）"


def _resolve_mixed(ex: Exclusion, household: dict[str, dict], by_member: dict[str, dict[str, dict]]) -> None:
    hh = household.get(ex.household)  # type: ignore[arg-type]
    if hh is None or not _paid(hh):
        return
    household_code = hh["program"]
    tables = [by_member[p] for p in ex.programs if p in by_member]
    covered: dict[str, dict] = {}
    for mid in hh["members"]:
        for table in tables:
            e = table.get(mid)
            if e is not None and _paid(e):
                covered[mid] = e
                break
    if not covered:
        return
    member_first = {mid: e["program"] in ex.members_before for mid, e in covered.items()}
    names = "、".join(f"成员{mid}（{e['name']}，{_yuan(e)}）" for mid, e in covered.items())
    if all(member_first.values()) and len(covered) == len(hh["members"]):
        hh["paid"] = False
        hh["excluded_by"] = next(iter(covered.values()))["program"]
        _note(hh, ex, False, f"{names}已单独享受保障，家庭全部共同生活成员均已覆盖，{hh['name']}不重复发放", None, {"covered": list(covered)})
        for mid, e in covered.items():
            _note(e, ex, True, f"成员{mid}享受{e['name']}，家庭不再重复享受{hh['name']}", mid, {"kept": e["program"]})
        return
    if all(member_first.values()) and ex.household_amount == "excludes_covered":
        # the household amount was worked out for the other members only: nothing is paid twice
        _note(
            hh,
            ex,
            True,
            f"家庭中{names}已单独享受，{hh['name']}金额已按其余共同生活成员计算，不重复发放",
            None,
            {"covered": list(covered)},
        )
        for mid, e in covered.items():
            _note(e, ex, True, f"成员{mid}享受{e['name']}，不再计入家庭{hh['name']}金额", mid, {"kept": e["program"]})
        return
    if all(member_first.values()):
        # only some members are covered: the household amount cannot be split here, so say so
        _note(
            hh,
            ex,
            None,
            f"家庭中{names}已单独享受，{hh['name']}金额按全部共同生活成员计算，应按规定核减重复部分，请经办人员复核",
            None,
            {"covered": list(covered)},
        )
        for mid, e in covered.items():
            _note(e, ex, None, f"成员{mid}享受{e['name']}，家庭{hh['name']}中的重复部分应核减", mid, {"kept": e["program"]})
        return
    for mid, e in covered.items():
        if not member_first[mid]:
            e["paid"] = False
            e["excluded_by"] = household_code
            _note(
                e,
                ex,
                False,
                f"家庭已享受{hh['name']}（{_yuan(hh)}），成员{mid}的{e['name']}不重复发放",
                mid,
                {"kept": household_code},
            )


def _note(entry: dict, ex: Exclusion, passed: bool | None, text: str, member: str | None, values: dict) -> None:
    suffix = f"（{_PD_NOTE}）" if ex.project_default else ""
    reason = {
        "rule": ex.id,
        "kind": "interaction",
        "passed": passed,
        "text": f"{ex.title}：{text}{suffix}",
        "values": values,
        "citation": ex.citation,
    }
    if member is not None:
        reason["member"] = member
    entry["reasons"].append(reason)

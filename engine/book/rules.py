"""Loading, validating and compiling the rule files in ``rules/``.

Two kinds of file:

* ``module: household`` - the shared facts: who is a counted member, which
  incomes count, deductions, per-capita income, the asset and residency
  tests. Each entry is a named value with its citation.
* ``program: <code>`` - one assistance program: optional ``let`` values, its
  ``rules`` in order (each a condition with a Chinese sentence and a
  citation), and a ``decision`` that turns rule results into a status and an
  amount.

Everything is checked at load: unknown names, type errors, missing citations,
unused rules and cycles between programs are refused with file and line.
See docs/rule-language.md for the reference.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from engine.book.ids import is_name, problem, shown
from engine.book.interactions import ExclusionPlan, load_interactions
from engine.book.statuses import OUTSIDE, STATUSES, granted_of
from engine.book.templates import converter, split, unbalanced
from engine.book.yamlio import LineDict, YamlError, load_yaml
from engine.expr import Scope, check, compile_expr, parse
from engine.expr import ast as A
from engine.expr.checker import TypeCheckError
from engine.expr.parser import ExprSyntaxError
from engine.expr.types import BOOL, MONEY, T, enum
from engine.policies.parameters import PolicyStore
from engine.policies.sources import check_citation
from engine.schema.facts import HOUSEHOLD_FACTS, MEMBER_FIELDS, RECORDS
from engine.schema.model import PROGRAM_CODES

PAYS = ("monthly", "annual", "one_off", "in_kind", "none")
STATUS_T = enum(*STATUSES)
RESULT_FIELDS = {"status": STATUS_T, "granted": BOOL, "amount": T("money", optional=True)}
_TWO_SEGMENTS = "id 应为两段：<前缀>.<名称> / an id has two segments: <prefix>.<name>"


class RuleError(YamlError):
    """A problem in a rule file, with file and line."""


# The lowered plan. Every object below is frozen and built once in its final form: the loader
# checks an item, then makes the executable object from the checked parts (``dataclasses.replace``
# where a compiled function is added to a checked step). Functions and syntax trees are left out of
# ``==`` (they compare by identity); the expression texts stand for them, so two loads of the same
# files give equal plans.


@dataclass(frozen=True, slots=True)
class Template:
    """An explanation sentence: literal text and named slots, each slot once."""

    parts: tuple[tuple[bool, str], ...]  # (is_slot, text-or-name)
    source: str
    fmt: str  # the sentence with %s for each slot occurrence
    order: tuple[int, ...] | None  # slot index per %s when a slot repeats
    nodes: tuple[tuple[str, Any, T], ...] = field(compare=False)  # (name, checked node or None: the amount, type)
    slots: tuple[tuple[str, Any, Any], ...] = field(default=(), compare=False)  # (name, fn or None, converter)


@dataclass(frozen=True, slots=True)
class Step:
    """A derived value or a checked rule, compiled."""

    id: str
    name: str  # key it is stored under
    scope: str  # household | member
    kind: str  # fact | check | let | use
    title: str
    type: T
    fn: Any = field(default=None, compare=False)
    citation: str = ""
    guard: Any = field(default=None, compare=False)  # applies_if (checks) / explain_if (facts)
    gate: bool = False
    project_default: bool = False
    text: Template | None = None
    text_pass: Template | None = None
    text_fail: Template | None = None
    listed: bool = True
    file: str = ""
    line: int = 0
    node: Any = field(default=None, compare=False)
    guard_node: Any = field(default=None, compare=False)
    source: str = ""  # the expression text of ``node``
    guard_source: str = ""


@dataclass(frozen=True, slots=True)
class Part:
    """One part of a decision amount (特困: 基本生活费 + 照料护理费)."""

    label: str
    fn: Any = field(compare=False)
    required: bool  # an unknown required part makes the amount unknown; an unknown other part counts as 0
    node: Any = field(compare=False)
    source: str


@dataclass(frozen=True, slots=True)
class Clause:
    status: str
    granted: bool | None  # what ``<program>.granted`` holds when this clause decides (None: unknown)
    when: Any = field(compare=False)  # fn or None: the fallback clause
    amount: Any = field(compare=False)  # fn or None
    parts: tuple[Part, ...]
    text: Template | None
    line: int
    when_node: Any = field(default=None, compare=False)
    amount_node: Any = field(default=None, compare=False)
    missing: tuple[tuple[Template, Template], ...] = ()  # needs_info clauses: (field, label)
    when_source: str = ""
    amount_source: str = ""
    lists_failed: bool = False  # its sentence names the rules that failed (the ineligible clauses)


@dataclass(frozen=True, slots=True)
class Link:
    """A linked entitlement (专项救助 ...) listed on a granted determination, optionally conditional."""

    public: dict  # code, name, citation (and text) as shown in the determination: never written to
    when: Any = field(default=None, compare=False)  # compiled condition, or None for always
    when_node: Any = field(default=None, compare=False)
    when_source: str = ""


@dataclass(frozen=True, slots=True)
class Program:
    code: str
    name: str
    scope: str
    basis: str
    steps: tuple[Step, ...]
    decision: tuple[Clause, ...]
    file: str
    line: int
    pays: str  # monthly | annual | one_off | in_kind | none: what the decision amount is
    outputs: tuple[tuple[str, str, T], ...]  # (output name, store key, type)
    link_specs: tuple[Link, ...]
    applies_to: Any = field(default=None, compare=False)
    applies_node: Any = field(default=None, compare=False)
    applies_source: str = ""
    # Lowered once here, read by every executor:
    rule_ids: tuple[str, ...] = ()  # checks and uses in order: the "first failed rule" vocabulary
    stop_clause: int = -1  # the clause that decides once a gate has failed (the last, an ineligible one)
    status_key: str = ""  # where later programs read this program's results
    granted_key: str = ""
    amount_key: str = ""
    outside: str = OUTSIDE  # the status stored for a member outside ``applies_to`` (not listed)


@dataclass(frozen=True, slots=True)
class FactsModule:
    blocks: tuple[tuple[str, tuple[Step, ...]], ...]  # consecutive steps of one scope
    steps: tuple[Step, ...]
    file: str


class RuleBook:
    """All rule files of a directory, compiled, plus the policies they read."""

    def __init__(self, rules_dir: Path, policies: PolicyStore, programs: set[str] | frozenset[str] | None = None):
        self.dir = rules_dir
        self.policies = policies
        # a subset of programs (and what they depend on), for callers that need only some
        self.subset = frozenset(programs) if programs is not None else None
        self.errors: list[RuleError] = list(policies.errors)
        self.facts: FactsModule | None = None
        self.programs: tuple[Program, ...] = ()  # in dependency order
        self.interactions = ExclusionPlan()  # lowered from the 'module: interactions' file
        self.paths: list[Path] = []
        self._param_types = {k: s.type for k, s in policies.schema.items()}
        self._load()
        # the names an expression reads from the current member's record (the rest are household values)
        self.member_keys: frozenset[str] = self._member_keys() if self.facts is not None else frozenset()
        self.version = self._version()

    # -- helpers -----------------------------------------------------------
    def _err(self, file: str, line: int, msg: str) -> None:
        self.errors.append(RuleError(file, line, msg))

    def _rel(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.dir.parent))
        except ValueError:
            return str(path)

    def _version(self) -> str:
        h = hashlib.sha256()
        root = self.dir.parent
        for path in sorted({*self.paths, *self.policies.paths}):
            try:
                name = str(path.relative_to(root))
            except ValueError:
                name = path.name
            h.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
        return "sha256:" + h.hexdigest()

    def _expr(self, file: str, line: int, src: Any, scope: Scope, expect: T | None, what: str):
        if not isinstance(src, str | bool | int):
            self._err(file, line, f"{what} 应为表达式文本 / {what} must be an expression")
            return None, None
        text = _text(src)
        try:
            node, t = check(parse(text), scope, expect)
        except (ExprSyntaxError, TypeCheckError) as e:
            self._err(file, line, f"{what}：{e.message}（位于第{e.pos + 1}个字符：{shown(text, 500)}）")
            return None, None
        return node, t

    def _template(self, file: str, line: int, src: Any, scope: Scope, what: str, extra: dict[str, T] | None = None):
        if not isinstance(src, str) or not src.strip():
            self._err(file, line, f"{what} 应为非空文本 / {what} must be text")
            return None
        if unbalanced(src):
            self._err(file, line, f"{what} 中的花括号不配对 / unbalanced braces in {what}")
            return None
        parts = tuple(split(src))
        slots: list[tuple[str, Any, T]] = []
        seen: set[str] = set()
        inner = scope
        if extra:
            inner = Scope({**scope.names, **extra}, scope.records, scope.params, scope.loop, scope.paths)
        for is_slot, name in parts:
            if not is_slot or name in seen:
                continue
            seen.add(name)
            bad = problem(name, f"{what} 中的 {{}} 名称", f"slot name in {what}", dotted=True)
            if bad:
                self._err(file, line, bad)
                return None
            try:
                parsed = parse(name)
                if not isinstance(parsed, A.Name):
                    raise ExprSyntaxError("说明文本中只能写名称，如 {per_capita_income} / only names in {}", 0)
                node, t = check(parsed, inner)
            except (ExprSyntaxError, TypeCheckError) as e:
                self._err(file, line, f"{what} 中的 {{{name}}}：{e.message}")
                return None
            # a name of ``extra`` (the decision's ``amount``) is filled in by the executor, not computed
            slots.append((name, None if extra and name in extra else node, t))
        index = {name: i for i, (name, _n, _t) in enumerate(slots)}
        order = tuple(index[p] for is_slot, p in parts if is_slot)
        fmt = "".join("%s" if is_slot else p.replace("%", "%%") for is_slot, p in parts)
        return Template(parts, src, fmt, None if order == tuple(range(len(slots))) else order, tuple(slots))

    # -- loading -------------------------------------------------------------
    def _load(self) -> None:
        raw_files: list[tuple[Path, str, Any]] = []
        for path in sorted(self.dir.glob("*.yaml")):
            rel = self._rel(path)
            self.paths.append(path)
            try:
                raw_files.append((path, rel, load_yaml(path, rel)))
            except YamlError as e:
                self.errors.append(RuleError(e.file, e.line, e.message))
        facts_raw = [(p, r, d) for p, r, d in raw_files if isinstance(d, dict) and d.get("module") == "household"]
        program_raw = [(p, r, d) for p, r, d in raw_files if isinstance(d, dict) and "program" in d]
        interactions_raw = [(p, r, d) for p, r, d in raw_files if isinstance(d, dict) and d.get("module") == "interactions"]
        for _p, rel, d in raw_files:
            if not isinstance(d, dict) or ("program" not in d and d.get("module") not in ("household", "interactions")):
                self._err(
                    rel,
                    1,
                    "规则文件应以 program: <代码>、module: household 或 module: interactions 开头 / "
                    "a rule file starts with 'program:', 'module: household' or 'module: interactions'",
                )
        if len(facts_raw) != 1:
            self._err(
                str(self.dir), 0, "需要且只能有一个 module: household 文件 / exactly one 'module: household' file is required"
            )
            return

        self.member_record: dict[str, T] = dict(MEMBER_FIELDS)
        self.household_names: dict[str, T] = dict(HOUSEHOLD_FACTS)
        self.member_names: dict[str, T] = {}
        self.records = {**RECORDS, "member": self.member_record}
        self.facts = self._load_facts(*facts_raw[0][1:])

        # programs: read headers, order by dependencies, then compile in order
        headers: dict[str, tuple[str, LineDict]] = {}
        for _p, rel, d in program_raw:
            code = d.get("program")
            if code not in PROGRAM_CODES:
                self._err(rel, d.line_of("program"), f"未知的项目代码 {code!r}（见 docs/contract.md） / unknown program code")
                continue
            if code in headers:
                self._err(rel, d.line_of("program"), f"项目 {code} 在 {headers[code][0]} 中已定义 / program defined twice")
                continue
            headers[code] = (rel, d)
        order = self._order(headers)
        if self.subset is not None:
            unknown = sorted(self.subset - set(headers))
            if unknown:
                self._err(str(self.dir), 0, f"未知的项目 {unknown} / unknown programs {unknown}")
            keep: set[str] = set()
            stack = [c for c in self.subset if c in headers]
            while stack:
                c = stack.pop()
                if c not in keep:
                    keep.add(c)
                    stack.extend(self._deps.get(c, ()))
            order = [c for c in order if c in keep]
        for code in order:
            rel, d = headers[code]
            prog = self._load_program(code, rel, d)
            if prog is not None:
                self.programs = (*self.programs, prog)

        # exclusions between programs, applied after every program has run
        if len(interactions_raw) > 1:
            self._err(interactions_raw[1][1], 1, "只能有一个 module: interactions 文件 / only one 'module: interactions' file")
        for _p, rel, d in interactions_raw[:1]:
            self.interactions = load_interactions(self, rel, d)

    def _order(self, headers: dict[str, tuple[str, LineDict]]) -> list[str]:
        deps: dict[str, set[str]] = {}
        codes = set(headers)
        for code, (_rel, d) in headers.items():
            found: set[str] = set()
            for key, text in _expression_texts(d):
                for tok in _names_in(key, text):
                    if tok.startswith(("param.", "current_amounts.")):
                        continue
                    for seg in tok.split("."):
                        if seg in codes and seg != code:
                            found.add(seg)
            deps[code] = found
        self._deps = deps
        order: list[str] = []
        state: dict[str, int] = {}

        def visit(c: str, path: list[str]) -> None:
            if state.get(c) == 2:
                return
            if state.get(c) == 1:
                rel, d = headers[c]
                cycle = " → ".join([*path[path.index(c) :], c])
                self._err(rel, d.line_of("program"), f"项目之间循环依赖：{cycle} / programs depend on each other in a cycle")
                return
            state[c] = 1
            for dep in sorted(deps[c]):
                visit(dep, [*path, c])
            state[c] = 2
            order.append(c)

        for c in sorted(headers, key=lambda c: PROGRAM_CODES.index(c)):
            visit(c, [])
        return order

    def _scope(self, member: bool, local: dict[str, T] | None = None, paths: dict[str, str] | None = None) -> Scope:
        """What an expression of a program may name; ``paths`` gives where its local values are stored."""
        names = dict(self.household_names)
        if member:
            names.update(self.member_record)
            names.update(self.member_names)
        if local:
            names.update(local)
        return Scope(names, self.records, self._param_types, paths=dict(paths) if paths else {})

    def _common(self, rel: str, item: LineDict, what: str) -> tuple[str, bool] | None:
        citation = item.get("citation")
        if not isinstance(citation, str) or not citation.strip():
            self._err(rel, item.line, f"{what} 缺少 citation（法规条款或种子文件行号） / {what} has no citation")
            return None
        return self._cite(rel, item.line, citation.strip()), bool(item.get("project_default", False))

    def _cite(self, rel: str, line: int, text: str) -> str:
        """A citation checked against policies/sources.yaml and rendered for readers (engine.policies.sources)."""
        return check_citation(self.policies.sources, text, rel, line, self._err)

    def _load_facts(self, rel: str, d: LineDict) -> FactsModule | None:
        items = d.get("facts")
        if not isinstance(items, list):
            self._err(rel, d.line, "module: household 需要 facts 列表 / 'facts' list required")
            return None
        steps: list[Step] = []
        allowed = {"id", "name", "scope", "title", "value", "text", "pass", "fail", "explain_if", "citation", "project_default"}
        for item in items:
            if not isinstance(item, LineDict):
                self._err(rel, getattr(items, "line", 0), "facts 的每一项应为映射 / each fact must be a mapping")
                continue
            for k in item:
                if k not in allowed:
                    self._err(rel, item.line_of(k), f"未知字段 {k!r}（可用：{', '.join(sorted(allowed))}） / unknown field")
            fid = item.get("id")
            if not isinstance(fid, str) or not fid.startswith("household."):
                self._err(rel, item.line, "事实的 id 应以 household. 开头 / fact ids start with 'household.'")
                continue
            if not is_name(fid.removeprefix("household.")):
                self._err(rel, item.line_of("id"), problem(fid, "事实 id", "fact id", dotted=True) or _TWO_SEGMENTS)
                continue
            name = item.get("name") or fid.split(".", 1)[1]
            if not is_name(name):
                self._err(rel, item.line_of("name"), problem(name, "事实名称", "fact name") or "")
                continue
            scope_kind = item.get("scope", "household")
            if scope_kind not in ("household", "member"):
                self._err(rel, item.line_of("scope"), "scope 应为 household 或 member / scope must be household or member")
                continue
            member = scope_kind == "member"
            if name in self.household_names or name in self.member_record:
                self._err(rel, item.line, f"名称 {name} 已被使用 / name {name!r} is already defined")
                continue
            common = self._common(rel, item, fid)
            if common is None:
                continue
            citation, project_default = common
            scope = self._scope(member)
            node, t = self._expr(rel, item.line_of("value"), item.get("value"), scope, None, f"{fid}.value")
            if node is None:
                continue
            # the value is visible to its own text templates
            if member:
                self.member_record[name] = t
            else:
                self.household_names[name] = t
            scope = self._scope(member)
            text = text_pass = text_fail = None
            if "pass" in item or "fail" in item:
                if t.kind != "bool":
                    self._err(rel, item.line, f"{fid}: pass/fail 只用于布尔值，请用 text / pass/fail need a boolean value")
                    continue
                text_pass = self._template(rel, item.line_of("pass"), item.get("pass"), scope, f"{fid}.pass")
                text_fail = self._template(rel, item.line_of("fail"), item.get("fail"), scope, f"{fid}.fail")
            elif "text" in item:
                text = self._template(rel, item.line_of("text"), item.get("text"), scope, f"{fid}.text")
            guard_node = None
            if "explain_if" in item:
                guard_node, _ = self._expr(rel, item.line_of("explain_if"), item["explain_if"], scope, BOOL, f"{fid}.explain_if")
            steps.append(
                Step(
                    id=fid,
                    name=name,
                    scope=scope_kind,
                    kind="fact",
                    title=str(item.get("title") or name),
                    type=t,
                    citation=citation,
                    project_default=project_default,
                    text=text,
                    text_pass=text_pass,
                    text_fail=text_fail,
                    listed="pass" in item or "fail" in item or "text" in item,
                    file=rel,
                    line=item.line,
                    node=node,
                    guard_node=guard_node,
                    source=_text(item.get("value")),
                    guard_source=_text(item["explain_if"]) if guard_node is not None else "",
                )
            )
        compiled = self._compile_steps(steps)
        blocks: list[tuple[str, tuple[Step, ...]]] = []
        for s in compiled:
            if blocks and blocks[-1][0] == s.scope:
                blocks[-1] = (s.scope, (*blocks[-1][1], s))
            else:
                blocks.append((s.scope, (s,)))
        for required, kind in (
            ("counted_members", "list"),
            ("per_capita_income", "money"),
            ("monthly_income", "money"),
            ("dibao_standard", "money"),
        ):
            t = self.household_names.get(required)
            if t is None or t.kind != kind:
                self._err(rel, d.line, f"module: household 必须定义 {required}（{kind}） / must define {required}")
        return FactsModule(tuple(blocks), compiled, rel)

    def _member_keys(self) -> frozenset[str]:
        """The names read from the current member's record (the rest are household values)."""
        return frozenset(self.member_record) | frozenset(self.member_names)

    def _compile_steps(self, steps: list[Step]) -> tuple[Step, ...]:
        """The checked steps with their functions, as new objects (a ``use`` step is compiled already)."""
        member_keys = self._member_keys()
        out = []
        for s in steps:
            if s.node is None:
                out.append(s)
                continue
            out.append(
                replace(
                    s,
                    fn=compile_expr(s.node, member_keys),
                    guard=compile_expr(s.guard_node, member_keys) if s.guard_node is not None else None,
                    text=_compile_template(s.text, member_keys),
                    text_pass=_compile_template(s.text_pass, member_keys),
                    text_fail=_compile_template(s.text_fail, member_keys),
                )
            )
        return tuple(out)

    def _load_program(self, code: str, rel: str, d: LineDict) -> Program | None:
        allowed = {
            "program",
            "name",
            "scope",
            "basis",
            "applies_to",
            "let",
            "rules",
            "decision",
            "links",
            "description",
            "pays",
            "outputs",
        }
        for k in d:
            if k not in allowed:
                self._err(rel, d.line_of(k), f"未知字段 {k!r}（可用：{', '.join(sorted(allowed))}） / unknown field")
        scope_kind = d.get("scope")
        if scope_kind not in ("household", "member"):
            self._err(rel, d.line_of("scope"), "scope 应为 household 或 member / scope must be household or member")
            return None
        member = scope_kind == "member"
        basis = d.get("basis")
        if not isinstance(basis, str) or not basis.strip():
            self._err(rel, d.line, f"项目 {code} 缺少 basis（政策依据） / program has no basis citation")
            return None
        name = str(d.get("name") or code)
        local: dict[str, T] = {}
        local_names: dict[str, str] = {}
        steps: list[Step] = []
        basis_cited = self._cite(rel, d.line_of("basis"), basis.strip())
        pays = d.get("pays", "monthly")
        if pays not in PAYS:
            self._err(rel, d.line_of("pays"), f"pays 应为 {', '.join(PAYS)} 之一 / pays must be one of {', '.join(PAYS)}")
            pays = "monthly"
        applies_node = None
        if "applies_to" in d:
            if not member:
                self._err(rel, d.line_of("applies_to"), "applies_to 只用于 member 项目 / applies_to is for member programs")
            else:
                applies_node, _ = self._expr(
                    rel, d.line_of("applies_to"), d["applies_to"], self._scope(True), BOOL, f"{code}.applies_to"
                )

        for item in d.get("let") or []:
            if not isinstance(item, LineDict) or "name" not in item or "value" not in item:
                self._err(rel, getattr(item, "line", d.line), "let 的每一项需要 name 和 value / each let needs name and value")
                continue
            lname = item["name"]
            if not is_name(lname):
                self._err(rel, item.line_of("name"), problem(lname, "let 名称", "let name") or "")
                continue
            if lname in self._scope(member).names or lname in local:
                self._err(rel, item.line, f"名称 {lname} 已被使用 / name {lname!r} is already defined")
                continue
            node, t = self._expr(
                rel, item.line_of("value"), item["value"], self._scope(member, local, local_names), None, f"{code}.let.{lname}"
            )
            if node is None:
                continue
            local[lname] = t
            local_names[lname] = f"{code}:{lname}"
            steps.append(
                Step(
                    id=f"{code}.{lname}",
                    name=f"{code}:{lname}",
                    scope=scope_kind,
                    kind="let",
                    title=lname,
                    type=t,
                    listed=False,
                    file=rel,
                    line=item.line,
                    node=node,
                    source=_text(item["value"]),
                )
            )

        rule_ids: list[str] = []
        allowed_rule = {"id", "title", "when", "applies_if", "gate", "pass", "fail", "citation", "project_default", "use"}
        for item in d.get("rules") or []:
            if not isinstance(item, LineDict):
                self._err(rel, d.line_of("rules"), "rules 的每一项应为映射 / each rule must be a mapping")
                continue
            for k in item:
                if k not in allowed_rule:
                    self._err(rel, item.line_of(k), f"未知字段 {k!r}（可用：{', '.join(sorted(allowed_rule))}） / unknown field")
            if "use" in item:
                step = self._use(rel, item, member, code)
                if step is not None:
                    steps.append(step)
                continue
            rid = item.get("id")
            if not isinstance(rid, str) or not rid.startswith(code + ".") or rid.count(".") != 1:
                self._err(rel, item.line, f"规则 id 应写作 {code}.<名称> / rule ids are '{code}.<name>'")
                continue
            if not is_name(rid.split(".")[1]):
                self._err(rel, item.line_of("id"), problem(rid, "规则 id", "rule id", dotted=True) or _TWO_SEGMENTS)
                continue
            if rid.split(".")[1] in RESULT_FIELDS or rid == f"{code}.decision":
                self._err(rel, item.line, f"{rid} 是保留名称 / {rid!r} is reserved")
                continue
            if rid in local or rid in rule_ids:
                self._err(rel, item.line, f"规则 {rid} 重复 / duplicate rule id")
                continue
            common = self._common(rel, item, rid)
            if common is None:
                continue
            citation, project_default = common
            if "title" not in item:
                self._err(rel, item.line, f"规则 {rid} 缺少 title / rule has no title")
                continue
            scope = self._scope(member, local, local_names)
            # registered before checking so one bad rule does not cascade into the decision
            local[rid] = BOOL
            local_names[rid] = rid
            rule_ids.append(rid)
            guard_node = None
            if "applies_if" in item:
                guard_node, _ = self._expr(rel, item.line_of("applies_if"), item["applies_if"], scope, BOOL, f"{rid}.applies_if")
            node, _t = self._expr(rel, item.line_of("when"), item.get("when"), scope, BOOL, f"{rid}.when")
            if node is None:
                continue
            tp = self._template(rel, item.line_of("pass"), item.get("pass"), scope, f"{rid}.pass")
            tf = self._template(rel, item.line_of("fail"), item.get("fail"), scope, f"{rid}.fail")
            steps.append(
                Step(
                    id=rid,
                    name=rid,
                    scope=scope_kind,
                    kind="check",
                    title=str(item["title"]),
                    type=BOOL,
                    citation=citation,
                    guard_node=guard_node,
                    gate=bool(item.get("gate", False)),
                    project_default=project_default,
                    text_pass=tp,
                    text_fail=tf,
                    file=rel,
                    line=item.line,
                    node=node,
                    source=_text(item.get("when")),
                    guard_source=_text(item["applies_if"]) if guard_node is not None else "",
                )
            )

        referenced: set[str] = set()
        decision = d.get("decision")
        if not isinstance(decision, list) or not decision:
            self._err(rel, d.line, f"项目 {code} 缺少 decision / program has no decision")
            return None
        scope = self._scope(member, local, local_names)
        checked: list[tuple] = []  # the checked clauses, compiled below once the program's names are known
        for i, item in enumerate(decision):
            if not isinstance(item, LineDict):
                self._err(rel, d.line_of("decision"), "decision 的每一项应为映射 / each decision must be a mapping")
                continue
            status = item.get("status")
            if status not in STATUSES:
                self._err(rel, item.line, f"status 应为 {', '.join(STATUSES)} 之一 / invalid status")
                continue
            last = i == len(decision) - 1
            when_node = None
            if "when" in item:
                when_node, _ = self._expr(rel, item.line_of("when"), item["when"], scope, BOOL, f"{code}.decision[{i}].when")
                if when_node is not None:
                    referenced |= {n.name for n in A.walk(when_node) if isinstance(n, A.Name)}
            elif not last:
                self._err(rel, item.line, "只有最后一项 decision 可以省略 when / only the last decision may omit 'when'")
            if last and "when" in item:
                self._err(rel, item.line, "最后一项 decision 应省略 when（兜底结论） / the last decision must have no 'when'")
            amount_node = None
            parts: list[tuple[str, Any, bool, str]] = []  # (label, node, required, text)
            extra: dict[str, T] = {}
            if "amount" in item and "parts" in item:
                self._err(rel, item.line, "amount 与 parts 只能写一个 / give either amount or parts")
            if "amount" in item:
                amount_node, _ = self._expr(
                    rel, item.line_of("amount"), item["amount"], scope, MONEY, f"{code}.decision[{i}].amount"
                )
                extra["amount"] = T("money", optional=True)
            if "parts" in item:
                for part in item["parts"] or []:
                    if not isinstance(part, LineDict) or "label" not in part or "value" not in part:
                        self._err(
                            rel, item.line_of("parts"), "parts 的每一项需要 label 和 value / each part needs label and value"
                        )
                        continue
                    pnode, _ = self._expr(rel, part.line_of("value"), part["value"], scope, MONEY, f"{code}.decision[{i}].parts")
                    if pnode is not None:
                        parts.append((str(part["label"]), pnode, bool(part.get("required", True)), _text(part["value"])))
                extra["amount"] = T("money", optional=True)
            if pays == "none" and ("amount" in item or "parts" in item):
                self._err(rel, item.line, "pays: none 的项目不能有 amount / a program that pays nothing has no amount")
            tpl = self._template(rel, item.line_of("text"), item.get("text"), scope, f"{code}.decision[{i}].text", extra)
            missing = self._missing(rel, item, scope, f"{code}.decision[{i}]")
            when_source = _text(item["when"]) if when_node is not None else ""
            amount_source = _text(item["amount"]) if amount_node is not None else ""
            checked.append((status, when_node, amount_node, parts, tpl, item.line, missing, when_source, amount_source))
        for s in steps:
            if s.kind == "check" and s.name not in referenced and not s.gate:
                self._err(rel, s.line, f"规则 {s.id} 未在任何 decision.when 中使用 / rule {s.id!r} is not used by any decision")

        links = self._links(rel, d, code, self._scope(member, local, local_names)) if "links" in d else []
        outputs = self._outputs(rel, d, code, local, local_names) if "outputs" in d else ()

        if any(s.gate for s in steps) and checked and checked[-1][0] != "ineligible":
            self._err(
                rel,
                checked[-1][5],
                "有 gate 规则时，最后一项 decision 应为 ineligible / with gate rules the last decision must be 'ineligible'",
            )

        # values of a member program live on the member record
        if member:
            for s in steps:
                if s.kind in ("let", "check"):
                    self.member_names[s.name] = s.type
        # compile: every object of the program is made here, once, in its final form
        member_keys = self._member_keys()
        clauses = tuple(
            Clause(
                status,
                granted_of(status),
                compile_expr(when_node, member_keys) if when_node is not None else None,
                compile_expr(amount_node, member_keys) if amount_node is not None else None,
                tuple(Part(lbl, compile_expr(pnode, member_keys), req, pnode, text) for lbl, pnode, req, text in parts),
                _compile_template(tpl, member_keys),
                line,
                when_node,
                amount_node,
                tuple((_compile_template(f, member_keys), _compile_template(lb, member_keys)) for f, lb in missing),
                when_source,
                amount_source,
                status == "ineligible",
            )
            for status, when_node, amount_node, parts, tpl, line, missing, when_source, amount_source in checked
        )
        prog = Program(
            code,
            name,
            scope_kind,
            basis_cited,
            self._compile_steps(steps),
            clauses,
            rel,
            d.line,
            pays,
            outputs,
            tuple(
                Link(public, compile_expr(node, member_keys) if node is not None else None, node, text)
                for public, node, text in links
            ),
            applies_to=compile_expr(applies_node, member_keys) if applies_node is not None else None,
            applies_node=applies_node,
            applies_source=_text(d["applies_to"]) if applies_node is not None else "",
            rule_ids=tuple(s.id for s in steps if s.kind in ("check", "use")),
            stop_clause=len(clauses) - 1,
            status_key=f"{code}.status",
            granted_key=f"{code}.granted",
            amount_key=f"{code}.amount",
            outside=OUTSIDE,
        )

        # publish this program's results (and rule outcomes) for the programs after it
        target = self.member_record if member else self.household_names
        for f, t in RESULT_FIELDS.items():
            target[f"{code}.{f}"] = t
        for rid in rule_ids:
            target[rid] = BOOL
        return prog

    def _missing(self, rel: str, item: LineDict, scope: Scope, what: str) -> list[tuple[Template, Template]]:
        """``missing:`` of a ``needs_info`` clause: the facts to supply, each ``{field, label}`` (templates)."""
        raw = item.get("missing")
        if item.get("status") != "needs_info":
            if raw is not None:
                self._err(rel, item.line_of("missing"), "missing 只用于 needs_info 结论 / 'missing' is for needs_info clauses")
            return []
        if not isinstance(raw, list) or not raw:
            self._err(
                rel,
                item.line,
                "needs_info 结论需要 missing 列表，写明需补充的事实 / a needs_info clause must name what is missing",
            )
            return []
        out = []
        for m in raw:
            if not isinstance(m, LineDict) or not m.get("field") or not m.get("label"):
                self._err(rel, item.line_of("missing"), "missing 的每一项需要 field 和 label / each item needs field and label")
                continue
            f_tpl = self._template(rel, m.line_of("field"), m["field"], scope, f"{what}.missing.field")
            l_tpl = self._template(rel, m.line_of("label"), m["label"], scope, f"{what}.missing.label")
            if f_tpl is not None and l_tpl is not None:
                out.append((f_tpl, l_tpl))
        return out

    def _links(self, rel: str, d: LineDict, code: str, scope: Scope) -> list[tuple[dict, Any, str]]:
        """``links:`` the linked entitlements a granted determination opens, each with its source:
        (public dict, checked condition or None, its text)."""
        out: list[tuple[dict, Any, str]] = []
        if not isinstance(d["links"], list):
            self._err(rel, d.line_of("links"), "links 应为列表 / links must be a list")
            return out
        allowed = {"code", "name", "citation", "text", "when"}
        for x in d["links"]:
            line = getattr(x, "line", d.line_of("links"))
            if not isinstance(x, LineDict) or not x.get("name") or not x.get("citation"):
                self._err(rel, line, "links 的每一项需要 name 和 citation / each link needs name and citation")
                continue
            for k in x:
                if k not in allowed:
                    self._err(rel, x.line_of(k), f"未知字段 {k!r}（可用：{', '.join(sorted(allowed))}） / unknown field")
            if "code" in x and not is_name(x["code"]):
                self._err(rel, x.line_of("code"), problem(x["code"], "links.code", "links.code") or "")
                continue
            public = {k: str(x[k]) for k in ("code", "name", "text", "citation") if k in x}
            public["citation"] = self._cite(rel, x.line_of("citation"), public["citation"])
            when_node = None
            if "when" in x:
                when_node, _ = self._expr(rel, x.line_of("when"), x["when"], scope, BOOL, f"{code}.links.when")
                if when_node is None:
                    continue
            out.append((public, when_node, _text(x["when"]) if when_node is not None else ""))
        return out

    def _outputs(
        self, rel: str, d: LineDict, code: str, local: dict[str, T], local_names: dict[str, str]
    ) -> tuple[tuple[str, str, T], ...]:
        """``outputs:`` values of this program (``let`` names or rule ids) shown as ``details`` when granted."""
        raw = d["outputs"]
        if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
            self._err(rel, d.line_of("outputs"), "outputs 应为名称列表 / outputs must be a list of names")
            return ()
        out = []
        for name in raw:
            if name not in local:
                self._err(
                    rel, d.line_of("outputs"), f"outputs 中的 {name} 不是本项目的 let 或规则 / {name!r} is not a let or rule here"
                )
                continue
            out_name = name.split(".", 1)[1] if name.startswith(code + ".") else name
            out.append((out_name, local_names[name], local[name]))
        return tuple(out)

    def _use(self, rel: str, item: LineDict, member: bool, code: str) -> Step | None:
        name = item.get("use")
        src = None
        for s in self.facts.steps if self.facts else []:
            if s.name == name:
                src = s
        if src is None:
            self._err(
                rel,
                item.line,
                f"use: {shown(name)} 不是 household 模块中定义的检查 / not a check defined in the household module",
            )
            return None
        if src.type.kind != "bool" or src.text_pass is None:
            self._err(
                rel, item.line, f"use: {name} 需要是带 pass/fail 说明的布尔检查 / must be a boolean check with pass/fail texts"
            )
            return None
        if src.scope == "member" and not member:
            self._err(rel, item.line, f"use: {name} 是成员级检查，不能用于家庭项目 / member check in a household program")
            return None
        extra = set(item) - {"use", "gate"}
        if extra:
            self._err(rel, item.line, f"use 只能与 gate 一起写 / 'use' takes only 'gate' ({', '.join(sorted(extra))})")
        return Step(
            id=src.id,
            name=src.name,
            scope=src.scope,
            kind="use",
            title=src.title,
            type=BOOL,
            citation=src.citation,
            gate=bool(item.get("gate", False)),
            project_default=src.project_default,
            text_pass=src.text_pass,
            text_fail=src.text_fail,
            file=rel,
            line=item.line,
            node=None,
        )

    # -- lookup ----------------------------------------------------------------
    def program(self, code: str) -> Program | None:
        for p in self.programs:
            if p.code == code:
                return p
        return None

    def raise_if_errors(self) -> None:
        if self.errors:
            raise RuleBookError(self.errors)


class RuleBookError(ValueError):
    def __init__(self, errors: list[YamlError]):
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))


def _compile_template(tpl: Template | None, member_keys: frozenset[str]) -> Template | None:
    """The checked template with a function and a converter per slot, as a new object (a template
    already compiled, shared by a ``use`` step, is returned as it is)."""
    if tpl is None or len(tpl.slots) == len(tpl.nodes):
        return tpl
    slots = tuple((name, None if node is None else compile_expr(node, member_keys), converter(t)) for name, node, t in tpl.nodes)
    return replace(tpl, slots=slots)


def program_trees(p: Program) -> tuple[A.Node, ...]:
    """Every checked tree a program's outcome depends on (its sentences left out): steps and their
    guards, clause conditions, amounts and parts, ``applies_to``."""
    nodes = [s.node for s in p.steps] + [s.guard_node for s in p.steps]
    nodes += [c.when_node for c in p.decision] + [c.amount_node for c in p.decision]
    nodes += [part.node for c in p.decision for part in c.parts] + [p.applies_node]
    return tuple(n for n in nodes if n is not None)


def _text(src: Any) -> str:
    """The text of an expression as written (YAML reads ``true`` as a bool)."""
    return str(src).lower() if isinstance(src, bool) else str(src)


_EXPRESSION_KEYS = frozenset({"when", "value", "amount", "applies_if", "applies_to"})
_TEMPLATE_KEYS = frozenset({"pass", "fail", "text", "label", "field"})


def _expression_texts(d: Any):
    """(key, text) of every string in a program file that holds an expression or a template."""
    if isinstance(d, dict):
        for k, v in d.items():
            if k in _EXPRESSION_KEYS or k in _TEMPLATE_KEYS:
                if isinstance(v, str):
                    yield k, v
            elif k != "use":  # 'use' names a check of the household module, never a program
                yield from _expression_texts(v)
    elif isinstance(d, list):
        for x in d:
            yield from _expression_texts(x)


def _names_in(key: str, text: str) -> list[str]:
    """The names an expression, or the slots of a template, refer to: read from the parsed tree.
    Text that does not parse refers to nothing here; loading the program reports it."""
    try:
        if key in _EXPRESSION_KEYS:
            trees = [parse(text)]
        elif unbalanced(text):
            return []
        else:
            trees = [parse(name) for is_slot, name in split(text) if is_slot]
    except ExprSyntaxError:
        return []
    return [n.name for tree in trees for n in A.walk(tree) if isinstance(n, A.Name)]


def load_rulebook(
    root: Path | None = None,
    rules_dir: Path | None = None,
    policies_dir: Path | None = None,
    programs: set[str] | frozenset[str] | None = None,
) -> RuleBook:
    """Load rules and policies; ``root`` is the directory holding ``rules/`` and ``policies/``.

    ``programs`` limits evaluation to these program codes (and the programs they depend on).
    """
    base = root or default_root()
    store = PolicyStore(policies_dir or base / "policies")
    return RuleBook(rules_dir or base / "rules", store, programs)


def default_root() -> Path:
    """Where ``rules/`` and ``policies/`` live: ``$JIUZHU_HOME``, else this checkout, else the working directory."""

    env = os.environ.get("JIUZHU_HOME")
    if env:
        return Path(env)
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "rules").is_dir():
        return checkout
    return Path.cwd()

"""Monitoring rules (``rules/monitoring/*.yaml``): loading, checking, and compiling to durable-rules.

A monitoring rule matches one or more facts of a household's session (see
``engine.monitor.facts``) and raises an alert with a level, a Chinese sentence,
a suggested action and a citation. Conditions are written in the rule language
(``docs/rule-language.md``), parsed into its closed syntax tree and type-checked
against the fact fields, then translated into a durable-rules ruleset
definition (JSON): nothing in a rule file is ever handed to Python.

Everything is checked at load: unknown fields, type errors, a condition
durable-rules cannot express, a missing citation, sentence or level, duplicate
ids; each refused with file and line, like the program rules. Citations are checked against
the same sources registry as the program rules (``policies/sources.yaml``) and rendered once, at
load, by the same function, so an alert names documents, never seed files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gmpy2 import mpq

from engine.book.ids import is_name, shown
from engine.book.rules import RuleBookError
from engine.book.templates import split, unbalanced
from engine.book.yamlio import LineDict, YamlError, load_yaml
from engine.policies.sources import SourceRegistry, check_citation
from engine.schema.vocab import PROGRAM_CODES

from ..expr import Scope, check, parse
from ..expr import ast as A
from ..expr.checker import TypeCheckError
from ..expr.parser import ExprSyntaxError
from ..expr.types import BOOL, T
from .facts import BUILTIN_MILESTONES, fact_schemas

LEVELS = {"red": "红", "orange": "橙", "yellow": "黄"}
LEVEL_ORDER = {"red": 0, "orange": 1, "yellow": 2}
_CMP = {"==": None, "!=": "$neq", "<": "$lt", "<=": "$lte", ">": "$gt", ">=": "$gte"}
_MIRROR = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
_ARITH = {"+": "$add", "-": "$sub", "*": "$mul", "/": "$div"}
MEMBER_SETS = ("all", "tekun_minor")


class MonitorRuleError(YamlError):
    """A problem in a monitoring rule file, with file and line."""


@dataclass(frozen=True)
class Milestone:
    name: str
    age: int
    members: str  # all | tekun_minor
    title: str
    citation: str


@dataclass
class Pattern:
    alias: str
    fact: str
    condition: dict  # durable-rules condition (JSON)


@dataclass
class MonitorRule:
    id: str
    title: str
    level: str
    patterns: list[Pattern]
    key: list[str]  # aliases whose fact ids make the alert's idempotency key
    member: tuple[str, str] | None  # (alias, field) naming the member concerned
    text: list[tuple[bool, str]]  # template parts: (is_slot, text or "alias.field")
    action: str
    citation: str
    project_default: bool
    slot_types: dict[str, T] = field(default_factory=dict)
    file: str = ""
    line: int = 0

    @property
    def level_zh(self) -> str:
        return LEVELS[self.level]


@dataclass
class MonitorBook:
    """Every monitoring file of a directory, checked."""

    dir: Path
    programs: tuple[str, ...] = ("dibao", "tekun", "dibao_edge", "temporary")
    retain_days: int = 400
    milestones: list[Milestone] = field(default_factory=list)
    rules: list[MonitorRule] = field(default_factory=list)
    errors: list[MonitorRuleError] = field(default_factory=list)
    paths: list[Path] = field(default_factory=list)

    def rule(self, rule_id: str) -> MonitorRule | None:
        return next((r for r in self.rules if r.id == rule_id), None)

    def definition(self) -> dict:
        """The durable-rules ruleset definition (JSON-ready): each rule's patterns, by rule id."""
        return {r.id: {"all": [{p.alias: p.condition} for p in r.patterns]} for r in self.rules}

    def raise_if_errors(self) -> None:
        if self.errors:
            raise RuleBookError(self.errors)


def load_monitoring(rules_dir: Path) -> MonitorBook:
    """Load ``rules_dir`` (``rules/monitoring``); problems are collected in ``.errors``."""
    book = MonitorBook(rules_dir)
    loader = _Loader(book)
    loader.load()
    return book


class _Loader:
    def __init__(self, book: MonitorBook):
        self.book = book
        self.root = book.dir.parent.parent if book.dir.parent.name == "rules" else book.dir.parent
        # The program rules' registry (engine.policies.parameters loads the same file); a rule home without
        # one shows citations as written, as engine.policies.sources does for the program rules.
        self.sources = SourceRegistry()
        sources_path = self.root / "policies" / "sources.yaml"
        if sources_path.exists():
            self.sources = SourceRegistry.load(sources_path, self.rel(sources_path), self.err)

    def err(self, file: str, line: int, msg: str) -> None:
        self.book.errors.append(MonitorRuleError(file, line, msg))

    def rel(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.root))
        except ValueError:
            return str(path)

    def load(self) -> None:
        book = self.book
        files = []
        if not book.dir.is_dir():
            self.err(str(book.dir), 0, "缺少监测规则目录 / monitoring rule directory missing")
            return
        for path in sorted(book.dir.glob("*.yaml")):
            book.paths.append(path)
            rel = self.rel(path)
            try:
                files.append((rel, load_yaml(path, rel)))
            except YamlError as e:
                self.err(e.file, e.line, e.message)
        settings_seen: dict[str, str] = {}
        allowed = {"module", "programs", "retain_days", "milestones", "rules"}
        for rel, d in files:
            if not isinstance(d, LineDict) or d.get("module") != "monitoring":
                self.err(rel, 1, "监测规则文件应以 module: monitoring 开头 / a monitoring file starts with 'module: monitoring'")
                continue
            for k in d:
                if k not in allowed:
                    self.err(rel, d.line_of(k), f"未知字段 {k!r}（可用：{', '.join(sorted(allowed))}） / unknown field")
            for k in ("programs", "retain_days", "milestones"):
                if k in d:
                    if k in settings_seen:
                        self.err(rel, d.line_of(k), f"{k} 已在 {settings_seen[k]} 中设置 / {k} is set twice")
                        continue
                    settings_seen[k] = rel
            if "programs" in d:
                progs = d["programs"]
                if not isinstance(progs, list) or not progs or any(p not in PROGRAM_CODES for p in progs):
                    self.err(rel, d.line_of("programs"), "programs 应为项目代码列表（见 docs/contract.md） / programs must list program codes")
                else:
                    book.programs = tuple(progs)
            if "retain_days" in d:
                rd = d["retain_days"]
                if not isinstance(rd, int) or isinstance(rd, bool) or not 31 <= rd <= 3660:
                    self.err(rel, d.line_of("retain_days"), "retain_days 应为31到3660之间的整数 / retain_days must be 31..3660")
                else:
                    book.retain_days = rd
            if "milestones" in d:
                self.milestones(rel, d)
        names = tuple(m.name for m in book.milestones)
        self.schemas = fact_schemas(names)
        seen: dict[str, str] = {}
        for rel, d in files:
            if not isinstance(d, LineDict) or d.get("module") != "monitoring":
                continue
            for item in d.get("rules") or []:
                r = self.rule(rel, item)
                if r is None:
                    continue
                if r.id in seen:
                    self.err(rel, r.line, f"规则 {r.id} 重复（已见于 {seen[r.id]}） / duplicate rule id")
                    continue
                seen[r.id] = rel
                book.rules.append(r)
        if not book.rules and not book.errors:
            self.err(self.rel(book.dir), 0, "没有任何监测规则 / no monitoring rules")

    def milestones(self, rel: str, d: LineDict) -> None:
        items = d["milestones"]
        if not isinstance(items, list):
            self.err(rel, d.line_of("milestones"), "milestones 应为列表 / milestones must be a list")
            return
        for m in items:
            line = getattr(m, "line", d.line_of("milestones"))
            if not isinstance(m, LineDict):
                self.err(rel, line, "milestones 的每一项应为映射 / each milestone must be a mapping")
                continue
            extra = set(m) - {"name", "age", "members", "title", "citation"}
            if extra:
                self.err(rel, line, f"未知字段 {sorted(extra)} / unknown field")
            name, age, members = m.get("name"), m.get("age"), m.get("members", "all")
            if not is_name(name) or name in BUILTIN_MILESTONES:
                self.err(rel, line, f"milestone 的 name 应为英文标识符，且不能是 {', '.join(BUILTIN_MILESTONES)} / bad milestone name")
                continue
            if not isinstance(age, int) or isinstance(age, bool) or not 1 <= age <= 120:
                self.err(rel, m.line_of("age"), "age 应为1到120之间的整数（周岁） / age must be 1..120")
                continue
            if members not in MEMBER_SETS:
                self.err(rel, m.line_of("members"), f"members 应为 {', '.join(MEMBER_SETS)} 之一 / bad members")
                continue
            if not str(m.get("citation") or "").strip() or not str(m.get("title") or "").strip():
                self.err(rel, line, f"milestone {name} 需要 title 和 citation / needs title and citation")
                continue
            if any(x.name == name for x in self.book.milestones):
                self.err(rel, line, f"milestone {name} 重复 / duplicate milestone")
                continue
            citation = check_citation(self.sources, str(m["citation"]).strip(), rel, m.line_of("citation"), self.err)
            self.book.milestones.append(Milestone(name, age, members, str(m["title"]), citation))

    # -- one rule ------------------------------------------------------------
    def rule(self, rel: str, item: Any) -> MonitorRule | None:
        if not isinstance(item, LineDict):
            self.err(rel, 0, "rules 的每一项应为映射 / each rule must be a mapping")
            return None
        allowed = {"id", "title", "level", "match", "key", "member", "text", "action", "citation", "project_default"}
        for k in item:
            if k not in allowed:
                self.err(rel, item.line_of(k), f"未知字段 {k!r}（可用：{', '.join(sorted(allowed))}） / unknown field")
        rid = item.get("id")
        if not isinstance(rid, str) or not rid.startswith("monitor.") or rid.count(".") != 1 or not is_name(rid[8:]):
            self.err(rel, item.line, "监测规则 id 应写作 monitor.<名称> / monitoring rule ids are 'monitor.<name>'")
            return None
        ok = True
        for k in ("title", "text", "action", "citation"):
            if not isinstance(item.get(k), str) or not item[k].strip():
                self.err(rel, item.line_of(k), f"{rid} 缺少 {k}（文本） / {rid} has no {k}")
                ok = False
        level = item.get("level")
        if level not in LEVELS:
            self.err(rel, item.line_of("level"), f"{rid}: level 应为 red（红）、orange（橙）或 yellow（黄） / level must be red, orange or yellow")
            ok = False
        match = item.get("match")
        if not isinstance(match, list) or not match:
            self.err(rel, item.line_of("match"), f"{rid} 需要 match 列表（要匹配的事实） / {rid} needs a 'match' list")
            return None
        patterns: list[Pattern] = []
        aliases: dict[str, str] = {}
        for pm in match:
            pat = self.pattern(rel, rid, pm, aliases)
            if pat is None:
                ok = False
                continue
            patterns.append(pat)
            aliases[pat.alias] = pat.fact
        if not ok:
            return None
        key = item.get("key", list(aliases))
        if not isinstance(key, list) or not key or any(k not in aliases for k in key):
            self.err(rel, item.line_of("key"), f"{rid}: key 应为 match 中的别名列表 / key must list aliases of 'match'")
            return None
        member = None
        if "member" in item:
            member = self.slot(rel, item.line_of("member"), str(item["member"]), aliases)
            if member is None:
                return None
            if member[1] != "member":
                self.err(rel, item.line_of("member"), f"{rid}: member 应写作 <别名>.member / member must be <alias>.member")
                return None
        text = item["text"]
        if unbalanced(text):
            self.err(rel, item.line_of("text"), f"{rid}: text 中的花括号不配对 / unbalanced braces")
            return None
        parts = split(text)
        slot_types = {}
        for is_slot, name in parts:
            if is_slot:
                s = self.slot(rel, item.line_of("text"), name, aliases)
                if s is None:
                    return None
                slot_types[name] = self.schemas[aliases[s[0]]][s[1]]
        return MonitorRule(
            id=rid,
            title=item["title"].strip(),
            level=level,
            patterns=patterns,
            key=list(key),
            member=member,
            text=parts,
            action=item["action"].strip(),
            citation=check_citation(self.sources, item["citation"].strip(), rel, item.line_of("citation"), self.err),
            project_default=bool(item.get("project_default", False)),
            slot_types=slot_types,
            file=rel,
            line=item.line,
        )

    def slot(self, rel: str, line: int, name: str, aliases: dict[str, str]) -> tuple[str, str] | None:
        alias, _, fld = name.partition(".")
        if alias not in aliases or fld not in self.schemas[aliases[alias]]:
            known = ", ".join(f"{a}.<{aliases[a]}字段>" for a in aliases)
            self.err(rel, line, f"{{{name}}} 不是已匹配事实的字段（可用：{known}） / {name!r} is not a field of a matched fact")
            return None
        return alias, fld

    def pattern(self, rel: str, rid: str, pm: Any, aliases: dict[str, str]) -> Pattern | None:
        if not isinstance(pm, LineDict) or set(pm) - {"as", "fact", "when"} or "as" not in pm or "fact" not in pm:
            self.err(rel, getattr(pm, "line", 0), f"{rid}: match 的每一项写作 {{as: 别名, fact: 事实, when: 条件}} / each match is {{as, fact, when}}")
            return None
        alias, fact = pm["as"], pm["fact"]
        if not is_name(alias) or alias in aliases or alias in ("m", "kind", "sid", "id"):
            self.err(rel, pm.line_of("as"), f"{rid}: 别名 {alias!r} 无效或重复 / bad or duplicate alias")
            return None
        if fact not in self.schemas:
            self.err(rel, pm.line_of("fact"), f"{rid}: 未知事实 {fact!r}（可用：{', '.join(self.schemas)}） / unknown fact")
            return None
        cond: dict = {"kind": fact}
        if "when" in pm:
            src = pm["when"]
            scope = Scope(dict(self.schemas[fact]), self.schemas, {}, dict(aliases))
            try:
                node, _t = check(parse(str(src)), scope, BOOL)
                translated = _Translator(fact).cond(node)
            except (ExprSyntaxError, TypeCheckError) as e:
                self.err(rel, pm.line_of("when"), f"{rid}.{alias}.when：{e.message}（位于第{e.pos + 1}个字符：{shown(src, 500)}）")
                return None
            cond = {"$and": [cond, *(translated.get("$and", [translated]))]}
        return Pattern(alias, fact, cond)


class _Translator:
    """A checked condition -> durable-rules JSON. The left side of each comparison is a field of
    the fact being matched; the right side a constant, another field of it, a field of a fact
    matched earlier, or arithmetic over those (durable-rules' own form)."""

    def __init__(self, fact: str):
        self.fact = fact

    def fail(self, node: A.Node, zh: str, en: str):
        raise TypeCheckError(f"{zh} / {en}", node.pos)

    def cond(self, node: A.Node) -> dict:
        if isinstance(node, A.Binary) and node.op in ("and", "or"):
            key = "$and" if node.op == "and" else "$or"
            items = []
            for side in (node.left, node.right):
                c = self.cond(side)
                items.extend(c[key] if key in c and len(c) == 1 else [c])
            return {key: items}
        if isinstance(node, A.Name) and node.binding == "name" and node.type.kind == "bool":
            return {node.path: True}
        if isinstance(node, A.Unary) and node.op == "not":
            inner = node.operand
            if isinstance(inner, A.Name) and inner.binding == "name" and inner.type.kind == "bool":
                return {inner.path: False}
            self.fail(node, "not 只能用于本事实的布尔字段", "'not' applies only to a boolean field of this fact")
        if isinstance(node, A.Binary) and node.op in ("in", "not in"):
            if not self.own(node.left):
                self.fail(node, "in 的左侧应为本事实的字段", "the left of 'in' must be a field of this fact")
            values = [i.value for i in node.right.items] if isinstance(node.right, A.SetLit) else None
            if values is None:
                self.fail(node.right, "in 的右侧应为集合常量", "the right of 'in' must be a set literal")
            f = node.left.path
            if node.op == "in":
                return {"$or": [{f: v} for v in values]} if len(values) > 1 else {f: values[0]}
            return {"$and": [{"$neq": {f: v}} for v in values]}
        if isinstance(node, A.Binary) and node.op in _CMP:
            left, right, op = node.left, node.right, node.op
            if not self.own(left):
                if not self.own(right):
                    self.fail(node, "比较的一侧应为本事实的字段", "one side of a comparison must be a field of this fact")
                left, right, op = right, left, _MIRROR[op]
            money = left.type.kind == "money"
            value = self.value(right, money)
            return {left.path: value} if op == "==" else {_CMP[op]: {left.path: value}}
        self.fail(node, "监测规则的条件只能由比较、in、and、or、not 组成", "a monitoring condition is made of comparisons, in, and, or, not")

    @staticmethod
    def own(node: A.Node) -> bool:
        return isinstance(node, A.Name) and node.binding == "name"

    def value(self, node: A.Node, money: bool) -> Any:
        if isinstance(node, A.Literal) or (isinstance(node, A.Unary) and node.op == "-" and isinstance(node.operand, A.Literal)):
            lit = node if isinstance(node, A.Literal) else node.operand
            sign = -1 if lit is not node else 1
            if lit.kind in ("str", "bool"):
                return lit.value
            if lit.kind == "none":
                self.fail(node, "不能与 none 比较", "cannot compare with none")
            q = mpq(lit.value) * (100 if money else 1)
            if q.denominator != 1:
                self.fail(node, "数值应为整数（金额至多两位小数）", "numbers must be whole (money to the fen)")
            return sign * int(q)
        if isinstance(node, A.Name) and node.binding == "name":
            return {"$m": node.path}
        if isinstance(node, A.Name) and node.binding == "field":
            return {node.var: node.path}
        if isinstance(node, A.Binary) and node.op in _ARITH:
            if node.op in ("*", "/"):
                # a multiplier or divisor is a plain number; the other side keeps the money context
                if node.op == "/" and not (isinstance(node.right, A.Literal) and node.right.kind == "int"):
                    self.fail(node, "除数应为整数常量", "a divisor must be a whole-number literal")
                lm = node.left.type.kind == "money"
                rm = node.right.type.kind == "money"
                return {_ARITH[node.op]: {"$l": self.value(node.left, lm), "$r": self.value(node.right, rm)}}
            return {_ARITH[node.op]: {"$l": self.value(node.left, money), "$r": self.value(node.right, money)}}
        self.fail(node, "此处只能写常量、字段或四则运算", "only literals, fields and arithmetic here")

"""Name resolution and type checking of rule expressions.

The checker is what makes the language closed: a name is either a declared
fact, a value derived by an earlier rule, a program result, a loop variable's
declared field or a declared policy parameter (``param.<key>``). Anything
else, and any operation on mismatched types, is refused with a message that
names the problem in Chinese and English.
"""

from __future__ import annotations

import copy
import datetime as _dt
import difflib
from dataclasses import dataclass, field

from . import ast
from .types import BOOL, DATE, INT, MONEY, NONE, NUMBER, NUMERIC, T, set_of

FUNCTIONS = {
    "min",
    "max",
    "len",
    "has_any",
    "years_between",
    "months_between",
    "days_between",
    "add_months",
    "date",
    "within",
}
AGGREGATES = {"sum", "count", "any", "all", "list"}


class TypeCheckError(ValueError):
    def __init__(self, message: str, pos: int):
        super().__init__(message)
        self.message = message
        self.pos = pos


@dataclass
class Scope:
    """What an expression may refer to."""

    names: dict[str, T]  # bare names: facts, derived values, program results
    records: dict[str, dict[str, T]]  # record schemas: field name -> type
    params: dict[str, T]  # policy parameters, referred to as param.<key>
    loop: dict[str, str] = field(default_factory=dict)  # loop var -> record name
    # where a bare name is stored when that differs from the name (a program's own ``let`` values:
    # ``standard`` -> ``dibao:standard``), so the checker binds the path once and nothing renames it later
    paths: dict[str, str] = field(default_factory=dict)

    def with_var(self, var: str, record: str) -> Scope:
        return Scope(self.names, self.records, self.params, {**self.loop, var: record}, self.paths)


def _fail(msg: str, node: ast.Node) -> TypeCheckError:
    return TypeCheckError(msg, node.pos)


def _is_numeric_literal(node: ast.Node) -> bool:
    if isinstance(node, ast.Literal) and node.kind in ("int", "number"):
        return True
    return isinstance(node, ast.Unary) and node.op == "-" and _is_numeric_literal(node.operand)


class Checker:
    def check(self, node: ast.Node, scope: Scope, expect: T | None = None) -> T:
        t = self._check(node, scope)
        node.type = t
        if expect is not None and not _assignable(t, expect, node):
            raise _fail(f"表达式类型为 {t}，此处应为 {expect} / expression has type {t}, expected {expect}", node)
        return t

    def _check(self, node: ast.Node, scope: Scope) -> T:
        method = getattr(self, "_" + type(node).__name__)
        return method(node, scope)

    # -- leaves ------------------------------------------------------------
    def _Literal(self, node: ast.Literal, scope: Scope) -> T:
        if node.kind == "str":
            return T("str", frozenset({node.value}))
        return {"bool": BOOL, "int": INT, "number": NUMBER, "none": NONE}[node.kind]

    def _SetLit(self, node: ast.SetLit, scope: Scope) -> T:
        values: set[str] = set()
        for item in node.items:
            if not isinstance(item, ast.Literal) or item.kind != "str":
                raise _fail("集合中只能写文本常量，如 {'wage', 'pension'} / set items must be text literals", item)
            item.type = T("str", frozenset({item.value}))
            values.add(item.value)
        return set_of(*sorted(values))

    def _Name(self, node: ast.Name, scope: Scope) -> T:
        name = node.name
        head, _, rest = name.partition(".")
        if head in scope.loop:
            record = scope.loop[head]
            fields = scope.records[record]
            if not rest:
                node.binding, node.var = "var", head
                return T("record", record=record)
            if rest not in fields:
                raise _fail(self._unknown(rest, fields, f"记录 {record} 没有字段", f"record {record} has no field"), node)
            node.binding, node.var, node.path = "field", head, rest
            return fields[rest]
        if head == "param":
            if rest not in scope.params:
                raise _fail(self._unknown(rest, scope.params, "未声明的政策参数", "undeclared policy parameter"), node)
            node.binding, node.path = "param", rest
            return scope.params[rest]
        if name in scope.names:
            node.binding, node.path = "name", scope.paths.get(name, name)
            return scope.names[name]
        raise _fail(self._unknown(name, scope.names, "未知名称", "unknown name"), node)

    @staticmethod
    def _unknown(name: str, known, zh: str, en: str) -> str:
        close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.6)
        hint = f"；是否指 {', '.join(close)}？ / did you mean {', '.join(close)}?" if close else ""
        return f"{zh} {name!r} / {en} {name!r}{hint}"

    # -- operators ---------------------------------------------------------
    def _Unary(self, node: ast.Unary, scope: Scope) -> T:
        t = self.check(node.operand, scope)
        if node.op == "not":
            self._need_bool(t, node.operand, "not")
            return BOOL
        if t.kind not in NUMERIC or t.optional:
            raise _fail(f"负号只能用于数值，得到 {t} / unary minus needs a number, got {t}", node)
        return t

    def _Binary(self, node: ast.Binary, scope: Scope) -> T:
        op = node.op
        lt = self.check(node.left, scope)
        rt = self.check(node.right, scope)
        if op in ("and", "or"):
            self._need_bool(lt, node.left, op)
            self._need_bool(rt, node.right, op)
            return BOOL
        if op in ("in", "not in"):
            if rt.kind != "set":
                raise _fail(f"in 右侧应为集合，得到 {rt} / right side of 'in' must be a set, got {rt}", node.right)
            if lt.kind != "str":
                raise _fail(f"in 左侧应为文本，得到 {lt} / left side of 'in' must be text, got {lt}", node.left)
            self._check_domain(lt, rt, node)
            return BOOL
        if op in ("==", "!="):
            if lt.kind == "none" or rt.kind == "none":
                other, other_node = (rt, node.right) if lt.kind == "none" else (lt, node.left)
                if not other.optional and other.kind != "none":
                    raise _fail(f"{other} 不可能为 none，比较无意义 / {other} can never be none", other_node)
                return BOOL
            if lt.kind == "str" and rt.kind == "str":
                self._check_domain(lt, rt, node)
                return BOOL
            self._comparable(lt, rt, node)
            return BOOL
        if op in ("<", "<=", ">", ">="):
            self._comparable(lt, rt, node)
            if lt.kind not in NUMERIC and lt.kind != "date":
                raise _fail(f"只能比较数值或日期的大小，得到 {lt} / ordering needs numbers or dates, got {lt}", node)
            return BOOL
        return self._arith(op, lt, rt, node)

    def _arith(self, op: str, lt: T, rt: T, node: ast.Binary) -> T:
        for t, n in ((lt, node.left), (rt, node.right)):
            if t.kind not in NUMERIC or t.optional:
                raise _fail(f"运算 {op} 需要数值，得到 {t} / operator {op!r} needs numbers, got {t}", n)
        lk, rk = lt.kind, rt.kind
        if op in ("+", "-"):
            if lk == rk:
                return lt.plain()
            if {lk, rk} == {"int", "number"}:
                return NUMBER
            raise _fail(f"不能将 {lt} 与 {rt} 相加减（金额只能与金额相加减） / cannot add or subtract {lt} and {rt}", node)
        if op == "*":
            if lk == "money" and rk == "money":
                raise _fail("两个金额不能相乘 / cannot multiply two amounts of money", node)
            if "money" in (lk, rk):
                return MONEY
            if lk == rk == "int":
                return INT
            return NUMBER
        # division
        if rk == "money" and lk != "money":
            raise _fail("不能用数值除以金额 / cannot divide a number by an amount of money", node)
        if lk == "money" and rk == "money":
            return NUMBER
        if lk == "money":
            return MONEY
        return NUMBER

    def _comparable(self, lt: T, rt: T, node: ast.Binary) -> None:
        lk, rk = lt.kind, rt.kind
        if lk == rk:
            return
        if {lk, rk} <= {"int", "number"}:
            return
        if {lk, rk} <= NUMERIC and (_is_numeric_literal(node.left) or _is_numeric_literal(node.right)):
            return
        raise _fail(f"不能比较 {lt} 与 {rt} / cannot compare {lt} with {rt}", node)

    @staticmethod
    def _check_domain(lt: T, rt: T, node: ast.Binary) -> None:
        # a literal value (or set of literal values) must be one the other side can take
        for lit_node, lit_t, other_t in ((node.left, lt, rt), (node.right, rt, lt)):
            if not isinstance(lit_node, (ast.Literal, ast.SetLit)):
                continue
            if lit_t.domain is None or other_t.domain is None:
                continue
            bad = sorted(lit_t.domain - other_t.domain)
            if bad:
                raise _fail(
                    f"取值 {'、'.join(bad)} 不在允许范围内（可选：{'、'.join(sorted(other_t.domain))}） / "
                    f"value(s) {bad} not among {sorted(other_t.domain)}",
                    lit_node,
                )

    @staticmethod
    def _need_bool(t: T, node: ast.Node, op: str) -> None:
        if t.kind != "bool":
            raise _fail(f"{op} 需要布尔值（真/假），得到 {t} / {op!r} needs a boolean, got {t}", node)

    def _IfElse(self, node: ast.IfElse, scope: Scope) -> T:
        ct = self.check(node.cond, scope)
        self._need_bool(ct, node.cond, "if")
        a = self.check(node.then, scope)
        b = self.check(node.other, scope)
        # "else 0" next to an amount reads as zero yuan
        if a.kind == "money" and b.kind in ("int", "number") and _is_numeric_literal(node.other):
            return a.plain() if not a.optional else a
        if b.kind == "money" and a.kind in ("int", "number") and _is_numeric_literal(node.then):
            return b.plain() if not b.optional else b
        return self._unify(a, b, node)

    @staticmethod
    def _unify(a: T, b: T, node: ast.Node) -> T:
        if a.kind == "none":
            return T(b.kind, b.domain, b.record, True)
        if b.kind == "none":
            return T(a.kind, a.domain, a.record, True)
        if a.kind == b.kind:
            domain = a.domain | b.domain if a.domain is not None and b.domain is not None else None
            return T(a.kind, domain, a.record, a.optional or b.optional)
        if {a.kind, b.kind} == {"int", "number"}:
            return NUMBER
        raise _fail(f"两个分支类型不一致：{a} 与 {b} / branches have different types: {a} and {b}", node)

    # -- calls -------------------------------------------------------------
    def _Call(self, node: ast.Call, scope: Scope) -> T:
        f = node.func
        if f in AGGREGATES:
            raise _fail(f"{f}(...) 需要写成 {f}(表达式 for 变量 in 列表) / {f}() takes a 'for' clause", node)
        if f not in FUNCTIONS:
            raise _fail(Checker._unknown(f, FUNCTIONS | AGGREGATES, "未知函数", "unknown function"), node)
        args = node.args
        ts = [self.check(a, scope) for a in args]

        def arity(n: int) -> None:
            if len(args) != n:
                raise _fail(f"{f}() 需要 {n} 个参数，得到 {len(args)} / {f}() takes {n} arguments", node)

        if f in ("min", "max"):
            if len(args) < 2:
                raise _fail(f"{f}() 至少需要 2 个参数 / {f}() needs at least 2 arguments", node)
            kinds = {t.kind for t in ts}
            for t, a in zip(ts, args, strict=True):
                if t.kind not in NUMERIC or t.optional:
                    raise _fail(f"{f}() 的参数应为数值，得到 {t} / {f}() needs numbers", a)
            if "money" in kinds:
                for t, a in zip(ts, args, strict=True):
                    if t.kind != "money" and not _is_numeric_literal(a):
                        raise _fail(f"{f}() 不能混合金额与非金额 / {f}() cannot mix money and numbers", a)
                return MONEY
            return INT if kinds == {"int"} else NUMBER
        if f == "len":
            arity(1)
            if ts[0].kind not in ("list", "set"):
                raise _fail(f"len() 需要列表或集合，得到 {ts[0]} / len() needs a list or set", args[0])
            return INT
        if f == "has_any":
            arity(2)
            for t, a in zip(ts, args, strict=True):
                if t.kind != "set":
                    raise _fail(f"has_any() 的参数应为集合，得到 {t} / has_any() needs sets", a)
            if ts[0].domain is not None and ts[1].domain is not None and not ts[1].domain <= ts[0].domain:
                bad = sorted(ts[1].domain - ts[0].domain)
                raise _fail(f"取值 {', '.join(bad)} 不在允许范围内 / value(s) {bad} not allowed", args[1])
            return BOOL
        if f in ("years_between", "months_between", "days_between"):
            arity(2)
            for t, a in zip(ts, args, strict=True):
                if t.kind != "date" or t.optional:
                    raise _fail(f"{f}() 的参数应为日期 / {f}() needs dates", a)
            return INT
        if f == "add_months":
            arity(2)
            if ts[0].kind != "date" or ts[1].kind != "int":
                raise _fail("add_months(日期, 整数月数) / add_months(date, int)", node)
            return DATE
        if f == "date":
            arity(1)
            a = args[0]
            if not (isinstance(a, ast.Literal) and a.kind == "str"):
                raise _fail("date() 需要 'YYYY-MM-DD' 文本常量 / date() needs a 'YYYY-MM-DD' literal", a)

            try:
                _dt.date.fromisoformat(a.value)
            except ValueError:
                raise _fail(f"日期 {a.value!r} 无效 / invalid date {a.value!r}", a) from None
            return DATE
        if f == "within":
            arity(2)
            for t, a in zip(ts, args, strict=True):
                if t.kind != "str":
                    raise _fail("within(行政区划代码, 行政区划代码) 的参数应为文本 / within() needs codes", a)
            return BOOL
        raise AssertionError(f)  # pragma: no cover

    def _Comprehension(self, node: ast.Comprehension, scope: Scope) -> T:
        st = self.check(node.source, scope)
        if st.kind != "list":
            raise _fail(f"for ... in 后应为列表，得到 {st} / 'for ... in' needs a list, got {st}", node.source)
        if node.var in scope.loop or node.var in scope.names:
            raise _fail(f"循环变量 {node.var!r} 与已有名称重名 / loop variable shadows a name", node)
        inner = scope.with_var(node.var, st.record)
        if node.cond is not None:
            self._need_bool(self.check(node.cond, inner), node.cond, "if")
        et = self.check(node.expr, inner)
        f = node.func
        if f == "list":
            if not (isinstance(node.expr, ast.Name) and node.expr.name == node.var):
                raise _fail("列表推导只能筛选，写作 [x for x in 列表 if 条件] / list comprehension only filters", node)
            return st
        if f == "sum":
            if et.kind not in NUMERIC or et.optional:
                raise _fail(f"sum() 需要数值，得到 {et} / sum() needs numbers", node.expr)
            return et.plain()
        if f == "count":
            return INT
        if f in ("any", "all"):
            self._need_bool(et, node.expr, f)
            return BOOL
        raise _fail(Checker._unknown(f, AGGREGATES, "未知聚合函数", "unknown aggregate"), node)


def _assignable(t: T, expect: T, node: ast.Node) -> bool:
    if expect.kind == t.kind:
        return expect.optional or not t.optional or t.kind == "none"
    if t.kind == "none":
        return expect.optional
    if expect.kind == "number" and t.kind == "int":
        return True
    return bool(expect.kind == "money" and _is_numeric_literal(node))


def check(node: ast.Node, scope: Scope, expect: T | None = None) -> tuple[ast.Node, T]:
    """The checked tree and its type. The parser's tree is left as it was: the checker annotates a copy
    of its own (types, and how each name binds), which is the tree the executors then read."""
    tree = copy.deepcopy(node)
    return tree, Checker().check(tree, scope, expect)


__all__ = ["AGGREGATES", "FUNCTIONS", "MONEY", "Scope", "TypeCheckError", "check"]

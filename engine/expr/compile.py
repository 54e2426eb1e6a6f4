"""Compile a checked expression tree into nested Python closures.

This is the single-household backend: each node becomes a small function of
an ``Env``. No text is ever handed to Python's ``eval``/``exec``; the closures
are fixed code parameterised by the node's operands.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from gmpy2 import mpq

from . import ast
from .runtime import Missing, add_months, merge, months_between, within, years_between

Fn = Callable[["Env"], Any]
ZERO = mpq(0)


class Env:
    """Evaluation state for one household.

    ``h``/``ht``: household-scope values and the parameter keys each one used;
    ``m``/``mt``: the same for the member being evaluated; ``p``: resolved
    parameters; ``loop``: comprehension variables; ``trace``: parameter keys
    read while evaluating the current rule (for its citation).
    """

    __slots__ = ("h", "ht", "loop", "m", "mt", "p", "trace")

    def __init__(self, h: dict, p: dict):
        self.h = h
        self.ht: dict[str, tuple] = {}
        self.m: dict = {}
        self.mt: dict[str, tuple] = {}
        self.p = p
        self.loop: dict[str, Any] = {}
        self.trace: list[str] = []


def compile_expr(node: ast.Node, member_names: frozenset[str] | set[str] = frozenset()) -> Fn:
    """Compile ``node`` (already type-checked). Names in ``member_names`` read the current member."""
    return _Compiler(member_names).c(node)


class _Compiler:
    def __init__(self, member_names):
        self.member_names = member_names

    def c(self, node: ast.Node) -> Fn:
        return getattr(self, "_" + type(node).__name__)(node)

    def _Literal(self, node: ast.Literal) -> Fn:
        value = node.value
        return lambda env: value

    def _SetLit(self, node: ast.SetLit) -> Fn:
        value = frozenset(item.value for item in node.items)  # type: ignore[attr-defined]
        return lambda env: value

    def _Name(self, node: ast.Name) -> Fn:
        path = node.path
        if node.binding == "var":
            var = node.var
            return lambda env: env.loop[var]
        if node.binding == "field":
            var = node.var
            return lambda env: env.loop[var][path]
        if node.binding == "param":

            def param(env: Env):
                env.trace.append(path)
                return env.p[path]

            return param
        if path in self.member_names:

            def member_name(env: Env):
                tr = env.mt.get(path)
                if tr:
                    env.trace.extend(tr)
                return env.m[path]

            return member_name

        def household_name(env: Env):
            tr = env.ht.get(path)
            if tr:
                env.trace.extend(tr)
            return env.h[path]

        return household_name

    def _Unary(self, node: ast.Unary) -> Fn:
        f = self.c(node.operand)
        if node.op == "not":

            def not_(env):
                v = f(env)
                if v.__class__ is Missing:
                    return v
                return not v

            return not_

        def neg(env):
            v = f(env)
            if v.__class__ is Missing:
                return v
            return -v

        return neg

    def _Binary(self, node: ast.Binary) -> Fn:
        op = node.op
        lf, rf = self.c(node.left), self.c(node.right)
        if op == "and":

            def and_(env):
                a = lf(env)
                if a is False:
                    return False
                b = rf(env)
                if b is False:
                    return False
                if a is True and b is True:
                    return True
                return merge(a, b)

            return and_
        if op == "or":

            def or_(env):
                a = lf(env)
                if a is True:
                    return True
                b = rf(env)
                if b is True:
                    return True
                if a is False and b is False:
                    return False
                return merge(a, b)

            return or_
        if op in ("in", "not in"):
            negate = op == "not in"

            def in_(env):
                a = lf(env)
                b = rf(env)
                if a.__class__ is Missing or b.__class__ is Missing:
                    return merge(a, b)
                if a is None:
                    return negate
                return (a in b) != negate

            return in_
        if op in ("==", "!="):
            eq = op == "=="

            def equal(env):
                a = lf(env)
                b = rf(env)
                if a.__class__ is Missing or b.__class__ is Missing:
                    return merge(a, b)
                return (a == b) == eq

            return equal
        if op in ("<", "<=", ">", ">="):
            cmp = _ORDER[op]

            def order(env):
                a = lf(env)
                b = rf(env)
                if a.__class__ is Missing or b.__class__ is Missing:
                    return merge(a, b)
                if a is None or b is None:
                    return False
                return cmp(a, b)

            return order
        arith = _ARITH[op]

        def arithmetic(env):
            a = lf(env)
            b = rf(env)
            if a.__class__ is Missing or b.__class__ is Missing:
                return merge(a, b)
            return arith(a, b)

        return arithmetic

    def _IfElse(self, node: ast.IfElse) -> Fn:
        cf, tf, of = self.c(node.cond), self.c(node.then), self.c(node.other)

        def if_else(env):
            c = cf(env)
            if c is True:
                return tf(env)
            if c is False:
                return of(env)
            return c  # Missing

        return if_else

    def _Call(self, node: ast.Call) -> Fn:
        fs = [self.c(a) for a in node.args]
        f = node.func
        if f == "date":
            value = dt.date.fromisoformat(node.args[0].value)  # type: ignore[attr-defined]
            return lambda env: value
        if f in ("min", "max"):
            pick = min if f == "min" else max

            def minmax(env):
                vals = [g(env) for g in fs]
                for v in vals:
                    if v.__class__ is Missing:
                        return Missing(frozenset().union(*(x.keys for x in vals if x.__class__ is Missing)))
                return pick(vals)

            return minmax
        func = _FUNCS[f]
        if len(fs) == 1:
            (g,) = fs

            def call1(env):
                a = g(env)
                if a.__class__ is Missing:
                    return a
                return func(a)

            return call1
        g1, g2 = fs

        def call2(env):
            a = g1(env)
            b = g2(env)
            if a.__class__ is Missing or b.__class__ is Missing:
                return merge(a, b)
            return func(a, b)

        return call2

    def _Comprehension(self, node: ast.Comprehension) -> Fn:
        src = self.c(node.source)
        ef = self.c(node.expr)
        cf = self.c(node.cond) if node.cond is not None else None
        var = node.var
        func = node.func
        money = node.type is not None and node.type.kind in ("money", "number")

        def items(env):
            """Yield (item, keep) where keep is True/False/Missing."""
            seq = src(env)
            if seq.__class__ is Missing:
                yield None, seq
                return
            loop = env.loop
            saved = loop.get(var)
            try:
                for item in seq:
                    loop[var] = item
                    keep = True if cf is None else cf(env)
                    yield item, keep
            finally:
                if saved is None:
                    loop.pop(var, None)
                else:
                    loop[var] = saved

        if func == "list":

            def list_(env):
                out = []
                miss = None
                for item, keep in items(env):
                    if keep is True:
                        out.append(item)
                    elif keep is not False:
                        miss = merge(miss, keep)
                return miss if miss is not None else tuple(out)

            return list_
        if func == "count":

            def count(env):
                n = 0
                miss = None
                for _item, keep in items(env):
                    if keep is True:
                        n += 1
                    elif keep is not False:
                        miss = merge(miss, keep)
                return miss if miss is not None else n

            return count
        if func == "sum":
            start = ZERO if money else 0

            def sum_(env):
                total = start
                miss = None
                for _item, keep in items(env):
                    if keep is False:
                        continue
                    if keep is not True:
                        miss = merge(miss, keep)
                        continue
                    v = ef(env)
                    if v.__class__ is Missing:
                        miss = merge(miss, v)
                    else:
                        total += v
                return miss if miss is not None else total

            return sum_
        want_any = func == "any"

        def any_all(env):
            miss = None
            for _item, keep in items(env):
                if keep is False:
                    continue
                if keep is not True:
                    miss = merge(miss, keep)
                    continue
                v = ef(env)
                if v is want_any:
                    return want_any
                if v.__class__ is Missing:
                    miss = merge(miss, v)
            return miss if miss is not None else (not want_any)

        return any_all


def _div(a, b):
    if b == 0:
        raise ZeroDivisionError("除数为零 / division by zero in a rule expression")
    return mpq(a) / b


_ARITH = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": _div,
}
_ORDER = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}
_FUNCS = {
    "len": len,
    "has_any": lambda a, b: not a.isdisjoint(b),
    "years_between": years_between,
    "months_between": months_between,
    "days_between": lambda a, b: (b - a).days,
    "add_months": add_months,
    "within": within,
}

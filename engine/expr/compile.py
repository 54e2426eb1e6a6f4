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

from . import ast, logic

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
        op = logic.not_ if node.op == "not" else logic.neg
        return lambda env: op(f(env))

    def _Binary(self, node: ast.Binary) -> Fn:
        op = node.op
        lf, rf = self.c(node.left), self.c(node.right)
        if op == "and":

            def and_(env):
                a = lf(env)
                return False if a is False else logic.and2(a, rf(env))

            return and_
        if op == "or":

            def or_(env):
                a = lf(env)
                return True if a is True else logic.or2(a, rf(env))

            return or_
        if op in ("in", "not in"):
            negate = op == "not in"
            return lambda env: logic.in_(lf(env), rf(env), negate)
        if op in ("==", "!="):
            eq = op == "=="
            return lambda env: logic.eq(lf(env), rf(env), eq)
        fn = _OPS[op]
        return lambda env: fn(lf(env), rf(env))

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
            return lambda env: logic.minmax(pick, [g(env) for g in fs])
        func = logic.FUNCTIONS[f]
        if len(fs) == 1:
            (g,) = fs
            return lambda env: logic.call1(func, g(env))
        g1, g2 = fs
        return lambda env: logic.call2(func, g1(env), g2(env))

    def _Comprehension(self, node: ast.Comprehension) -> Fn:
        src = self.c(node.source)
        ef = self.c(node.expr)
        cf = self.c(node.cond) if node.cond is not None else None
        var = node.var
        func = node.func
        start = ZERO if node.type is not None and node.type.kind in ("money", "number") else 0

        def bound(fn):
            # evaluate fn with the loop variable bound to the item
            def call(env, item):
                env.loop[var] = item
                return fn(env)

            return call

        cond_b = bound(cf) if cf is not None else None
        expr_b = bound(ef)

        def comprehension(env):
            loop = env.loop
            saved = loop.get(var)
            cond = (lambda item: cond_b(env, item)) if cond_b is not None else None
            expr = lambda item: expr_b(env, item)  # noqa: E731
            try:
                seq = src(env)
                if func == "list":
                    return logic.c_list(seq, cond)
                if func == "count":
                    return logic.c_count(seq, cond)
                if func == "sum":
                    return logic.c_sum(seq, cond, expr, start)
                return logic.c_anyall(seq, cond, expr, func == "any")
            finally:
                if saved is None:
                    loop.pop(var, None)
                else:
                    loop[var] = saved

        return comprehension


_OPS = {
    "+": logic.arith(lambda a, b: a + b),
    "-": logic.arith(lambda a, b: a - b),
    "*": logic.arith(lambda a, b: a * b),
    "/": logic.arith(logic.div),
    "<": logic.order(lambda a, b: a < b),
    "<=": logic.order(lambda a, b: a <= b),
    ">": logic.order(lambda a, b: a > b),
    ">=": logic.order(lambda a, b: a >= b),
}

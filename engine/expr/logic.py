"""Three-valued operations of the rule language, shared by both backends.

A value may be ``Missing`` (a fact not supplied, a parameter not configured). These
functions fix what every operator does then: ``False and Missing`` is ``False``,
``True and Missing`` is ``Missing``, comparisons with ``Missing`` are ``Missing`` and
comparisons with ``none`` (an absent optional fact) are false. The closure interpreter
(compile.py) and the compiled fast path (engine/executors/codegen.py) both call them.
"""

from __future__ import annotations

from gmpy2 import mpq

from .runtime import Missing, add_months, merge, months_between, within, years_between


def and2(a, b):
    if b is False:
        return False
    if a is True and b is True:
        return True
    return merge(a, b)


def or2(a, b):
    if b is True:
        return True
    if a is False and b is False:
        return False
    return merge(a, b)


def not_(a):
    return a if a.__class__ is Missing else (not a)


def neg(a):
    return a if a.__class__ is Missing else -a


def in_(a, b, negate):
    if a.__class__ is Missing or b.__class__ is Missing:
        return merge(a, b)
    if a is None:
        return negate
    return (a in b) != negate


def eq(a, b, eq):
    if a.__class__ is Missing or b.__class__ is Missing:
        return merge(a, b)
    return (a == b) == eq


def order(cmp):
    def f(a, b):
        if a.__class__ is Missing or b.__class__ is Missing:
            return merge(a, b)
        if a is None or b is None:
            return False
        return cmp(a, b)

    return f


def arith(op):
    def f(a, b):
        if a.__class__ is Missing or b.__class__ is Missing:
            return merge(a, b)
        return op(a, b)

    return f


def div(a, b):
    if b == 0:
        raise ZeroDivisionError("除数为零 / division by zero in a rule expression")
    return mpq(a) / b


def minmax(pick, vals):
    for v in vals:
        if v.__class__ is Missing:
            return Missing(frozenset().union(*(x.keys for x in vals if x.__class__ is Missing)))
    return pick(vals)


def call1(f, a):
    return a if a.__class__ is Missing else f(a)


def call2(f, a, b):
    if a.__class__ is Missing or b.__class__ is Missing:
        return merge(a, b)
    return f(a, b)


def items(seq, cond):
    if seq.__class__ is Missing:
        yield None, seq
        return
    for item in seq:
        yield item, (True if cond is None else cond(item))


def c_list(seq, cond):
    out = []
    miss = None
    for item, keep in items(seq, cond):
        if keep is True:
            out.append(item)
        elif keep is not False:
            miss = merge(miss, keep)
    return miss if miss is not None else tuple(out)


def c_count(seq, cond):
    n = 0
    miss = None
    for _item, keep in items(seq, cond):
        if keep is True:
            n += 1
        elif keep is not False:
            miss = merge(miss, keep)
    return miss if miss is not None else n


def c_sum(seq, cond, expr, start):
    total = start
    miss = None
    for item, keep in items(seq, cond):
        if keep is False:
            continue
        if keep is not True:
            miss = merge(miss, keep)
            continue
        v = expr(item)
        if v.__class__ is Missing:
            miss = merge(miss, v)
        else:
            total += v
    return miss if miss is not None else total


def c_anyall(seq, cond, expr, want_any):
    miss = None
    for item, keep in items(seq, cond):
        if keep is False:
            continue
        if keep is not True:
            miss = merge(miss, keep)
            continue
        v = expr(item)
        if v is want_any:
            return want_any
        if v.__class__ is Missing:
            miss = merge(miss, v)
    return miss if miss is not None else (not want_any)


# The named functions of the rule language (besides min/max and the aggregates).
FUNCTIONS = {
    "len": len,
    "has_any": lambda a, b: not a.isdisjoint(b),
    "years_between": years_between,
    "months_between": months_between,
    "days_between": lambda a, b: (b - a).days,
    "add_months": add_months,
    "within": within,
}

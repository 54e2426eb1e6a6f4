"""Columnar values: the vectorised counterpart of the single evaluator's run-time values.

Every value holds one entry per household (or member, or list slot) of a chunk of
households that share their parameters and member count. Arrays are right-aligned
on the axes of the evaluation context: ``(H,)`` at household level, ``(n, H)`` for
members, and one more leading axis per enclosing comprehension; a Python scalar
stands for a value that is the same for the whole chunk (a parameter, a literal, a
column that happens to be constant), so most parameter arithmetic folds away.

Three-valued logic is carried by a *known* mask ``k`` beside each value (``True``,
``False`` or a boolean array): unknown facts and unconfigured parameters are
"not known", exactly as ``Missing`` is in the single evaluator. Numbers are exact
rationals with a *static* denominator: an ``int64`` numerator array over one
Python ``int`` denominator per value (``6934/12`` stays ``3467/6``), never floats.
Each numerator array carries a proven bound on its magnitude; an operation that
could overflow ``int64`` raises ``VectorOverflow`` and the chunk is evaluated by the
single-household evaluator instead, so results are exact or not produced at all.
"""

from __future__ import annotations

import calendar
import threading
from math import gcd, lcm

import numpy as np
from gmpy2 import mpq

from engine.book.rules import STATUSES
from engine.schema.money import to_cents as _scalar_to_cents

LIMIT = 1 << 62  # numerators stay below this, so one more addition cannot overflow int64
I64 = np.int64
I32 = np.int32
I32MAX = (1 << 31) - 1


def fit(x, bound: int):
    """``x`` widened to int64 when values up to ``bound`` could not be held in its dtype."""
    if isinstance(x, np.ndarray) and bound > I32MAX and x.dtype != I64:
        return x.astype(I64)
    return x


def narrow(x, bound: int):
    """An int64 array held as int32 when ``bound`` allows (half the memory traffic)."""
    if isinstance(x, np.ndarray) and x.dtype == I64 and bound <= I32MAX:
        return x.astype(I32)
    return x


class VectorOverflow(ArithmeticError):
    """An exact int64 computation could exceed its range; the chunk falls back to the single evaluator."""


class Unsupported(NotImplementedError):
    """A construct the columnar backend does not vectorise; the chunk falls back to the single evaluator."""


# -- masks: True / False / bool array ------------------------------------------------


def band(a, b):
    if a is True:
        return b
    if b is True:
        return a
    if a is False or b is False:
        return False
    return a & b


def bor(a, b):
    if a is False:
        return b
    if b is False:
        return a
    if a is True or b is True:
        return True
    return a | b


def bnot(a):
    if a is True:
        return False
    if a is False:
        return True
    return ~a


def pyb(x):
    """Normalise a numpy bool scalar to a Python bool; arrays pass through."""
    if isinstance(x, np.ndarray):
        return x
    return bool(x)


def _is_mask(x) -> bool:
    return x is True or x is False or (isinstance(x, np.ndarray) and x.dtype == bool)


def select(c, a, b):
    """``a`` where ``c`` else ``b`` for masks or integers (scalars fold).

    Blends with ``&``/``|`` or ``b + (a - b) * c`` rather than ``np.where``: on random
    masks a branch-free blend is several times faster.
    """
    if c is True:
        return a
    if c is False:
        return b
    if _is_mask(a) and _is_mask(b):
        if a is True:
            return True if b is True else (c if b is False else c | b)
        if a is False:
            return ~c if b is True else (False if b is False else b & ~c)
        if b is True:
            return a | ~c
        if b is False:
            return a & c
        return (a & c) | (b & ~c)
    if not isinstance(a, np.ndarray) and not isinstance(b, np.ndarray):
        if a == b:
            return a
        if -I32MAX <= a <= I32MAX and -I32MAX <= b <= I32MAX and -I32MAX <= a - b <= I32MAX:
            return c * I32(a - b) + I32(b)  # int32, not the int64 a Python int would give
        if b == 0:
            return c * a
        return b + (a - b) * c
    if not isinstance(b, np.ndarray) and b == 0:
        return a * c
    if not isinstance(a, np.ndarray) and a == 0:
        return b * ~c
    d = a - b
    return b + d * c


def is_arr(x) -> bool:
    return isinstance(x, np.ndarray)


# -- interned strings --------------------------------------------------------------


class Interner:
    """Every text value (enum values, locality codes, program codes) as a small integer.

    Code 0 is ``None`` (an absent optional value), so ``None in {...}`` is false and
    ``None == None`` is true by plain integer comparison, as in the single evaluator.
    """

    def __init__(self) -> None:
        self._ids: dict[str, int] = {}
        self.strings: list[str | None] = [None]
        self._lock = threading.Lock()
        self._numeric: np.ndarray | None = None
        self._tables: dict[frozenset, np.ndarray] = {}
        for status in STATUSES:  # status i has code i + 1: program statuses become codes by an addition
            self.id(status)

    def id(self, s: str | None) -> int:
        if s is None:
            return 0
        i = self._ids.get(s)
        if i is None:
            with self._lock:
                i = self._ids.get(s)
                if i is None:
                    i = len(self.strings)
                    self.strings.append(s)
                    self._ids[s] = i
        return i

    def ids(self, strings) -> np.ndarray:
        return np.fromiter((self.id(s) for s in strings), dtype=np.int32, count=len(strings))

    def text(self, i: int) -> str | None:
        return self.strings[i]

    @property
    def size(self) -> int:
        return len(self.strings)

    def numeric(self) -> np.ndarray:
        """Each code's value as a 6-digit division code, or -1 (for ``within``)."""
        tbl = self._numeric
        if tbl is None or len(tbl) < self.size:
            with self._lock:
                out = np.full(self.size, -1, dtype=np.int64)
                for i, s in enumerate(self.strings):
                    if s is not None and len(s) == 6 and s.isdigit():
                        out[i] = int(s)
                self._numeric = tbl = out
        return tbl

    def division_tables(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per code: its province prefix, its prefecture prefix (-1 if not a division code) and its level
        (0 national, 1 province, 2 prefecture, 3 county)."""
        tabs = getattr(self, "_div", None)
        if tabs is None or len(tabs[0]) < self.size:
            num = self.numeric()
            p2 = np.where(num >= 0, num // 10000, -1).astype(I32)
            p4 = np.where(num >= 0, num // 100, -1).astype(I32)
            lvl = np.where(num == 100000, 0, np.where(num % 10000 == 0, 1, np.where(num % 100 == 0, 2, 3))).astype(np.int8)
            tabs = self._div = (p2, p4, lvl)
        return tabs

    def member_table(self, codes: frozenset) -> np.ndarray:
        """A lookup table ``code -> code in codes`` covering every interned code."""
        tbl = self._tables.get(codes)
        if tbl is None or len(tbl) < self.size:
            tbl = np.zeros(self.size + 64, dtype=bool)
            for c in codes:
                tbl[c] = True
            self._tables[codes] = tbl
        return tbl


# -- value types ------------------------------------------------------------------


class V:
    __slots__ = ()

    def arrays(self):  # pragma: no cover - overridden
        return ()


class Num(V):
    """An exact rational ``n / d``: ``n`` an int64 array (or Python int), ``d`` a positive Python int.

    ``b`` bounds ``|n|``; ``k`` is the known mask; ``none`` marks absent optional values.
    """

    __slots__ = ("b", "d", "k", "n", "none")
    kind = "num"

    def __init__(self, n, d: int = 1, b: int | None = None, k=True, none=False):
        if b is None:
            if isinstance(n, np.ndarray):
                b = int(np.abs(n).max()) if n.size else 0
            else:
                b = abs(n)
        if not isinstance(n, np.ndarray) and d != 1:
            g = gcd(n, d)
            if g > 1:
                n, d = n // g, d // g
                b = abs(n)
        self.n, self.d, self.b, self.k, self.none = n, d, b, k, none

    def map(self, f):
        return Num(_m(f, self.n), self.d, self.b, _m(f, self.k), _m(f, self.none))


class Bool(V):
    __slots__ = ("k", "v")
    kind = "bool"

    def __init__(self, v, k=True):
        self.v, self.k = v, k

    def map(self, f):
        return Bool(_m(f, self.v), _m(f, self.k))


class Str(V):
    """Interned text codes (0 = none)."""

    __slots__ = ("k", "v")
    kind = "str"

    def __init__(self, v, k=True):
        self.v, self.k = v, k

    def map(self, f):
        return Str(_m(f, self.v), _m(f, self.k))


class Date(V):
    """Dates as ``yyyymmdd`` integers: ordered like dates, and completed years are a floor division."""

    __slots__ = ("k", "none", "v")
    kind = "date"

    def __init__(self, v, k=True, none=False):
        self.v, self.k, self.none = v, k, none

    def map(self, f):
        return Date(_m(f, self.v), _m(f, self.k), _m(f, self.none))


class Set(V):
    """A set of text values: a constant ``frozenset`` of codes, or membership masks per code."""

    __slots__ = ("c", "k", "m")
    kind = "set"

    def __init__(self, c: frozenset | None = None, m: dict | None = None, k=True):
        self.c, self.m, self.k = c, m, k

    def map(self, f):
        if self.m is None:
            return Set(self.c, None, _m(f, self.k))
        return Set(None, {e: _m(f, x) for e, x in self.m.items()}, _m(f, self.k))


class List(V):
    """A list of records in ``K`` slots.

    ``kind`` is ``"member"`` (the household's members: fields are read from the member
    store of the chunk) or ``"record"`` (incomes, vehicles...: ``fields`` holds them).
    ``present`` marks occupied slots, ``mult`` counts identical records folded into one
    slot (vehicles given as counts), ``k`` is the list's own known mask. Slot arrays
    have the slot axis first and are full rank for the list's ``depth``.
    """

    __slots__ = ("K", "depth", "fields", "k", "kind", "mult", "multb", "present", "zeroed")

    def __init__(self, kind, K, depth, present=True, mult=None, k=True, fields=None, multb=1, zeroed=False):
        self.kind, self.K, self.depth = kind, K, depth
        self.present, self.mult, self.k, self.fields, self.multb = present, mult, k, fields, multb
        self.zeroed = zeroed  # numeric fields of absent slots hold 0

    def map(self, f, fk=None):
        """Apply ``f`` to slot arrays and ``fk`` (default ``f``) to the list-level known mask."""
        fk = fk or f
        fields = None if self.fields is None else {name: v.map(f) for name, v in self.fields.items()}
        return List(
            self.kind, self.K, self.depth, _m(f, self.present), _m(f, self.mult), _m(fk, self.k), fields, self.multb, self.zeroed
        )


class NoneVal(V):
    """The literal ``none``."""

    __slots__ = ()
    kind = "none"

    def map(self, f):
        return self


class Record(V):
    """A loop variable itself (only ever the element of a list comprehension)."""

    __slots__ = ()
    kind = "record"

    def map(self, f):
        return self


NONE = NoneVal()
RECORD = Record()
TRUE = Bool(True)
FALSE = Bool(False)


def _m(f, x):
    return f(x) if isinstance(x, np.ndarray) else x


def missing_of(kind: str) -> V:
    """A wholly unknown value of a static type kind."""
    if kind in ("int", "number", "money"):
        return Num(0, 1, 0, False)
    if kind == "bool":
        return Bool(False, False)
    if kind == "str":
        return Str(0, False)
    if kind == "date":
        return Date(0, False)
    if kind == "set":
        return Set(frozenset(), None, False)
    if kind == "list":
        return List("record", 0, 0, False, None, False, {})
    raise Unsupported(f"missing value of kind {kind}")


# -- numbers -----------------------------------------------------------------------


def _check(b: int) -> None:
    if b > LIMIT:
        raise VectorOverflow(b)


def num_scalar(q) -> Num:
    """A Python int or gmpy2 ``mpq`` as a scalar ``Num``."""
    if isinstance(q, int | np.integer):
        return Num(int(q))
    return Num(int(q.numerator), int(q.denominator))


def _scaled(x: Num, f: int):
    if f == 1:
        return x.n, x.b
    b = x.b * f
    return fit(x.n, b) * f, b


def align(a: Num, b: Num):
    """Numerators of ``a`` and ``b`` over their common denominator."""
    if a.d == b.d:
        an, ab, bn, bb, d = a.n, a.b, b.n, b.b, a.d
    else:
        d = lcm(a.d, b.d)
        an, ab = _scaled(a, d // a.d)
        bn, bb = _scaled(b, d // b.d)
    if isinstance(an, np.ndarray) or isinstance(bn, np.ndarray):
        _check(max(ab, bb))
    return an, bn, d, ab, bb


def add(a: Num, b: Num, sign: int = 1) -> Num:
    an, bn, d, ab, bb = align(a, b)
    bound = ab + bb
    if isinstance(an, np.ndarray) or isinstance(bn, np.ndarray):
        _check(bound)
        an, bn = fit(an, bound), fit(bn, bound)
        n = an + bn if sign > 0 else an - bn
        return Num(n, d, bound, band(a.k, b.k))
    return Num(an + bn if sign > 0 else an - bn, d, None, band(a.k, b.k))


def neg(a: Num) -> Num:
    return Num(-a.n, a.d, a.b, a.k)


def mul(a: Num, b: Num) -> Num:
    k = band(a.k, b.k)
    aa, ba = isinstance(a.n, np.ndarray), isinstance(b.n, np.ndarray)
    if not aa and not ba:
        return Num(a.n * b.n, a.d * b.d, None, k)
    if not aa:
        a, b = b, a
    if not isinstance(b.n, np.ndarray):
        p, q = b.n, b.d
        g = gcd(p, a.d) or 1
        p1, d1 = p // g, (a.d // g) * q
        bound = a.b * abs(p1)
        _check(bound)
        return Num(fit(a.n, bound) * p1 if p1 != 1 else a.n, d1, bound, k)
    bound = a.b * b.b
    _check(bound)
    return Num(fit(a.n, bound) * fit(b.n, bound), a.d * b.d, bound, k)


def _divisor_lcm(n: np.ndarray, bound: int) -> int:
    """The lcm of the distinct non-zero magnitudes in ``n`` (a household count, usually)."""
    mag = np.abs(n)
    if bound <= 4096:
        present = np.flatnonzero(np.bincount(mag.ravel(), minlength=1))
    else:
        present = np.unique(mag)
    values = [int(v) for v in present if v != 0]
    if len(values) > 64:
        raise Unsupported("division by a value with too many distinct magnitudes")
    out = 1
    for v in values:
        out = lcm(out, v)
        if out > LIMIT:
            raise VectorOverflow(out)
    return out


def div(a: Num, b: Num) -> Num:
    k = band(a.k, b.k)
    if not isinstance(b.n, np.ndarray):
        p, q = b.n, b.d
        if p == 0:
            # Only reached in a branch the household does not take (the single evaluator
            # would raise there); the rule files guard every division.
            return Num(0 * a.n if isinstance(a.n, np.ndarray) else 0, 1, 0, k)
        if p < 0:
            p, q = -p, -q
        return mul(a, Num(q, p, None, k))
    # a / (bn / bd) = a * bd / bn: divide by an integer array through the lcm of its values,
    # so the result keeps one static denominator.
    L = _divisor_lcm(b.n, b.b)
    safe = fit(b.n + (b.n == 0), L)  # a zero divisor only occurs in a branch not taken
    f = L // safe
    top = mul(a, Num(b.d))
    bound = top.b * L
    _check(bound)
    n = fit(top.n, bound) * fit(f, bound)
    return Num(n, top.d * L, bound, k)


def minmax(args: list[Num], pick_max: bool) -> Num:
    d = 1
    for x in args:
        d = lcm(d, x.d)
    ns, bound, k = [], 0, True
    arrays = False
    for x in args:
        n, b = _scaled(x, d // x.d)
        ns.append(n)
        bound = max(bound, b)
        k = band(k, x.k)
        arrays = arrays or isinstance(n, np.ndarray)
    if not arrays:
        return Num(max(ns) if pick_max else min(ns), d, None, k)
    _check(bound)
    f = np.maximum if pick_max else np.minimum
    out = fit(ns[0], bound)
    for n in ns[1:]:
        out = f(out, fit(n, bound))
    if not isinstance(out, np.ndarray):
        out = np.asarray(out, dtype=I64)
    return Num(out, d, bound, k)


_CMP = {
    "<": np.less,
    "<=": np.less_equal,
    ">": np.greater,
    ">=": np.greater_equal,
    "==": np.equal,
    "!=": np.not_equal,
}
_PYCMP = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
}


def compare_raw(op: str, a, b):
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return _CMP[op](a, b)
    return _PYCMP[op](a, b)


def num_compare(op: str, a: Num, b: Num) -> Bool:
    an, bn, _d, _ab, _bb = align(a, b)
    v = compare_raw(op, an, bn)
    return Bool(_with_none(op, v, a.none, b.none), band(a.k, b.k))


def _with_none(op: str, v, an, bn):
    """Apply the single evaluator's rules for ``none`` operands to a comparison result."""
    if an is False and bn is False:
        return v
    if op in ("==", "!="):
        if bn is False or an is False:
            # one side never none: equal only where the other is not none
            some = bnot(an if bn is False else bn)
            return band(v, some) if op == "==" else bor(v, bnot(some))
        either = bor(an, bn)
        both = band(an, bn)
        eq = select(either, both, v if op == "==" else bnot(v))
        return eq if op == "==" else bnot(eq)
    # ordering with none is false
    return band(v, band(bnot(an), bnot(bn)))


def to_cents(x: Num):
    """Round to whole fen, half away from zero (as ``engine.schema.money.to_cents``)."""
    n, d = x.n, x.d
    if not isinstance(n, np.ndarray):
        return _scalar_to_cents(mpq(n, d))
    if d == 100:
        return n
    if 100 % d == 0:
        return fit(n, x.b * (100 // d)) * (100 // d)
    bound = x.b * 200 + d
    _check(bound)
    n2 = fit(n, bound) * 200
    if bool((n < 0).any()):
        mag = (np.abs(n2) + d) // (2 * d)
        return mag * np.sign(n)
    return (n2 + d) // (2 * d)


# -- dates (yyyymmdd integers) ------------------------------------------------------

_MDAYS = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=I64)


def _split(v):
    return v // 10000, (v // 100) % 100, v % 100


def _month_len(y, m):
    if isinstance(y, np.ndarray) or isinstance(m, np.ndarray):
        leap = ((y % 4 == 0) & (y % 100 != 0)) | (y % 400 == 0)
        return _MDAYS[m] + ((m == 2) & leap)

    return calendar.monthrange(int(y), int(m))[1]


def years_between(a, b):
    out = (b - a) // 10000
    return out if isinstance(out, np.ndarray) else int(out)


def months_between(a, b):
    ya, ma, da = _split(a)
    yb, mb, db = _split(b)
    months = (yb - ya) * 12 + (mb - ma)
    back = (db < da) & (db < _month_len(yb, mb))
    out = months - back
    return out.astype(I64) if isinstance(out, np.ndarray) else int(out)


def _days(v):
    """Days since 1970-01-01 of yyyymmdd values (proleptic Gregorian, civil-from-days inverse)."""
    y, m, d = _split(v)
    y = y - (m <= 2)
    era = y // 400
    yoe = y - era * 400
    mp = (m + 9) % 12
    doy = (153 * mp + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def days_between(a, b):
    out = _days(b) - _days(a)
    return out.astype(I64) if isinstance(out, np.ndarray) else int(out)


def add_months(v, n):
    y, m, d = _split(v)
    t = m - 1 + n
    y2 = y + t // 12
    m2 = t % 12 + 1
    if isinstance(y2, np.ndarray) or isinstance(m2, np.ndarray) or isinstance(d, np.ndarray):
        day = np.minimum(d, _month_len(y2, m2))
    else:
        day = min(int(d), _month_len(y2, m2))
    return y2 * 10000 + m2 * 100 + day


def ymd(d) -> int:
    return d.year * 10000 + d.month * 100 + d.day


# -- shapes --------------------------------------------------------------------------


def full_rank(x, ndim: int):
    """Give an array ``ndim`` axes by adding leading singleton axes (a view)."""
    if isinstance(x, np.ndarray) and x.ndim < ndim:
        return x.reshape((1,) * (ndim - x.ndim) + x.shape)
    return x


def insert_after_first(x, count: int):
    """Add ``count`` singleton axes after the slot axis (lifting a list to a deeper context)."""
    if count and isinstance(x, np.ndarray):
        return x.reshape(x.shape[:1] + (1,) * count + x.shape[1:])
    return x


def insert_before_last(x, count: int):
    """Add ``count`` singleton axes before the household axis (viewing members from a deeper context)."""
    if count and isinstance(x, np.ndarray):
        return x.reshape(x.shape[:-1] + (1,) * count + x.shape[-1:])
    return x


def lift(lst: List, depth: int) -> List:
    """A list created at ``lst.depth`` as seen from a context ``depth`` levels deep."""
    extra = depth - lst.depth
    if extra <= 0:
        return lst
    out = lst.map(lambda a: insert_after_first(a, extra), lambda a: a)
    out.depth = depth
    return out


def view_member(v: V, depth: int) -> V:
    """A member-store value seen through a loop over members entered at ``depth``."""
    if depth == 0:
        return v
    out = v.map(lambda a: insert_before_last(a, depth))
    if isinstance(out, List):
        out.depth = v.depth + depth  # type: ignore[attr-defined]
    return out


def sum0(x, K: int, ndim: int, bound: int = LIMIT):
    """Sum over the slot axis of ``K`` slots; ``x`` broadcasts to ``ndim`` axes; ``bound`` bounds the sum."""
    if K == 0:
        return 0
    if not isinstance(x, np.ndarray):
        return K * int(x)
    wide = bound > I32MAX
    if x.ndim < ndim or x.shape[0] == 1:
        y = x if x.ndim < ndim else x[0]
        if y.dtype == bool:
            y = y.astype(I64 if wide else I32)
        return fit(y, bound) * K if K != 1 else y
    dtype = I64 if wide or x.dtype == I64 else I32
    if x.shape[0] <= 8:
        # a few slots: adding the slot views is several times faster than a strided reduction
        out = x[0].astype(dtype) if x.dtype != dtype else x[0].copy()
        for j in range(1, x.shape[0]):
            out += x[j]
        return out
    return x.sum(axis=0, dtype=dtype)


def any0(x, K: int, ndim: int):
    if K == 0:
        return False
    if not isinstance(x, np.ndarray):
        return bool(x)
    if x.ndim < ndim:
        return x
    if x.shape[0] == 1:
        return x[0]
    return x.any(axis=0)


def arr_any(x) -> bool:
    if isinstance(x, np.ndarray):
        return bool(x.any())
    return bool(x)


__all__ = [
    "FALSE",
    "NONE",
    "RECORD",
    "TRUE",
    "Bool",
    "Date",
    "Interner",
    "List",
    "Num",
    "Set",
    "Str",
    "Unsupported",
    "VectorOverflow",
]

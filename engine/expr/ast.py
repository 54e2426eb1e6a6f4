"""The closed form of a rule expression.

Parsing produces only these nodes; nothing else can appear in a rule. The
type checker annotates each node's ``type`` (and how each name binds) on its
own copy of the parsed tree (``engine.expr.checker.check`` returns it), and the
backends (the closure compiler for one household, the columnar compiler for
batches) walk that checked tree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(eq=False)
class Node:
    pos: int = field(default=0, kw_only=True)
    type: Any = field(default=None, kw_only=True, repr=False)


@dataclass(eq=False)
class Literal(Node):
    value: Any  # bool, int, mpq (decimal literal), str, date, None
    kind: str  # "bool" | "int" | "number" | "str" | "none"


@dataclass(eq=False)
class SetLit(Node):
    items: list[Node]


@dataclass(eq=False)
class Name(Node):
    """A qualified name: a fact, a derived value, a program result or a parameter."""

    name: str
    # filled by the checker: how the name binds
    binding: str | None = field(default=None, kw_only=True)  # "var" | "field" | "name" | "param"
    var: str | None = field(default=None, kw_only=True)  # loop variable for "field"
    path: str | None = field(default=None, kw_only=True)  # field path or resolved name


@dataclass(eq=False)
class Unary(Node):
    op: str  # "-" | "not"
    operand: Node


@dataclass(eq=False)
class Binary(Node):
    op: str  # + - * / < <= > >= == != in "not in" and or
    left: Node
    right: Node


@dataclass(eq=False)
class IfElse(Node):
    cond: Node
    then: Node
    other: Node


@dataclass(eq=False)
class Call(Node):
    func: str
    args: list[Node]


@dataclass(eq=False)
class Comprehension(Node):
    """``agg(expr for var in source if cond)`` or ``[var for var in source if cond]``."""

    func: str  # sum | count | any | all | min | max | list
    expr: Node
    var: str
    source: Node
    cond: Node | None


def walk(node: Node):
    """Yield every node of a tree, parents first."""
    yield node
    if isinstance(node, SetLit):
        for item in node.items:
            yield from walk(item)
    elif isinstance(node, Unary):
        yield from walk(node.operand)
    elif isinstance(node, Binary):
        yield from walk(node.left)
        yield from walk(node.right)
    elif isinstance(node, IfElse):
        yield from walk(node.cond)
        yield from walk(node.then)
        yield from walk(node.other)
    elif isinstance(node, Call):
        for arg in node.args:
            yield from walk(arg)
    elif isinstance(node, Comprehension):
        yield from walk(node.source)
        yield from walk(node.expr)
        if node.cond is not None:
            yield from walk(node.cond)


def children(node: Node) -> list[Node]:
    """The direct subtrees of a node (the order ``walk`` visits them)."""
    if isinstance(node, SetLit):
        return list(node.items)
    if isinstance(node, Unary):
        return [node.operand]
    if isinstance(node, Binary):
        return [node.left, node.right]
    if isinstance(node, IfElse):
        return [node.cond, node.then, node.other]
    if isinstance(node, Call):
        return list(node.args)
    if isinstance(node, Comprehension):
        return [node.source, node.expr] + ([node.cond] if node.cond is not None else [])
    return []

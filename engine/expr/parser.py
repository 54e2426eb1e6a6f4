"""Tokenizer and recursive-descent parser for rule expressions.

The grammar is deliberately small (see docs/rule-language.md):

    expr     := "if" expr "then" expr "else" expr | or
    or       := and ("or" and)*
    and      := not ("and" not)*
    not      := "not" not | compare
    compare  := sum (("<"|"<="|">"|">="|"=="|"!="|"in"|"not in") sum)?
    sum      := product (("+"|"-") product)*
    product  := unary (("*"|"/") unary)*
    unary    := "-" unary | primary
    primary  := NUMBER | STRING | "true" | "false" | "none" | NAME
              | NAME "(" args ")" | "(" expr ")" | "{" items "}"
              | "[" NAME "for" NAME "in" expr ["if" expr] "]"
    args     := expr ("," expr)* | expr "for" NAME "in" expr ["if" expr]

Names are dotted identifiers (``per_capita_income``, ``m.age``,
``param.dibao.standard.urban``); they are resolved against a closed table of
facts, derived values and parameters by the checker, never against Python.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from engine.schema.money import parse_number

from . import ast

# A rule file may come from a user (a reform): bound what one expression can cost. The shipped
# rules reach 423 characters and 9 levels; deeper nesting would also exhaust the recursion of
# this parser, the checker and the generated code's own parser.
MAX_EXPR_CHARS = 2000
MAX_EXPR_DEPTH = 32

KEYWORDS = {"and", "or", "not", "in", "if", "then", "else", "for", "true", "false", "none"}

_TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<number>\d+(?:\.\d+)?)
  | (?P<string>'[^'\\\n]*'|"[^"\\\n]*")
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<op><=|>=|==|!=|[-+*/<>(){}\[\],])
    """,
    re.VERBOSE,
)


class ExprSyntaxError(ValueError):
    def __init__(self, message: str, pos: int):
        super().__init__(message)
        self.message = message
        self.pos = pos


@dataclass
class Token:
    kind: str  # number | string | name | op | kw | end
    text: str
    pos: int


def tokenize(src: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(src):
        m = _TOKEN_RE.match(src, pos)
        if not m:
            ch = src[pos]
            hint = ""
            if ch in "=":
                hint = "（比较相等请用 ==）"
            elif ch in "!&|":
                hint = "（逻辑运算请用 and / or / not）"
            raise ExprSyntaxError(f"无法识别的字符 {ch!r}{hint} / unexpected character {ch!r}", pos)
        kind = m.lastgroup
        text = m.group()
        if kind != "ws":
            if kind == "name" and text in KEYWORDS:
                kind = "kw"
            tokens.append(Token(kind, text, pos))
        pos = m.end()
    tokens.append(Token("end", "", len(src)))
    return tokens


class Parser:
    def __init__(self, src: str):
        self.src = src
        self.tokens = tokenize(src)
        self.i = 0
        self.nesting = 0

    # -- helpers ---------------------------------------------------------
    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def peek(self, k: int = 1) -> Token:
        return self.tokens[min(self.i + k, len(self.tokens) - 1)]

    def at(self, kind: str, text: str | None = None) -> bool:
        t = self.tok
        return t.kind == kind and (text is None or t.text == text)

    def at_kw(self, text: str) -> bool:
        return self.at("kw", text)

    def at_op(self, text: str) -> bool:
        return self.at("op", text)

    def advance(self) -> Token:
        t = self.tok
        self.i += 1
        return t

    def expect_op(self, text: str) -> Token:
        if not self.at_op(text):
            raise self.error(f"此处应为 {text!r} / expected {text!r}")
        return self.advance()

    def expect_kw(self, text: str) -> Token:
        if not self.at_kw(text):
            raise self.error(f"此处应为关键字 {text} / expected keyword {text!r}")
        return self.advance()

    def expect_name(self) -> Token:
        if not self.at("name"):
            raise self.error("此处应为名称 / expected a name")
        return self.advance()

    def error(self, message: str) -> ExprSyntaxError:
        t = self.tok
        found = "表达式结尾 / end of expression" if t.kind == "end" else repr(t.text)
        return ExprSyntaxError(f"{message}，但遇到 {found}", t.pos)

    def enter(self) -> None:
        self.nesting += 1
        if self.nesting > MAX_EXPR_DEPTH:
            raise ExprSyntaxError(_TOO_DEEP, self.tok.pos)

    # -- grammar ---------------------------------------------------------
    def parse(self) -> ast.Node:
        node = self.expr()
        if not self.at("end"):
            raise self.error("表达式后有多余内容 / unexpected trailing input")
        _check_depth(node)
        return node

    def expr(self) -> ast.Node:
        self.enter()
        try:
            return self._expr()
        finally:
            self.nesting -= 1

    def _expr(self) -> ast.Node:
        if self.at_kw("if"):
            t = self.advance()
            cond = self.expr()
            self.expect_kw("then")
            then = self.expr()
            self.expect_kw("else")
            other = self.expr()
            return ast.IfElse(cond, then, other, pos=t.pos)
        return self.or_()

    def or_(self) -> ast.Node:
        node = self.and_()
        while self.at_kw("or"):
            t = self.advance()
            node = ast.Binary("or", node, self.and_(), pos=t.pos)
        return node

    def and_(self) -> ast.Node:
        node = self.not_()
        while self.at_kw("and"):
            t = self.advance()
            node = ast.Binary("and", node, self.not_(), pos=t.pos)
        return node

    def not_(self) -> ast.Node:
        if self.at_kw("not"):
            t = self.advance()
            self.enter()
            try:
                return ast.Unary("not", self.not_(), pos=t.pos)
            finally:
                self.nesting -= 1
        return self.compare()

    _CMP = frozenset({"<", "<=", ">", ">=", "==", "!="})

    def compare(self) -> ast.Node:
        left = self.sum()
        t = self.tok
        if t.kind == "op" and t.text in self._CMP:
            self.advance()
            node = ast.Binary(t.text, left, self.sum(), pos=t.pos)
        elif self.at_kw("in"):
            self.advance()
            node = ast.Binary("in", left, self.sum(), pos=t.pos)
        elif self.at_kw("not") and self.peek().kind == "kw" and self.peek().text == "in":
            self.advance()
            self.advance()
            node = ast.Binary("not in", left, self.sum(), pos=t.pos)
        else:
            return left
        nt = self.tok
        if (nt.kind == "op" and nt.text in self._CMP) or (nt.kind == "kw" and nt.text == "in"):
            raise self.error("比较不能连写，请用 and 连接 / comparisons cannot be chained; join them with 'and'")
        return node

    def sum(self) -> ast.Node:
        node = self.product()
        while self.at_op("+") or self.at_op("-"):
            t = self.advance()
            node = ast.Binary(t.text, node, self.product(), pos=t.pos)
        return node

    def product(self) -> ast.Node:
        node = self.unary()
        while self.at_op("*") or self.at_op("/"):
            t = self.advance()
            node = ast.Binary(t.text, node, self.unary(), pos=t.pos)
        return node

    def unary(self) -> ast.Node:
        if self.at_op("-"):
            t = self.advance()
            self.enter()
            try:
                return ast.Unary("-", self.unary(), pos=t.pos)
            finally:
                self.nesting -= 1
        return self.primary()

    def primary(self) -> ast.Node:
        t = self.tok
        if t.kind == "number":
            self.advance()
            if "." in t.text:
                return ast.Literal(parse_number(t.text), "number", pos=t.pos)
            return ast.Literal(int(t.text), "int", pos=t.pos)
        if t.kind == "string":
            self.advance()
            return ast.Literal(t.text[1:-1], "str", pos=t.pos)
        if t.kind == "kw" and t.text in ("true", "false"):
            self.advance()
            return ast.Literal(t.text == "true", "bool", pos=t.pos)
        if t.kind == "kw" and t.text == "none":
            self.advance()
            return ast.Literal(None, "none", pos=t.pos)
        if t.kind == "name":
            self.advance()
            if self.at_op("("):
                return self.call(t)
            return ast.Name(t.text, pos=t.pos)
        if self.at_op("("):
            self.advance()
            node = self.expr()
            self.expect_op(")")
            return node
        if self.at_op("{"):
            self.advance()
            items: list[ast.Node] = []
            if not self.at_op("}"):
                items.append(self.expr())
                while self.at_op(","):
                    self.advance()
                    if self.at_op("}"):
                        break
                    items.append(self.expr())
            self.expect_op("}")
            return ast.SetLit(items, pos=t.pos)
        if self.at_op("["):
            self.advance()
            expr = self.expr()
            comp = self.comprehension_tail("list", expr, t.pos)
            self.expect_op("]")
            return comp
        raise self.error("此处应为数值、名称或括号 / expected a value, a name or '('")

    def call(self, name_tok: Token) -> ast.Node:
        if "." in name_tok.text:
            raise ExprSyntaxError(f"{name_tok.text!r} 不是可调用的函数 / {name_tok.text!r} is not a function", name_tok.pos)
        self.expect_op("(")
        args: list[ast.Node] = []
        if not self.at_op(")"):
            first = self.expr()
            if self.at_kw("for"):
                comp = self.comprehension_tail(name_tok.text, first, name_tok.pos)
                self.expect_op(")")
                return comp
            args.append(first)
            while self.at_op(","):
                self.advance()
                args.append(self.expr())
        self.expect_op(")")
        return ast.Call(name_tok.text, args, pos=name_tok.pos)

    def comprehension_tail(self, func: str, expr: ast.Node, pos: int) -> ast.Comprehension:
        self.expect_kw("for")
        var = self.expect_name()
        if "." in var.text:
            raise ExprSyntaxError("循环变量不能含点号 / loop variable must be a simple name", var.pos)
        self.expect_kw("in")
        source = self.or_()
        cond = None
        if self.at_kw("if"):
            self.advance()
            cond = self.or_()
        return ast.Comprehension(func, expr, var.text, source, cond, pos=pos)


_TOO_DEEP = f"表达式嵌套过深（超过{MAX_EXPR_DEPTH}层） / expression nested too deeply (over {MAX_EXPR_DEPTH} levels)"


def _check_depth(node: ast.Node) -> None:
    """Refuse a tree deeper than MAX_EXPR_DEPTH (``a + a + ... + a`` nests without recursing here)."""
    stack = [(node, 1)]
    while stack:
        n, depth = stack.pop()
        if depth > MAX_EXPR_DEPTH:
            raise ExprSyntaxError(_TOO_DEEP, n.pos)
        for child in ast.children(n):
            stack.append((child, depth + 1))


def parse(src: str) -> ast.Node:
    """Parse rule-expression text into the closed AST; raises ExprSyntaxError."""
    if not isinstance(src, str):
        raise ExprSyntaxError("表达式应为文本 / expression must be text", 0)
    if not src.strip():
        raise ExprSyntaxError("表达式为空 / empty expression", 0)
    if len(src) > MAX_EXPR_CHARS:
        raise ExprSyntaxError(
            f"表达式过长（{len(src)}个字符，至多{MAX_EXPR_CHARS}） / expression too long ({len(src)} characters, at most {MAX_EXPR_CHARS})",
            MAX_EXPR_CHARS,
        )
    return Parser(src).parse()

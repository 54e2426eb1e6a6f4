"""The rule expression language: parse, check, compile."""

from .checker import Scope, TypeCheckError, check
from .compile import Env, compile_expr
from .parser import ExprSyntaxError, parse
from .runtime import Missing, is_missing, missing
from .types import T

__all__ = [
    "Env",
    "ExprSyntaxError",
    "Missing",
    "Scope",
    "T",
    "TypeCheckError",
    "check",
    "compile_expr",
    "is_missing",
    "missing",
    "parse",
]

"""jiuzhu 救助: an eligibility rules engine for China's social assistance.

    >>> from engine import evaluate
    >>> det = evaluate(household_dict)          # raises InputError for bad input
    >>> det.status("dibao"), det.program("dibao")["monthly_amount"]

Rules live in ``rules/`` and locality parameters in ``policies/`` as YAML;
this package loads, validates, evaluates and explains them.
"""

from engine.book.rules import RuleBookError, load_rulebook
from engine.executors.evaluate import Determination, Engine, default_engine, evaluate
from engine.schema.model import FieldError, Household, InputError

__all__ = [
    "Determination",
    "Engine",
    "FieldError",
    "Household",
    "InputError",
    "RuleBookError",
    "default_engine",
    "evaluate",
    "load_rulebook",
]

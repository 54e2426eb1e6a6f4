"""The loader's product is a frozen, typed plan (issue 14, items 3 and 5): built once in its final
form, read by the interpreter, the compiled fast path and the columnar evaluator, written by none."""

import dataclasses
from pathlib import Path

import pytest

from engine.book.interactions import ExclusionPlan
from engine.book.rules import Clause, FactsModule, Link, Part, Program, Step, Template, load_rulebook
from engine.book.statuses import GRANTED, STATUSES, granted_of

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def book():
    b = load_rulebook(ROOT)
    b.raise_if_errors()
    return b


def _objects(book):
    """Every plan object of the book, once each."""
    seen: dict[int, object] = {}

    def add(x):
        if x is not None:
            seen.setdefault(id(x), x)

    add(book.facts)
    for s in book.facts.steps:
        add(s)
        for t in (s.text, s.text_pass, s.text_fail):
            add(t)
    for p in book.programs:
        add(p)
        for s in p.steps:
            add(s)
            for t in (s.text, s.text_pass, s.text_fail):
                add(t)
        for c in p.decision:
            add(c)
            add(c.text)
            for part in c.parts:
                add(part)
            for f, lb in c.missing:
                add(f)
                add(lb)
        for link in p.link_specs:
            add(link)
    return list(seen.values())


def test_every_object_of_the_plan_is_frozen_and_holds_no_list(book):
    kinds = set()
    for obj in _objects(book):
        kinds.add(type(obj))
        assert dataclasses.is_dataclass(obj) and type(obj).__dataclass_params__.frozen, type(obj)
        for f in dataclasses.fields(obj):
            assert not isinstance(getattr(obj, f.name), list | set), f"{type(obj).__name__}.{f.name} is mutable"
    assert {FactsModule, Program, Step, Clause, Template, Part, Link} <= kinds
    assert isinstance(book.programs, tuple) and isinstance(book.interactions, ExclusionPlan)


@pytest.mark.parametrize(
    ("pick", "attr"),
    [
        (lambda b: b.program("dibao").steps[0], "fn"),
        (lambda b: b.program("tekun").decision[0], "status"),
        (lambda b: b.program("dibao"), "decision"),
        (lambda b: b.program("tekun").decision[0].text, "fmt"),
        (lambda b: b.facts, "steps"),
    ],
)
def test_assigning_an_attribute_of_a_loaded_plan_object_raises(book, pick, attr):
    obj = pick(book)
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(obj, attr, None)


def test_loading_twice_gives_equal_plans_and_an_edit_makes_them_differ(book, tmp_path):
    again = load_rulebook(ROOT)
    assert again.programs == book.programs and again.facts == book.facts
    assert again.interactions == book.interactions
    assert again.program("dibao") is not book.program("dibao")  # equal, not the same objects
    changed = dataclasses.replace(book.program("dibao").decision[0], when_source="false")
    assert changed != book.program("dibao").decision[0]


def test_the_plan_carries_the_decisions_every_executor_reads(book):
    tekun = book.program("tekun")
    assert tekun.stop_clause == len(tekun.decision) - 1 and tekun.decision[tekun.stop_clause].status == "ineligible"
    assert tekun.rule_ids == tuple(s.id for s in tekun.steps if s.kind in ("check", "use"))
    assert (tekun.status_key, tekun.granted_key, tekun.amount_key) == ("tekun.status", "tekun.granted", "tekun.amount")
    assert [(p.label, p.required) for c in tekun.decision for p in c.parts] == [("基本生活费", True), ("照料护理费", False)]
    for p in book.programs:
        for c in p.decision:
            assert c.granted is granted_of(c.status)
            assert c.lists_failed is (c.status == "ineligible")
    assert [granted_of(s) for s in STATUSES] == [True, False, True, None]
    assert {s for s in STATUSES if granted_of(s)} == GRANTED

"""No text from a rule or policy file ever becomes code.

A hostile id (a ``let`` name or fact id holding a newline and Python) used to end a comment of the
compiled fast path and run as the service user. Each id now follows one grammar (``engine.book.ids``),
refused at load with file and line; the generator writes only names it makes and literals written
with ``repr``, and audits the parsed source before compiling it.
"""

from __future__ import annotations

import ast
import io
import json
import shutil
import tokenize
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from rulehome import ROOT, copy_home, edit

import engine.book.rules as rules_module
from engine.batch.reform import (
    MAX_FILE_ENTRIES,
    MAX_PARAMETER_CHANGES,
    MAX_RULE_FILE_BYTES,
    MAX_RULE_FILES,
    ReformError,
    load_reform,
    reform_rulebook,
)
from engine.book.cases import load_cases
from engine.book.ids import is_dotted, is_name
from engine.book.rules import RuleBookError, load_rulebook
from engine.book.yamlio import YamlError, loads_yaml
from engine.executors.codegen import CodegenError, _Gen, audit
from engine.executors.evaluate import Engine
from engine.expr import parse
from engine.expr.parser import MAX_EXPR_CHARS, MAX_EXPR_DEPTH, ExprSyntaxError

CASES = Path(__file__).parent / "cases"
VARIANT = (frozenset(), True, 0)  # every parameter configured, assets declared, no member fact left out


def _payload(marker: Path, indent: str) -> str:
    """Python that reaches os.system from emptied builtins, as the issue's exploit did."""
    code = (
        "[c for c in str.__base__.__subclasses__() if c.__name__ == '_wrap_close'][0]"
        f".__init__.__globals__['system']('touch {marker}')"
    )
    return f"\n{indent}{code}\n{indent}#"


def _evaluate_first_case(book) -> None:
    eng = Engine(book)
    for case in load_cases(CASES)[:3]:
        eng.evaluate(case.household)


def _refused_with_line(book, file: str) -> list:
    hits = [e for e in book.errors if e.file == file and e.line > 0]
    assert hits, [str(e) for e in book.errors]
    return hits


# -- the exploit, reproduced ---------------------------------------------------------------


def test_a_let_name_with_a_newline_and_code_is_refused_and_nothing_runs(tmp_path):
    home = copy_home(tmp_path / "home")
    marker = tmp_path / "marker"
    name = "probe" + _payload(marker, "    ")
    edit(home / "rules" / "dibao.yaml", "let:\n", f"let:\n  - name: {json.dumps(name)}\n    value: 1\n")
    book = load_rulebook(home)
    (err,) = _refused_with_line(book, "rules/dibao.yaml")
    assert err.line == 14 and "let" in err.message and "不是合法的标识符" in err.message
    assert "\n" not in str(err)  # the id is quoted escaped: one line per error
    with pytest.raises(RuleBookError):
        _evaluate_first_case(book)
    assert not marker.exists()


def test_a_fact_id_with_a_newline_and_code_is_refused_and_nothing_runs(tmp_path):
    home = copy_home(tmp_path / "home")
    marker = tmp_path / "marker"
    fid = "household.probe" + _payload(marker, "    ")
    edit(
        home / "rules" / "household.yaml",
        "facts:\n",
        f"facts:\n  - id: {json.dumps(fid)}\n    name: probe\n    value: 1\n    citation: c\n",
    )
    book = load_rulebook(home)
    (err,) = _refused_with_line(book, "rules/household.yaml")
    assert "fact id" in err.message
    with pytest.raises(RuleBookError):
        _evaluate_first_case(book)
    assert not marker.exists()


def test_with_the_grammar_bypassed_the_generated_source_still_holds_no_rule_text(tmp_path, monkeypatch):
    # defence in depth: even a name the loader let through never reaches the source
    monkeypatch.setattr(rules_module, "is_name", lambda value: True)
    home = copy_home(tmp_path / "home")
    marker = tmp_path / "marker"
    name = "probe" + _payload(marker, "    ")
    edit(home / "rules" / "dibao.yaml", "let:\n", f"let:\n  - name: {json.dumps(name)}\n    value: 1\n")
    book = load_rulebook(home)
    assert not book.errors
    eng = Engine(book)
    for case in load_cases(CASES)[:3]:
        eng.evaluate(case.household)
    assert not marker.exists()
    assert eng.fast.sources
    for key, source in eng.fast.sources.items():
        code = [text for kind, text in _tokens(source) if kind != tokenize.STRING]
        assert "__subclasses__" not in code and not any("probe" in t for t in code)  # only inside repr literals
        assert any("__subclasses__" in label for label in eng.fast.labels[key])


def test_the_audit_refuses_code_the_generator_did_not_shape():
    names = {"T", "v", "x1"}
    for bad in (
        "def run():\n    v = str.__base__.__subclasses__()\n",  # attribute outside the list
        "def run():\n    v = system\n",  # a name nobody made
        "def run():\n    import os\n",
        "def run():\n    v = (lambda q: q)\n",  # a parameter nobody made
        "def run():\n    v = 1.5\n",  # only str, int, bool and None literals
        "v = 1\n",  # anything but the one function
        "def run():\n    def inner():\n        pass\n",
    ):
        with pytest.raises(CodegenError):
            audit(ast.parse(bad), names)
    audit(ast.parse("def run():\n    v = (T.append('a\\nb') or x1)\n"), names)


def test_the_generator_refuses_a_line_with_a_line_break(engine):
    gen = _Gen(engine, *VARIANT)
    for bad in ("v = 1\nimport os", "v = 1\rx", "v = '\x00'"):
        with pytest.raises(CodegenError):
            gen.emit(bad)
    with pytest.raises(CodegenError):
        gen.fresh("__import__")


# -- hostile text in every place a rule file allows it ---------------------------------------

FRAGMENTS = [
    "\n",
    "\r",
    "\r\n",
    "\u2028",
    "\u2029",
    "\x85",
    "\x00",
    "\x0b",
    "\x0c",
    "\t",
    " ",
    "#",
    "'",
    '"',
    "'''",
    '"""',
    "\\",
    "{",
    "}",
    "%",
    "%s",
    ".",
    ":",
    "__import__('os').system('true')",
    "str.__base__.__subclasses__()",
    "ｐｒｏｂｅ",  # full-width look-alikes
    "рrobe",  # Cyrillic р
    "\u202e",
    "\ufeff",
    "é",
    "PROBE",
    "a" * 70,
]
hostile = st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=4), min_size=1, max_size=6).map("".join)
LONG = "x" * 100_000


def _small_home(tmp_path: Path) -> Path:
    """household.yaml, tekun.yaml and dibao.yaml (低保 reads who is 特困) with every policy file: enough for
    each place, quick to load."""
    shutil.copytree(ROOT / "policies", tmp_path / "policies")
    (tmp_path / "rules").mkdir()
    for name in ("household.yaml", "tekun.yaml", "dibao.yaml"):
        shutil.copyfile(ROOT / "rules" / name, tmp_path / "rules" / name)
    return tmp_path


def _read(path: Path):
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _write(path: Path, doc) -> None:
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")


def _rule(rid: str, **over) -> dict:
    return {
        "id": rid,
        "title": "探针",
        "when": "true",
        "gate": True,
        "pass": "通过",
        "fail": "未通过",
        "citation": "探针",
        **over,
    }


def _dibao(f):
    def put(home: Path, value: str) -> str:
        path = home / "rules" / "dibao.yaml"
        doc = _read(path)
        f(doc, value)
        _write(path, doc)
        return "rules/dibao.yaml"

    return put


def _household(f):
    def put(home: Path, value: str) -> str:
        path = home / "rules" / "household.yaml"
        doc = _read(path)
        f(doc, value)
        _write(path, doc)
        return "rules/household.yaml"

    return put


def _parameter_key(home: Path, value: str) -> str:
    path = home / "policies" / "parameters.yaml"
    doc = _read(path)
    doc[value] = {"label": "探针", "type": "int", "unit": "岁"}
    _write(path, doc)
    return "policies/parameters.yaml"


# place -> (how to put the value there, the value of the baseline)
PLACES = {
    "let_name": (_dibao(lambda d, v: d["let"].append({"name": v, "value": "1"})), "probe"),
    "rule_id": (_dibao(lambda d, v: d["rules"].append(_rule("dibao." + v))), "probe"),
    "fact_id": (_household(lambda d, v: d["facts"].append({"id": "household." + v, "value": "1", "citation": "c"})), "probe"),
    "fact_name": (
        _household(lambda d, v: d["facts"].append({"id": "household.probe", "name": v, "value": "1", "citation": "c"})),
        "probe",
    ),
    "parameter_key": (_parameter_key, "probe.key"),
    "template_slot": (
        _dibao(lambda d, v: d["rules"].append(_rule("dibao.probe", **{"pass": "人均{per_capita_income" + v + "}元"}))),
        "",
    ),
    "sentence_text": (_dibao(lambda d, v: d["rules"].append(_rule("dibao.probe", **{"pass": v}))), "probe"),
    "decision_text": (_dibao(lambda d, v: d["decision"][-1].update(text=v)), "probe"),
    "rule_title": (_dibao(lambda d, v: d["rules"].append(_rule("dibao.probe", title=v))), "probe"),
    "citation": (_dibao(lambda d, v: d["rules"].append(_rule("dibao.probe", citation=v))), "probe"),
    "basis": (_dibao(lambda d, v: d.update(basis=v)), "probe"),
    "program_name": (_dibao(lambda d, v: d.update(name=v)), "probe"),
    "fact_title": (
        _household(
            lambda d, v: d["facts"].append(
                {"id": "household.probe", "title": v, "value": "1", "text": "{probe}", "citation": "c"}
            )
        ),
        "probe",
    ),
    "link_label": (_dibao(lambda d, v: d["links"][0].update(name=v, text=v)), "probe"),
    "link_code": (_dibao(lambda d, v: d["links"][0].update(code=v)), "probe"),
    "expression_string": (
        _dibao(lambda d, v: d["rules"].append(_rule("dibao.probe", when="'" + v + "' in current_benefits"))),
        "dibao",
    ),
}


def _tokens(source: str, wildcard: bool = False) -> list[tuple[int, str]]:
    """The token stream, every string literal a wildcard if asked."""
    out = []
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        out.append((tok.type, "*" if wildcard and tok.type == tokenize.STRING else tok.string))
    return out


_BASELINES: dict[str, list] = {}


def _source_or_refusal(tmp_path: Path, place: str, value: str) -> tuple[list | None, str, object]:
    put, _base = PLACES[place]
    home = _small_home(tmp_path)
    file = put(home, value)
    book = load_rulebook(home)
    if book.errors:
        return None, file, book
    eng = Engine(book)
    eng.fast.function(VARIANT)  # compiled: the audit passes
    return _tokens(eng.fast.sources[VARIANT], wildcard=True), file, book


def _check(tmp_path_factory, place: str, value: str) -> None:
    if place not in _BASELINES:
        tokens, _file, book = _source_or_refusal(tmp_path_factory.mktemp("base"), place, PLACES[place][1])
        assert tokens is not None, [str(e) for e in book.errors]
        _BASELINES[place] = tokens
    tokens, file, book = _source_or_refusal(tmp_path_factory.mktemp("case"), place, value)
    if tokens is None:
        _refused_with_line(book, file)
    else:
        assert tokens == _BASELINES[place]


@pytest.mark.parametrize("place", sorted(PLACES))
def test_hostile_ids_are_refused_at_load(tmp_path_factory, place):
    if place in ("let_name", "rule_id", "fact_id", "fact_name", "parameter_key", "template_slot", "link_code"):
        for value in (
            "probe\n    import os",
            "probe#",
            "probe'",
            "ｐｒｏｂｅ",
            "рrobe",
            "probe\u2028x",
            "probe\x00",
            "a" * 65,
            "Probe",
        ):
            put, _base = PLACES[place]
            home = _small_home(tmp_path_factory.mktemp("id"))
            file = put(home, value)
            book = load_rulebook(home)
            _refused_with_line(book, file)
    else:
        # text is text: anything goes (or is refused with its line), and it lands only in literals
        for value in ("a\nimport os\n#", "'''\"\"\"\\", "\u2028\u2029\x85\x00", "#{", "100%s %d %%", LONG):
            _check(tmp_path_factory, place, value)


@pytest.mark.parametrize("place", sorted(PLACES))
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(value=hostile)
@example(value="__import__")
@example(value="probe\n    __import__('os').system('true')\n    #")
def test_hostile_text_anywhere_is_refused_or_only_a_literal(tmp_path_factory, place, value):
    _check(tmp_path_factory, place, value)


def test_the_grammar():
    assert is_name("per_capita_income") and is_name("a") and is_name("a" * 64)
    for bad in ("", "a" * 65, "A", "_a", "1a", "a-b", "a.b", "a\n", "a ", "ａ", "а", "a\x00", "a\u2028", None, 3):
        assert not is_name(bad), bad
    assert is_dotted("dibao.standard.urban") and is_dotted("a")
    for bad in ("dibao..x", ".a", "a.", "dibao.Standard", "a.b\n", "a." + "b" * 65):
        assert not is_dotted(bad), bad


# -- bounds on one expression and one YAML document --------------------------------------------


@pytest.mark.parametrize(
    "src",
    [
        "(" * 500 + "1" + ")" * 500,
        "not " * 400 + "true",
        "-" * 1500 + "1",
        " + ".join(["1"] * 400),
        "if true then " * 100 + "1" + " else 2" * 100,
        "x" * (MAX_EXPR_CHARS + 1),
    ],
)
def test_deep_or_long_expressions_are_refused_cleanly(src):
    with pytest.raises(ExprSyntaxError) as e:
        parse(src)
    assert "/" in e.value.message and ("过深" in e.value.message or "过长" in e.value.message)


def test_an_expression_at_the_depth_limit_still_parses():
    parse("(" * (MAX_EXPR_DEPTH - 1) + "1" + ")" * (MAX_EXPR_DEPTH - 1))


def test_yaml_aliases_and_deep_nesting_are_refused_with_the_line():
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8)
    )
    with pytest.raises(YamlError) as e:
        loads_yaml(bomb, "rules/x.yaml")
    assert e.value.line == 2 and "aliases" in e.value.message
    with pytest.raises(YamlError) as e:
        loads_yaml("a: " + "[" * 1000 + "]" * 1000, "rules/x.yaml")
    assert e.value.line == 1 and "nested" in e.value.message


def test_an_alias_bomb_in_a_rule_file_is_refused_with_its_line(tmp_path):
    home = copy_home(tmp_path)
    bomb = "".join(f"# {i}\n" for i in range(3)) + "x0: &x0 [a, a, a, a, a, a, a, a, a, a]\nx1: &x1 [*x0, *x0]\n"
    path = home / "rules" / "dibao.yaml"
    path.write_text(bomb + path.read_text(encoding="utf-8"), encoding="utf-8")
    book = load_rulebook(home)
    (err,) = _refused_with_line(book, "rules/dibao.yaml")
    assert err.line == 5


# -- the reform path ---------------------------------------------------------------------------


def _reform(tmp_path: Path, body: dict, rule_files: dict[str, str] | None = None) -> Path:
    for name, text in (rule_files or {}).items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    path = tmp_path / "reform.yaml"
    path.write_text(yaml.safe_dump(body, allow_unicode=True), encoding="utf-8")
    return path


def test_a_reform_replacing_a_rule_file_with_a_hostile_let_name_is_refused_with_file_and_line(tmp_path):
    marker = tmp_path / "marker"
    name = "probe" + _payload(marker, "    ")
    text = (ROOT / "rules" / "dibao.yaml").read_text(encoding="utf-8")
    text = text.replace("let:\n", f"let:\n  - name: {json.dumps(name)}\n    value: 1\n", 1)
    path = _reform(tmp_path, {"name": "探针", "rules": {"dibao.yaml": "dibao_x.yaml"}}, {"dibao_x.yaml": text})
    reform = load_reform(path)
    with pytest.raises(ReformError) as e:
        reform_rulebook(reform, ROOT)
    assert "rules/dibao.yaml:14: let" in str(e.value)
    assert not marker.exists()


@pytest.mark.parametrize(
    "body, files, fragment",
    [
        (
            {
                "parameters": [
                    {"key": "dibao.standard.urban", "scale": 1.01, "from": "2022-01-01"} for _ in range(MAX_PARAMETER_CHANGES + 1)
                ]
            },
            {},
            "parameters:",
        ),
        ({"rules": {f"r{i}.yaml": "r.yaml" for i in range(MAX_RULE_FILES + 1)}}, {"r.yaml": "program: dibao\n"}, "rules:"),
        ({"rules": {"dibao.yaml": "big.yaml"}}, {"big.yaml": "#" * (MAX_RULE_FILE_BYTES + 1)}, "rules.dibao.yaml:"),
        (
            {"rules": {"dibao.yaml": "many.yaml"}},
            {"many.yaml": "program: dibao\nlet:\n" + "  - {name: a, value: 1}\n" * (MAX_FILE_ENTRIES + 1)},
            "rules.dibao.yaml:",
        ),
        ({"parameters": [{"key": "dibao.standard.urban\nx", "scale": 1.01, "from": "2022-01-01"}]}, {}, "parameters[0]:"),
    ],
    ids=["parameter_changes", "rule_files", "file_bytes", "file_entries", "parameter_key"],
)
def test_reform_limits_are_refused_naming_the_field(tmp_path, body, files, fragment):
    path = _reform(tmp_path, {"name": "过大", **body}, files)
    with pytest.raises(ReformError) as e:
        load_reform(path)
    message = str(e.value)
    assert message.startswith("reform.yaml ") and fragment in message and " / " in message, message
    assert "\n" not in message


def test_a_reform_with_one_from_date_for_every_change_writes_no_aliases(tmp_path):
    # the changes share the one date object: the policy files written for them must not alias it
    body = {
        "name": "同日生效",
        "from": "2022-01-01",
        "parameters": [{"key": "dibao.standard.urban", "scale": 1.05}, {"key": "dibao.standard.rural", "scale": 1.05}],
    }
    path = tmp_path / "reform.yaml"
    path.write_text(yaml.safe_dump(body, allow_unicode=True).replace("'2022-01-01'", "2022-01-01"), encoding="utf-8")
    book, _root = reform_rulebook(load_reform(path), ROOT)
    assert not book.errors


@pytest.mark.parametrize(
    "file, old, new",
    [
        ("rules/interactions.yaml", "  - id: interactions.tekun_not_dibao\n", '  - id: "interactions.tekun_not_dibao\\n#"\n'),
        ("rules/monitoring/warnings.yaml", "  - id: monitor.income_halved\n", "  - id: monitor.ｉncome_halved\n"),
    ],
)
def test_interaction_and_monitoring_ids_follow_the_grammar(tmp_path, file, old, new):
    from engine.monitor.rules import load_monitoring

    home = copy_home(tmp_path)
    edit(home / file, old, new)
    errors = load_monitoring(home / "rules" / "monitoring").errors if "monitoring" in file else load_rulebook(home).errors
    assert any(e.file == file and e.line > 0 for e in errors), [str(e) for e in errors]

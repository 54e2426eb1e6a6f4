"""The compiled fast path can be read: `jiuzhu rules show-compiled` prints what runs, and tracebacks
from generated code name a file whose lines can be read back (issue 14, item 3)."""

import json
import linecache
import subprocess
import sys
import traceback
from pathlib import Path

import pytest

from engine import Engine, load_rulebook
from engine.schema.validate import parse

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "liaoning_shenyang_family.json"


def jiuzhu(*args):
    return subprocess.run([sys.executable, "-m", "engine.cli.main", *args], capture_output=True, text=True, cwd=ROOT)


class _NoParameters:
    """Parameters without values: the generated code fails on its first parameter lookup."""

    def __init__(self):
        self.values: dict = {}
        self.chain = ()


def test_a_traceback_from_generated_code_names_a_file_whose_lines_read_back(engine):
    hh = parse(json.loads(EXAMPLE.read_text(encoding="utf-8")))
    ps = engine.parameters(hh.locality, hh.as_of)
    fn = engine.fast.function(engine.fast.variant_key(hh, ps))
    with pytest.raises(KeyError) as info:
        fn(hh, _NoParameters(), {})
    frame = traceback.extract_tb(info.value.__traceback__)[-1]
    assert frame.filename.startswith("<jiuzhu compiled ")
    assert frame.line.startswith("p") and "= P[" in frame.line  # the generated line, quoted in the traceback
    assert linecache.getline(frame.filename, frame.lineno).strip() == frame.line
    assert "= P[" in "".join(traceback.format_exception(info.value))


def test_show_compiled_prints_the_source_that_runs_and_it_compiles():
    # the example household: 210102 on 2021-08-01, assets declared, a member without self_care and supporters
    r = jiuzhu(
        "rules", "show-compiled", "dibao", "--locality", "210102", "--date", "2021-08-01",
        "--unknown", "self_care", "--unknown", "supporters",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    compile(r.stdout, "<printed>", "exec")
    filename = r.stderr.split(":", 1)[0].removeprefix("# ")

    engine = Engine(load_rulebook(programs={"dibao"}))
    hh = parse(json.loads(EXAMPLE.read_text(encoding="utf-8")))
    engine.evaluate_parsed(hh)
    ps = engine.parameters(hh.locality, hh.as_of)
    fn = engine.fast.function(engine.fast.variant_key(hh, ps))
    assert fn.__code__.co_filename == filename
    assert "".join(linecache.getlines(filename)) == r.stdout


def test_show_compiled_variants_differ_by_detail_and_unknown_facts():
    full = jiuzhu("rules", "show-compiled", "tekun", "--locality", "620722", "--date", "2022-01-01")
    outline = jiuzhu("rules", "show-compiled", "tekun", "--locality", "620722", "--date", "2022-01-01", "--detail", "outline")
    unknown = jiuzhu("rules", "show-compiled", "tekun", "--locality", "620722", "--date", "2022-01-01", "--unknown", "self_care")
    assert full.returncode == outline.returncode == unknown.returncode == 0
    assert len({full.stdout, outline.stdout, unknown.stdout}) == 3


def test_show_compiled_refuses_a_typo_in_the_program_a_bad_locality_or_date():
    r = jiuzhu("rules", "show-compiled", "dibaoo", "--locality", "210102", "--date", "2021-08-01")
    assert r.returncode == 2 and r.stdout == ""
    assert "未知的项目：dibaoo" in r.stderr and "dibao" in r.stderr
    r = jiuzhu("rules", "show-compiled", "dibao", "--locality", "219999", "--date", "2021-08-01")
    assert r.returncode == 2 and "未知的行政区划代码 219999" in r.stderr
    r = jiuzhu("rules", "show-compiled", "dibao", "--locality", "210102", "--date", "2021-13-01")
    assert r.returncode == 2 and "--date" in r.stderr

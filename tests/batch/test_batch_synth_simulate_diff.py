"""Synthetic populations, reform simulation and rule-change diffs."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest
from gmpy2 import mpq

from engine import Engine
from engine.batch import synth
from engine.batch.diff import run_diff
from engine.batch.reform import ReformError, load_reform, reform_rulebook
from engine.batch.simulate import run_simulation
from engine.batch.tables import Source, find_households

ROOT = Path(__file__).resolve().parents[2]
REFORM = ROOT / "examples" / "reforms" / "dibao_plus5_edge2.yaml"


@pytest.fixture(scope="module")
def pop(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pop")
    synth.write(out, "210000", 3000, seed=2)
    return out


def test_synthetic_population_is_labelled_reproducible_and_plausible(pop, tmp_path):
    assert Source(pop).synthetic and "SYNTHETIC" in (pop / "SYNTHETIC.txt").read_text(encoding="utf-8")
    hh = pq.read_table(pop / "households.parquet")
    mem = pq.read_table(pop / "members.parquet")
    assert hh.num_rows == 3000 and hh.schema.metadata[b"jiuzhu.synthetic"] == b"true"
    assert all(i.startswith("SYN-210000-") for i in hh.column("household_id").to_pylist()[:10])
    assert {c[:2] for c in hh.column("locality").to_pylist()} == {"21"}
    sizes = np.unique(mem.column("household_id").to_numpy(zero_copy_only=False), return_counts=True)[1]
    assert sizes.min() >= 1 and sizes.max() <= 8 and 2.0 < sizes.mean() < 3.2
    disabled = mem.column("disability_grade").is_valid().to_numpy(zero_copy_only=False).mean()
    assert 0.03 < disabled < 0.2
    # same seed, same population
    synth.write(tmp_path, "210000", 3000, seed=2)
    assert pq.read_table(tmp_path / "members.parquet").equals(mem)


def test_reform_entries_are_exact_and_checked(tmp_path):
    reform = load_reform(REFORM)
    book, _root = reform_rulebook(reform, ROOT)
    import datetime as dt

    before = Engine(book).policies.resolve("210102", dt.date(2021, 12, 31)).values
    after = Engine(book).policies.resolve("210102", dt.date(2022, 1, 1)).values
    assert before["dibao.standard.urban"] == mpq(672)
    assert after["dibao.standard.urban"] == mpq(672) * mpq(105, 100)  # 705.6 exactly
    assert after["dibao.standard.rural"] == mpq(5558, 12) * mpq(105, 100)
    assert after["dibao_edge.multiplier"] == 2
    assert after["tekun.standard.urban"] == mpq(13, 10) * mpq(672) * mpq(105, 100)  # the formula follows
    minle = Engine(book).policies.resolve("620722", dt.date(2022, 1, 1))
    assert minle.values["dibao.standard.urban"] == mpq(6934, 12) * mpq(105, 100)
    assert "改革方案" in minle.citation("dibao.standard.urban")


def test_bad_reforms_are_refused(tmp_path):
    f = tmp_path / "r.yaml"
    f.write_text(
        "name: x\nparameters:\n  - {key: dibao.standard.urban, scale: 1.1, value: 3, from: 2022-01-01}\n", encoding="utf-8"
    )
    with pytest.raises(ReformError):
        load_reform(f)
    f.write_text("name: x\nparameters:\n  - {key: no.such.parameter, value: 3, from: 2022-01-01}\n", encoding="utf-8")
    with pytest.raises(ReformError):
        reform_rulebook(load_reform(f), ROOT)
    bad_rule = tmp_path / "bad.yaml"
    bad_rule.write_text(
        (ROOT / "rules" / "dibao_edge.yaml")
        .read_text(encoding="utf-8")
        .replace("per_capita_income < edge_line", "per_capita_incom < edge_line"),
        encoding="utf-8",
    )
    f.write_text(f"name: x\nrules:\n  dibao_edge.yaml: {bad_rule.name}\n", encoding="utf-8")
    with pytest.raises(ReformError, match="per_capita_incom"):
        reform_rulebook(load_reform(f), ROOT)


def test_simulation_counts_costs_and_gainers(engine, pop, tmp_path):
    res = run_simulation(pop, REFORM, out_dir=tmp_path / "sim", engine=engine)
    d = res.to_dict()
    c = d["counts"]
    # a higher standard and a wider edge line never remove anyone from 低保 or shrink the edge group
    assert c["dibao"]["eligible"]["reform"] >= c["dibao"]["eligible"]["baseline"]
    assert d["losses"]["dibao"] == 0
    assert c["dibao_edge"]["eligible"]["reform"] > c["dibao_edge"]["eligible"]["baseline"]
    assert res.cost_cents["dibao"]["reform"] > res.cost_cents["dibao"]["baseline"]
    assert (
        d["total_cost"]["change_annual"]
        == f"{12 * int(d['total_cost']['change_monthly'].replace('.', '')) // 100}.{12 * int(d['total_cost']['change_monthly'].replace('.', '')) % 100:02d}"
    )
    for name in ("counts.csv", "costs.csv", "gains_losses.csv", "changes.parquet", "report.html", "summary.json"):
        assert (tmp_path / "sim" / name).exists(), name
    html = (tmp_path / "sim" / "report.html").read_text(encoding="utf-8")
    assert "<svg" in html and "合成人口" in html and "705.60" in html
    gains = pcsv.read_csv(tmp_path / "sim" / "gains_losses.csv").to_pylist()
    new_dibao = [g["household_id"] for g in gains if g["program"] == "dibao" and g["change"] == "gain"]
    assert len(new_dibao) == d["gains"]["dibao"] > 0
    # the listed gainers really gain: check three with the single evaluator under both rule books
    reformed = Engine(reform_rulebook(load_reform(REFORM), ROOT)[0])
    for h in find_households(Source(pop), new_dibao[:3], as_of=load_reform(REFORM).effective):
        assert engine.evaluate(h).status("dibao") not in ("eligible", "gradual_exit")
        assert reformed.evaluate(h).status("dibao") in ("eligible", "gradual_exit")


def test_diff_lists_changed_cases_and_households(pop, tmp_path):
    head = tmp_path / "head"
    for d in ("rules", "policies"):
        shutil.copytree(ROOT / d, head / d)
    shutil.copytree(ROOT / "tests" / "cases", head / "tests" / "cases")
    same = run_diff(str(ROOT), head)
    assert same.changed == [] and same.base_version == same.head_version
    text = (head / "policies" / "210000.yaml").read_text(encoding="utf-8").replace("value: 672\n", "value: 700\n")
    (head / "policies" / "210000.yaml").write_text(text, encoding="utf-8")
    res = run_diff(str(ROOT), head, population=pop)
    names = {c["name"] for c in res.changed}
    assert "人均收入恰好等于低保标准，不符合低保，但属低保边缘" in names
    assert res.expectations["head_failing"] > res.expectations["base_failing"] == 0
    assert res.population.gains["dibao"] > 0 and res.population.losses["dibao"] == 0
    assert "人口" in res.report_text()


def test_diff_against_a_git_reference():
    import subprocess

    if subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True).returncode != 0:
        pytest.skip("not a git checkout")
    res = run_diff("HEAD", ROOT)
    assert res.cases > 40

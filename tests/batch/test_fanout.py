"""Partitioned populations and runs fanned out to Dask workers: the same files as one process.

The cluster is tests/conftest.py's ``dask_scheduler``: the one CI starts (``.ci/dask.sh``), or else a
2-worker ``LocalCluster`` of processes.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from engine.batch import job, synth
from engine.batch.fanout import Cluster, FanoutError
from engine.batch.job import evaluate_population, result_tables, run_batch
from engine.batch.partitions import find_partitions
from engine.batch.run import BatchEvaluator
from engine.batch.simulate import run_simulation
from engine.batch.sources import Source
from engine.batch.tables import PopulationError
from engine.cli.main import main
from engine.columnar.values import Interner
from engine.executors.evaluate import default_engine

ROOT = Path(__file__).resolve().parents[2]
REFORM = ROOT / "examples" / "reforms" / "dibao_plus5_edge2.yaml"
LOCALITY = "211100"  # 盘锦市: four counties, four partitions
HOUSEHOLDS = 3000


@pytest.fixture(scope="module")
def cluster(dask_scheduler):
    return Cluster(address=dask_scheduler)


@pytest.fixture(scope="module")
def populations(tmp_path_factory):
    root = tmp_path_factory.mktemp("fanout")
    synth.write(root / "part", LOCALITY, HOUSEHOLDS, seed=3, partition_by="county")
    synth.write(root / "flat", LOCALITY, HOUSEHOLDS, seed=3)
    return root


def _sorted(table: pa.Table) -> pa.Table:
    cols = [c.cast(c.type.value_type) if pa.types.is_dictionary(c.type) else c for c in table.columns]
    plain = pa.table(cols, names=table.column_names)
    keys = [(n, "ascending") for n in ("household_id", "member_id") if n in plain.column_names]
    return plain.sort_by(keys)


def test_a_partitioned_synthetic_population_holds_the_same_households_one_county_per_partition(populations):
    parts = find_partitions(populations / "part")
    assert [p.name for p in parts] == ["county=211102", "county=211103", "county=211104", "county=211122"]
    for p in parts:  # each partition is a population as it is, of one county
        hh = pq.read_table(p.path / "households.parquet")
        assert set(hh.column("locality").to_pylist()) == {p.value}
        assert Source(p.path).count() == hh.num_rows
    for table in ("households", "members"):
        whole = pa.concat_tables(pq.read_table(p.path / f"{table}.parquet") for p in parts)
        assert _sorted(whole).equals(_sorted(pq.read_table(populations / "flat" / f"{table}.parquet")))
    assert Source(populations / "part").count() == HOUSEHOLDS and Source(populations / "part").synthetic


def test_batch_in_one_process_reads_every_partition_and_counts_as_the_unpartitioned_population(populations, tmp_path):
    engine = default_engine()
    a = run_batch(engine, populations / "part", tmp_path / "a")
    b = run_batch(engine, populations / "flat", tmp_path / "b")
    assert (a.households, a.members, a.counts, a.monthly_cents) == (b.households, b.members, b.counts, b.monthly_cents)
    assert _sorted(pq.read_table(tmp_path / "a" / "households.parquet")).equals(
        _sorted(pq.read_table(tmp_path / "b" / "households.parquet"))
    )


def _run_json(out: Path) -> dict:
    d = json.loads((out / "run.json").read_text())
    for k in ("seconds", "households_per_second_evaluate", "wall_seconds", "households_per_second", "outputs"):
        d.pop(k)
    return d


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_batch_on_a_two_worker_cluster_writes_what_one_process_writes(populations, cluster, tmp_path, fmt):
    engine = default_engine()
    one = run_batch(engine, populations / "part", tmp_path / "one", fmt=fmt, part_size=400, verify=30)
    two = run_batch(engine, populations / "part", tmp_path / "two", fmt=fmt, part_size=400, verify=30, cluster=cluster)
    assert one.households == two.households == HOUSEHOLDS and two.verified == 30 and not two.mismatches
    assert _run_json(tmp_path / "one") == _run_json(tmp_path / "two")
    for name in ("households", "member_programs"):
        a, b = tmp_path / "one" / f"{name}.{fmt}", tmp_path / "two" / f"{name}.{fmt}"
        if fmt == "csv":
            assert a.read_bytes() == b.read_bytes()
        else:
            ta, tb = pq.read_table(a), pq.read_table(b)
            assert ta.num_rows > 0 and ta.equals(tb) and ta.schema.equals(tb.schema, check_metadata=True)


def test_a_worker_killed_mid_run_costs_a_retry_and_the_files_are_those_of_one_process(
    populations, cluster, tmp_path, monkeypatch
):
    marker, batch_partition = str(tmp_path / "died"), job.batch_partition

    def dies_once(*args):
        """Kills its worker process the first time it runs anywhere (the marker is on this machine). A local
        function: Dask sends it by value, so CI's workers need not import this test module."""
        if not os.path.exists(marker):
            Path(marker).touch()
            os._exit(1)
        return batch_partition(*args)

    engine = default_engine()
    run_batch(engine, populations / "part", tmp_path / "one", part_size=1600)
    monkeypatch.setattr(job, "batch_partition", dies_once)
    run_batch(engine, populations / "part", tmp_path / "two", part_size=1600, cluster=cluster)
    assert (tmp_path / "died").exists()  # a worker did die
    for name in ("households", "member_programs"):
        a, b = pq.read_table(tmp_path / "one" / f"{name}.parquet"), pq.read_table(tmp_path / "two" / f"{name}.parquet")
        assert a.num_rows > 0 and a.equals(b)


def test_the_wide_member_table_too(populations, cluster, tmp_path):
    engine = default_engine()
    run_batch(engine, populations / "part", tmp_path / "one", members="wide")
    run_batch(engine, populations / "part", tmp_path / "two", members="wide", cluster=cluster)
    assert pq.read_table(tmp_path / "one" / "members.parquet").equals(pq.read_table(tmp_path / "two" / "members.parquet"))


def test_simulate_on_a_two_worker_cluster_writes_what_one_process_writes(populations, cluster, tmp_path):
    bundles = Source(populations / "part").bundles(1600)
    assert len(bundles) > 1 and max(len(b) for b in bundles) > 1  # several tasks; counties read together as one part
    one = run_simulation(populations / "part", REFORM, out_dir=tmp_path / "one", part_size=1600)
    two = run_simulation(populations / "part", REFORM, out_dir=tmp_path / "two", part_size=1600, cluster=cluster)
    assert one.gains and sum(one.gains.values()) > 0  # the reform changes something to compare
    for name in ("counts.csv", "costs.csv", "gains_losses.csv", "report.html"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes(), name
    assert pq.read_table(tmp_path / "one" / "changes.parquet").equals(pq.read_table(tmp_path / "two" / "changes.parquet"))
    a, b = one.to_dict(), two.to_dict()
    for d in (a, b):
        d.pop("seconds"), d.pop("files")
    assert a == b
    assert a["by_locality"].keys() == {"211102", "211103", "211104", "211122"}


def test_histogram_bins_are_fixed_so_partitions_add_up(populations, tmp_path):
    whole = run_simulation(populations / "flat", REFORM).histogram
    parts = run_simulation(populations / "part", REFORM).histogram
    assert whole == parts  # the same households, in another order and other parts
    for h in whole.values():
        step = h["edges"][1]
        assert h["edges"] == [k * step for k in range(len(h["counts"]) + 1)] and isinstance(step, int)
        assert sum(h["counts"]) + h["above_range"] <= h["households"]


def test_a_reform_bringing_rule_files_reaches_the_workers_as_data(populations, cluster, tmp_path):
    rules = tmp_path / "reform"
    rules.mkdir()
    text = (ROOT / "rules" / "dibao_edge.yaml").read_text(encoding="utf-8")
    (rules / "edge.yaml").write_text(text, encoding="utf-8")
    (rules / "reform.yaml").write_text(
        REFORM.read_text(encoding="utf-8") + "\nrules:\n  dibao_edge.yaml: edge.yaml\n", encoding="utf-8"
    )
    one = run_simulation(populations / "part", rules / "reform.yaml")
    two = run_simulation(populations / "part", rules / "reform.yaml", cluster=cluster)
    assert one.reform_version == two.reform_version and one.counts == two.counts


def test_an_unpartitioned_population_is_refused_on_a_cluster_saying_how_to_partition(populations, cluster, tmp_path):
    with pytest.raises(FanoutError, match="partition-by county"):
        run_batch(default_engine(), populations / "flat", tmp_path / "out", cluster=cluster)
    assert not (tmp_path / "out" / "households.parquet").exists()


def test_the_same_household_in_two_partitions_is_refused_and_nothing_is_written(populations, cluster, tmp_path):
    pop = tmp_path / "pop"
    shutil.copytree(populations / "part", pop)
    shutil.copytree(pop / "county=211102", pop / "county=211199")
    for where in (None, cluster):
        out = tmp_path / f"out-{where is None}"
        with pytest.raises(PopulationError, match="户编号重复"):
            run_batch(default_engine(), pop, out, cluster=where)
        assert not list(out.glob("*.parquet")) and not list(out.glob(".*.tmp"))


def test_a_bad_row_names_the_partition_it_is_in(populations, cluster, tmp_path):
    pop = tmp_path / "pop"
    shutil.copytree(populations / "part", pop)
    path = pop / "county=211104" / "households.parquet"
    t = pq.read_table(path)
    ids = t.column("household_id").to_pylist()
    ids[3] = None
    pq.write_table(t.set_column(0, "household_id", pa.array(ids, pa.string())), path)
    for where in (None, cluster):
        with pytest.raises(PopulationError) as e:
            run_batch(default_engine(), pop, tmp_path / "out", cluster=where)
        assert e.value.errors[0].file == "county=211104/households.parquet" and e.value.errors[0].row == 4


def test_result_tables_do_not_depend_on_what_the_interner_saw_before(populations):
    """Each worker has its own interner; a household table is the same whatever it interned first."""
    engine = default_engine()
    seen = Interner()
    for text in ("rural", "211122", "211104"):  # another partition's localities and areas first
        seen.id(text)
    tables = []
    for interner in (Interner(), seen):
        be = BatchEvaluator(engine, interner=interner)
        (ev,) = list(evaluate_population(engine, populations / "flat", evaluator=be))
        tables.append(result_tables(ev, None, "long", [])["households"])
    assert tables[0].equals(tables[1])


def test_cli_workers_and_cluster(populations, tmp_path):
    r = CliRunner().invoke(
        main, ["batch", str(populations / "part"), "--out", str(tmp_path), "--workers", "2", "--cluster", "tcp://x:1"]
    )
    assert r.exit_code == 2 and "--workers 与 --cluster 只能选一个" in r.output
    r = CliRunner().invoke(main, ["batch", str(populations / "flat"), "--out", str(tmp_path / "o"), "--workers", "1"])
    assert r.exit_code == 2 and "不是分区的人口数据" in r.output
    r = CliRunner().invoke(
        main, ["synth", "--locality", LOCALITY, "--households", "50", "--partition-by", "town", "--out", str(tmp_path)]
    )
    assert r.exit_code == 2 and "county" in r.output


def test_a_population_named_relative_to_here_reaches_workers_whose_working_directory_is_elsewhere(
    populations, cluster, tmp_path, monkeypatch
):
    # The service names a population relative to its populations directory (its child runs there); the
    # workers started elsewhere, so the path they are sent must be absolute.
    monkeypatch.chdir(populations)
    one = run_simulation(Path("part"), REFORM, part_size=1600)
    two = run_simulation(Path("part"), REFORM, part_size=1600, cluster=cluster)
    assert one.counts == two.counts and one.cost_cents == two.cost_cents and one.by_locality == two.by_locality
    engine = default_engine()
    a = run_batch(engine, Path("part"), tmp_path / "b1", part_size=1600)
    b = run_batch(engine, Path("part"), tmp_path / "b2", part_size=1600, cluster=cluster)
    assert a.households == b.households > 0
    assert pq.read_table(tmp_path / "b1" / "households.parquet").equals(pq.read_table(tmp_path / "b2" / "households.parquet"))

"""Shared by the simulation tests: tiny synthetic populations, an app configured to offer them, polling."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import orjson

from api.core.config import Settings
from engine.batch import synth

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_REFORM = ROOT / "examples" / "reforms" / "dibao_plus5_edge2.yaml"
POPULATION = "liaoning-demo"  # the name the OpenAPI example uses


def make_populations(root: Path) -> Path:
    """A 300-household synthetic population (Parquet), and one in JSON lines whose second household is invalid."""
    synth.write(root / POPULATION, "210000", 300, seed=3)
    good = orjson.loads((ROOT / "examples" / "liaoning_shenyang_family.json").read_bytes())
    bad = orjson.loads(orjson.dumps(good))
    bad["household_id"] = "LN-BAD"
    bad["members"][0]["birth_date"] = "1956-02-30"
    (root / "broken").mkdir()
    (root / "broken" / "households.jsonl").write_bytes(orjson.dumps(good) + b"\n" + orjson.dumps(bad) + b"\n")
    return root


def configured(settings: Settings, populations: Path, tmp: Path, **kw) -> Settings:
    return dataclasses.replace(
        settings,
        populations_dir=populations,
        simulations_dir=tmp / "simulations",
        simulation_poll_seconds=0.2,
        **kw,
    )


def wait_until(client, location: str, headers: dict, statuses=("done", "failed"), timeout: float = 90) -> dict:
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        r = client.get(location, headers=headers)
        assert r.status_code == 200, r.text
        body = r.json()
        seen.append(body["status"])
        if body["status"] in statuses:
            return body
        assert r.headers["Retry-After"]
        time.sleep(0.1)
    raise AssertionError(f"still {seen[-1] if seen else '?'} after {timeout} s: {seen}")

"""The golden determinations: 3,000 generated households and a hash of what the engine says about each.

A guard for refactoring the engine (issue 14, item 7): the determinations, every reason and
citation included, must stay byte-identical. This module builds the households deterministically
and serialises each determination as the API returns it (``orjson.dumps`` of the determination,
keys in the engine's order); ``tests/golden/determinations.sha256`` holds, per household, a hash
of that and one of the decisions-only and outline forms the monitor uses.

    python tests/golden/make_golden.py            # rewrite the hash file (only from a trusted engine)
    python tests/golden/make_golden.py --check    # compare, as tests/test_golden.py does

The households come from ``engine.batch.synth`` (fixed seeds, all five seed localities, several
dates), each turned into a household record here (not by the batch I/O code, which may change),
with a quarter of them varied deterministically: facts left out (unknown values), emergencies
and rigid expenses added. The YAML cases of ``tests/cases`` are added as hand-made edge cases.
The hash file also holds one hash of the inputs of each group, so a changed generator is told
apart from a changed engine.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import random
import sys
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from engine import InputError, default_engine
from engine.batch import synth
from engine.book.cases import load_cases
from engine.schema.validate import parse
from engine.schema.vocab import HOUSEHOLD_EVENT_TYPES

ROOT = Path(__file__).resolve().parents[2]
HASH_FILE = Path(__file__).resolve().parent / "determinations.sha256"

LOCALITIES = ("100000", "210000", "350500", "500152", "620722")
DATES = (dt.date(2021, 8, 1), dt.date(2022, 7, 1), dt.date(2023, 3, 15), dt.date(2024, 12, 31))
PER_GROUP = 150  # 5 localities x 4 dates x 150 = 3,000
MEMBER_FIELDS = ("sex", "hukou_locality", "residence_permit_locality", "self_care", "supporters")
INCOME_PREFIX = "income_"


def _money(v: Any) -> str | None:
    return None if v is None else format(Decimal(v).quantize(Decimal("0.01")), "f")


def _list(v: Any) -> list[str]:
    """A list column as synth writes it: comma-separated text."""
    if isinstance(v, str):
        return [x.strip() for x in v.split(",") if x.strip()]
    return [str(x) for x in v or ()]


def _record(h: dict, members: list[dict]) -> dict:
    """A synthetic households/members row pair as a household record (docs/contract.md)."""
    out: dict[str, Any] = {
        "household_id": h["household_id"],
        "locality": h["locality"],
        "as_of": h["as_of"].isoformat(),
        "area": h["area"],
        "members": [],
    }
    if h.get("assets_financial") is not None or h.get("assets_properties") is not None:
        vehicles = [{"exempt": False}] * int(h.get("vehicles_nonexempt") or 0)
        vehicles += [{"exempt": True}] * int(h.get("vehicles_exempt") or 0)
        out["assets"] = {
            "financial": _money(h.get("assets_financial")),
            "vehicles": vehicles,
            "properties": h.get("assets_properties"),
        }
    rigid = [{"type": k[6:], "monthly": _money(v)} for k, v in h.items() if k.startswith("rigid_") and v is not None]
    if rigid:
        out["rigid_expenses"] = rigid
    if _list(h.get("current_benefits")):
        out["current_benefits"] = _list(h["current_benefits"])
    amounts = {k[15:]: _money(v) for k, v in h.items() if k.startswith("current_amount_") and v is not None}
    if amounts:
        out["current_amounts"] = amounts
    for m in members:
        rec: dict[str, Any] = {"id": m["member_id"], "relation": m["relation"], "birth_date": m["birth_date"].isoformat()}
        for k in MEMBER_FIELDS:
            if m.get(k) is not None:
                rec[k] = m[k]
        if m.get("disability_category") is not None or m.get("disability_grade") is not None:
            rec["disability"] = {"category": m.get("disability_category"), "grade": m.get("disability_grade")}
        for k in ("serious_illness", "employed"):
            if m.get(k) is not None:
                rec[k] = bool(m[k])
        if m.get("schooling") is not None:
            rec["schooling"] = m["schooling"]
        if _list(m.get("status")):
            rec["status"] = _list(m["status"])
        incomes = [
            {"type": k[len(INCOME_PREFIX) :], "monthly": _money(v)}
            for k, v in m.items()
            if k.startswith(INCOME_PREFIX) and v is not None
        ]
        if incomes:
            rec["incomes"] = incomes
        out["members"].append(rec)
    return out


def _vary(rec: dict, rnd: random.Random) -> dict:
    """Leave facts out (unknown values), add an emergency or a rigid expense: paths synth never draws."""
    kind = rnd.randrange(4)
    if kind == 0:
        for m in rec["members"]:
            for k in ("self_care", "supporters", "sex"):
                if rnd.random() < 0.5:
                    m.pop(k, None)
    elif kind == 1:
        rec.pop("assets", None)
    elif kind == 2:
        as_of = dt.date.fromisoformat(rec["as_of"])
        ev: dict[str, Any] = {
            "type": rnd.choice(HOUSEHOLD_EVENT_TYPES),
            "date": (as_of - dt.timedelta(days=rnd.randrange(0, 200))).isoformat(),
        }
        if rnd.random() < 0.8:
            ev["loss"] = f"{rnd.randrange(0, 60000)}.{rnd.randrange(100):02d}"
        rec["events"] = [ev]
    else:
        rec["rigid_expenses"] = [
            {"type": rnd.choice(("medical", "care", "education")), "monthly": f"{rnd.randrange(0, 3000)}.00"}
        ]
        m = rnd.choice(rec["members"])
        m["parents"] = [{"status": rnd.choice(("deceased", "declared_missing", "incarcerated", "normal"))}]
    return rec


@dataclass(frozen=True)
class Group:
    name: str
    households: tuple[dict, ...]


def groups() -> list[Group]:
    out = []
    for i, loc in enumerate(LOCALITIES):
        for j, on in enumerate(DATES):
            seed = 1000 + 10 * i + j
            hh, mem = synth.generate(loc, PER_GROUP, seed=seed, as_of=on)
            members: dict[str, list[dict]] = {}
            for m in mem.to_pylist():
                members.setdefault(m["household_id"], []).append(m)
            rnd = random.Random(seed)
            recs = []
            for h in hh.to_pylist():
                rec = _record(h, members[h["household_id"]])
                rec["household_id"] = f"G{loc}-{on:%Y%m%d}-{h['household_id'][-4:]}"
                if rnd.random() < 0.25:
                    rec = _vary(rec, rnd)
                recs.append(rec)
            out.append(Group(f"{loc}@{on.isoformat()}", tuple(recs)))
    cases = [c.household for c in load_cases(ROOT / "tests" / "cases")]
    out.append(Group("tests/cases", tuple(cases)))
    return out


def canonical_input(rec: dict) -> bytes:
    return orjson.dumps(rec, option=orjson.OPT_SORT_KEYS)


def output_of(engine, rec: dict) -> bytes:
    """What the API would answer for ``rec``: the determination, or the refusal, as JSON bytes."""
    try:
        return orjson.dumps(engine.evaluate(rec))
    except InputError as e:
        return orjson.dumps(e.to_dict())


def lighter_outputs(engine, rec: dict) -> bytes:
    """The decisions-only and outline forms (the monitor's), which the hash covers too."""
    try:
        hh = parse(rec)
    except InputError:
        return b""
    return orjson.dumps(engine.evaluate_parsed(hh, explain=False)) + b"\n" + orjson.dumps(engine.outline(hh))


def _h(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()[:12]  # 48 bits: enough to notice a change, small to commit


def compute(engine=None) -> tuple[list[str], dict[str, tuple[dict, bytes]]]:
    """The hash file's lines and, per household key, its record and current output."""
    engine = engine or default_engine()
    lines: list[str] = []
    outputs: dict[str, tuple[dict, bytes]] = {}
    for g in groups():
        lines.append(f"group {g.name} {len(g.households)} {_h(b''.join(canonical_input(r) for r in g.households))}")
        for i, rec in enumerate(g.households):
            out = output_of(engine, rec)
            outputs[f"{g.name}#{i}"] = (rec, out)
            lines.append(f"#{i} {_h(out)} {_h(lighter_outputs(engine, rec))}")
    return lines, outputs


def keyed(lines: list[str]) -> list[tuple[str, str]]:
    """(key, hashes) per line: ``group NAME ...`` lines keyed by the group, ``#i ...`` by ``NAME#i``."""
    out, group = [], ""
    for line in lines:
        head, _, rest = line.partition(" ")
        if head == "group":
            group = rest.split(" ", 1)[0]
            out.append((f"group {group}", rest))
        else:
            out.append((f"{group}{head}", rest))
    return out


def differences(want: list[str], got: list[str]) -> list[str]:
    """Keys whose hashes differ from the hash file's, in order: ``NAME#i`` for a household,
    ``group NAME`` when the generated inputs of a group changed."""
    w, g = dict(keyed(want)), keyed(got)
    out = [k for k, v in g if w.get(k) != v]
    out += [k for k in w if k not in dict(g)]
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    lines, _ = compute()
    if args.check:
        diff = differences(HASH_FILE.read_text(encoding="utf-8").splitlines(), lines)
        for d in diff[:20]:
            print(d)
        return 1 if diff else 0
    HASH_FILE.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"{sum(1 for x in lines if not x.startswith('group '))} households -> {HASH_FILE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

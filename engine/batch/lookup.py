"""Finding chosen households of a population, as contract records."""

from __future__ import annotations

import datetime as dt

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from .contract import to_contract
from .sources import Source


def find_households(src: Source, ids: list[str], as_of: dt.date | None = None) -> list[dict]:
    """Chosen households of a population as contract records, in the order asked (missing ids are skipped)."""
    wanted = pa.array(list(dict.fromkeys(ids)), pa.string())
    found: dict[str, dict] = {}
    if src.partitions:
        for _p, sub in src.partitions:
            found.update((h["household_id"], h) for h in find_households(sub, ids, as_of))
        return [found[i] for i in ids if i in found]
    if src.format == "jsonl":
        keys = set(wanted.to_pylist())
        with src.files["households"].open("rb") as f:
            for line in f:
                if not line.strip():
                    continue
                h = orjson.loads(line)
                if isinstance(h, dict) and h.get("household_id") in keys:
                    if as_of is not None:
                        h["as_of"] = as_of.isoformat()
                    found[h["household_id"]] = h
        return [found[i] for i in ids if i in found]

    def rows(table: str) -> list[dict]:
        out = []
        for batch in src._batches(table, None, 1 << 18):
            mask = pc.is_in(batch.column("household_id").cast(pa.string()), value_set=wanted)
            if pc.any(mask).as_py():
                out.extend(batch.filter(mask).to_pylist())
        return out

    hh = rows("households")
    mem = rows("members")
    ev = rows("events") if "events" in src.files else []
    for h in hh:
        hid = h["household_id"]
        ms = [m for m in mem if m["household_id"] == hid]
        es = [e for e in ev if e["household_id"] == hid]
        found[hid] = to_contract(h, ms, es, as_of)
    return [found[i] for i in ids if i in found]

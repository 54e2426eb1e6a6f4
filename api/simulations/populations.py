"""The populations a caller may simulate on: entries of the configured directory, named, never a path.

An operator puts a population (``households.parquet`` + ``members.parquet``, the CSV
pair, or ``households.jsonl``; see the column table of docs/batch.md) under
``JIUZHU_POPULATIONS_DIR`` — e.g. ``jiuzhu synth --out ~/.local/share/jiuzhu/populations/liaoning-demo`` —
and callers name it (``"population": "liaoning-demo"``). A name is one path component
of a restricted alphabet, so no request can reach a file outside that directory.

A population's ``locality`` is the narrowest division code covering every household in
it: a caller whose locality scope does not cover it neither sees the population nor may
simulate on it (it is answered as a name not on offer).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from pathlib import Path

import orjson
import pyarrow.compute as pc

from api.core.errors import ApiError
from engine.batch.tables import Source
from engine.policies.localities import NATIONAL, covers

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class Population:
    name: str
    path: Path
    format: str  # parquet | csv | jsonl
    households: int | None  # None when not cheap to know (CSV, JSON lines)
    synthetic: bool
    locality: str  # the narrowest division code covering every household (100000: several provinces)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "format": self.format,
            "households": self.households,
            "synthetic": self.synthetic,
            "locality": self.locality,
        }


_LOCALITY_CACHE: dict[tuple, str] = {}  # (households file, mtime, size) -> covering code
_CACHE_LOCK = threading.Lock()


def covering_code(codes: set[str]) -> str:
    """The narrowest division code whose subtree holds every code: {210102, 210103} -> 210100."""
    if not codes:
        return NATIONAL
    lo, hi = min(codes), max(codes)
    n = 0
    while n < 6 and lo[n] == hi[n]:
        n += 1
    if n == 6:
        return lo
    if n >= 4:
        return lo[:4] + "00"
    if n >= 2:
        return lo[:2] + "0000"
    return NATIONAL


def _localities(src: Source) -> set[str]:
    """Every household's locality, read column-wise (Parquet, CSV) or line by line (JSON lines)."""
    found: set[str] = set()
    if src.format == "jsonl":
        with src.files["households"].open("rb") as f:
            for line in f:
                if line.strip():
                    found.add(str(orjson.loads(line).get("locality")))
        return found
    for batch in src._batches("households", ["locality"], 1 << 16):
        found.update(str(v) for v in pc.unique(batch.column(0).cast("string")).to_pylist())
    return found


def locality_of(src: Source) -> str:
    """The population's covering code, computed once per version of its households file."""
    st = src.files["households"].stat()
    key = (str(src.files["households"]), st.st_mtime_ns, st.st_size)
    with _CACHE_LOCK:
        hit = _LOCALITY_CACHE.get(key)
    if hit is None:
        hit = covering_code(_localities(src))
        with _CACHE_LOCK:
            _LOCALITY_CACHE[key] = hit
    return hit


def _open(root: Path, name: str) -> Population | None:
    if not NAME_RE.match(name):
        return None
    path = root / name
    try:
        src = Source(path)
        return Population(name, path, src.format, src.count(), src.synthetic, locality_of(src))
    except Exception:  # not there, not a population, an unreadable Parquet footer: not offered
        return None


def available(root: Path, scope: str) -> list[Population]:
    """The populations whose households all lie within ``scope`` (a caller's scope code)."""
    if not root.is_dir():
        return []
    found = (_open(root, p.name) for p in sorted(root.iterdir(), key=lambda p: p.name))
    return [p for p in found if p is not None and covers(scope, p.locality)]


def find(root: Path, name: str, scope: str) -> Population:
    """The population called ``name``; a 422 naming the field ``population`` (and the names on offer) otherwise.
    A population outside ``scope`` is answered as one not on offer."""
    pop = _open(root, name)
    if pop is not None and covers(scope, pop.locality):
        return pop
    names = [p.name for p in available(root, scope)][:20]
    offer_zh = "、".join(names) if names else "无（请管理员在人口数据目录中放置数据）"
    offer_en = ", ".join(names) if names else "none (the operator has not placed any in the populations directory)"
    raise ApiError(
        422,
        "population",
        f"未找到名为 {name} 的人口数据（可用：{offer_zh}）",
        f"no population named {name!r} (available: {offer_en})",
        "unknown_population",
    )

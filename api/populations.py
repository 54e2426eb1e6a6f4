"""The populations a caller may simulate on: entries of the configured directory, named, never a path.

An operator puts a population (``households.parquet`` + ``members.parquet``, the CSV
pair, or ``households.jsonl``; see the README's column table) under
``JIUZHU_POPULATIONS_DIR`` — e.g. ``jiuzhu synth --out ~/.local/share/jiuzhu/populations/liaoning-demo`` —
and callers name it (``"population": "liaoning-demo"``). A name is one path component
of a restricted alphabet, so no request can reach a file outside that directory.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from engine.batch.tables import Source

from .errors import ApiError

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class Population:
    name: str
    path: Path
    format: str  # parquet | csv | jsonl
    households: int | None  # None when not cheap to know (CSV, JSON lines)
    synthetic: bool

    def to_dict(self) -> dict:
        return {"name": self.name, "format": self.format, "households": self.households, "synthetic": self.synthetic}


def _open(root: Path, name: str) -> Population | None:
    if not NAME_RE.match(name):
        return None
    path = root / name
    try:
        src = Source(path)
        return Population(name, path, src.format, src.count(), src.synthetic)
    except Exception:  # not there, not a population, an unreadable Parquet footer: not offered
        return None


def available(root: Path) -> list[Population]:
    if not root.is_dir():
        return []
    found = (_open(root, p.name) for p in sorted(root.iterdir(), key=lambda p: p.name))
    return [p for p in found if p is not None]


def find(root: Path, name: str) -> Population:
    """The population called ``name``; a 422 naming the field ``population`` (and the names on offer) otherwise."""
    pop = _open(root, name)
    if pop is not None:
        return pop
    names = [p.name for p in available(root)][:20]
    offer_zh = "、".join(names) if names else "无（请管理员在人口数据目录中放置数据）"
    offer_en = ", ".join(names) if names else "none (the operator has not placed any in the populations directory)"
    raise ApiError(
        422,
        "population",
        f"未找到名为 {name} 的人口数据（可用：{offer_zh}）",
        f"no population named {name!r} (available: {offer_en})",
        "unknown_population",
    )

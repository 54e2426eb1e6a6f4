"""Reading populations from files: Parquet or CSV tables, or JSON lines.

Tables (``schema.COLUMNS``) are read in parts of a bounded number of households, so a
population of any size is evaluated within a fixed memory budget: households in
order, and for each part the members that follow it in the members table (members
are grouped by household, in the households' order, as ``jiuzhu synth`` and a
database export sorted by household write them; other orders are read whole and
sorted). Every value is validated as ``engine.schema.validate`` validates a household: an
unknown enum, negative or 3-decimal money, a bad code or date, duplicate ids, a
birth after ``as_of``... is refused, naming the file, the row and the column, and
nothing is evaluated or written.

The reading is split by job: ``sources`` (which files, their parts), ``stream`` (reading in
parts), ``align`` (members and events of a part's households), ``convert`` (cells), ``rowcheck``
(checks across cells or rows), ``build`` (the facts' columns), ``contract`` (to and from contract
records), ``output`` (writing) and ``lookup`` (chosen households). This module keeps the names
the rest of the project imports.
"""

from __future__ import annotations

from dataclasses import field

from engine.schema.facts import HOUSEHOLD_FACTS, MEMBER_FIELDS

from .build import build_part, jsonl_part
from .contract import arrow_type, from_contract, row_contract, to_contract
from .errors import MAX_ERRORS, PopulationError, RowError
from .lookup import find_households
from .output import dumps_contract, write_tables
from .sources import DEFAULT_PART, RawPart, Source

__all__ = [
    "DEFAULT_PART",
    "HOUSEHOLD_FACTS",
    "MAX_ERRORS",
    "MEMBER_FIELDS",
    "PopulationError",
    "RawPart",
    "RowError",
    "Source",
    "arrow_type",
    "build_part",
    "dumps_contract",
    "field",
    "find_households",
    "from_contract",
    "jsonl_part",
    "row_contract",
    "to_contract",
    "write_tables",
]

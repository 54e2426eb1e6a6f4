"""The population file layout: two tables (households, members) and an optional third (events).

Each column fills a docs/contract.md field. The columns are declared beside their fields in
engine.schema.record (``Field.columns``); this module lays them out (``COLUMNS``) for
engine.batch.tables, which checks the cells. The column reference of docs/batch.md is this
table (``jiuzhu batch --columns`` prints it); a test keeps the two in agreement.
"""

from __future__ import annotations

from engine.schema.record import ColumnSpec, column_spec
from engine.schema.vocab import (  # noqa: F401  (re-exported: engine.batch.tables and synth read them as schema.X)
    AREAS,
    DISABILITY_CATEGORIES,
    EXPENSE_TYPES,
    HOUSEHOLD_EVENT_TYPES,
    INCOME_TYPES,
    MEMBER_STATUSES,
    PARENT_STATUSES,
    PROGRAM_CODES,
    RELATIONS,
    SCHOOLING,
    SELF_CARE,
    SEXES,
    SUPPORTERS,
)

HOUSEHOLDS, MEMBERS, EVENTS = "households", "members", "events"

CATEGORIES = DISABILITY_CATEGORIES
MEMBER_STATUS = MEMBER_STATUSES

# table, name, kind (text | enum | locality | date | money | int | bool | list | id_number), contract
# field, zh, required, values (enum, list elements), lo, hi, null (what an empty cell means)
Column = ColumnSpec
COLUMNS: tuple[Column, ...] = column_spec()

BY_TABLE: dict[str, dict[str, Column]] = {}
for _col in COLUMNS:
    BY_TABLE.setdefault(_col.table, {})[_col.name] = _col


def markdown() -> str:
    """The column reference as a Markdown table (the one in docs/batch.md)."""
    lines = ["| table | column | type | contract field | meaning | empty means |", "|---|---|---|---|---|---|"]
    for c in COLUMNS:
        kind = c.kind
        if c.values and len(c.values) <= 12:
            kind += ": " + " / ".join(c.values)
        elif c.kind == "int" and c.hi:
            kind += f" {c.lo}–{c.hi}"
        req = "（必填）" if c.required else ""
        lines.append(f"| {c.table} | `{c.name}` | {kind} | `{c.contract}` | {c.zh}{req} | {c.null or '—'} |")
    return "\n".join(lines)

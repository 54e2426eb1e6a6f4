"""The household record is declared once (engine.schema.record); the rest derives from it."""

from __future__ import annotations

import dataclasses

from engine.expr.types import INT, MONEY, STR, T, enum, list_of
from engine.schema import record as R
from engine.vocab import SEXES


def with_member_field(f: R.Field) -> dict[str, R.Record]:
    """The declaration with one more member field (after ``tags``)."""
    records = dict(R.RECORDS)
    member = records["member"]
    fields = list(member.fields)
    fields.insert([x.name for x in fields].index("tags") + 1, f)
    records["member"] = dataclasses.replace(member, fields=tuple(fields))
    return records


HOUSING = R.F(
    "housing",
    R.ENUM,
    "住房情况",
    "housing",
    "housing",
    absent=R.UNKNOWN,
    values=("own", "rent", "none"),
    columns=(R.Column(R.M, "housing", "住房情况", null="未提供"),),
)


def test_the_facts_the_rules_see_derive_from_the_declaration():
    h, m, records = R.fact_tables()
    assert m["sex"] == enum(*SEXES) and m["index"] == INT
    assert m["disability_category"].optional and m["disability_grade"] == T("int", optional=True)  # no disability: none
    assert m["residence_permit_locality"] == T("str", optional=True) and m["hukou_locality"] == STR  # absent: unknown
    assert h["assets.financial"] == MONEY and h["members"] == list_of("member")
    assert h["current_amounts.dibao"] == MONEY
    assert set(records) == {"income", "vehicle", "parent", "expense", "event"}
    assert records["event"]["type"] == STR  # compared with the policy's event_types, not the vocabulary
    assert R.missing_labels("member")["supporters"] == "法定赡养、抚养、扶养义务人情况"


def test_a_new_field_reaches_the_facts_and_the_batch_columns():
    records = with_member_field(HOUSING)
    _, m, _ = R.fact_tables(records)
    assert m["housing"] == enum("own", "rent", "none")
    assert R.missing_labels("member", records)["housing"] == "住房情况"
    (col,) = [c for c in R.column_spec(records) if c.name == "housing"]
    assert (col.table, col.kind, col.contract, col.values) == ("members", "enum", "members[].housing", ("own", "rent", "none"))
    assert "housing" not in {c.name for c in R.column_spec()}


def test_batch_columns_are_laid_out_by_table_in_field_order():
    from engine.batch import schema

    tables = [c.table for c in schema.COLUMNS]
    assert tables == sorted(tables, key=R.TABLES.index)
    names = [c.name for c in schema.BY_TABLE["members"].values()]
    assert names[:4] == ["household_id", "member_id", "relation", "birth_date"]
    grade = schema.BY_TABLE["members"]["disability_grade"]
    assert (grade.kind, grade.lo, grade.hi, grade.contract) == ("int", 1, 4, "members[].disability.grade")

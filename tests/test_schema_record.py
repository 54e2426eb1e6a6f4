"""The household record is declared once (engine.schema.record); the rest derives from it."""

from __future__ import annotations

import copy
import dataclasses
import json
import re
from pathlib import Path

import pytest
from gmpy2 import mpq
from pydantic import ValidationError

from engine.expr import Missing
from engine.expr.types import INT, MONEY, STR, T, enum, list_of
from engine.schema import record as R
from engine.schema.model import Household, InputError, build_models
from engine.schema.validate import Layout, parse
from engine.schema.vocab import SEXES


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


EXAMPLE = json.loads((Path(__file__).parent.parent / "examples" / "liaoning_shenyang_family.json").read_text(encoding="utf-8"))
DEBTS = R.F("debts", R.MONEY_, "家庭负债", "household debts", "debts", absent=R.UNKNOWN)


def with_household_field(records: dict[str, R.Record], f: R.Field) -> dict[str, R.Record]:
    records = dict(records)
    records["household"] = dataclasses.replace(records["household"], fields=(*records["household"].fields, f))
    return records


def test_a_new_field_is_enough_for_the_model_the_validator_the_facts_and_the_openapi_schema():
    records = with_household_field(with_member_field(HOUSING), DEBTS)
    layout = Layout(records)
    models = build_models(records)
    h_facts, m_facts, _ = R.fact_tables(records)
    assert m_facts["housing"] == enum("own", "rent", "none") and h_facts["debts"] == MONEY

    # the OpenAPI schema is the generated models' JSON schema (api.app)
    schema = models["household"].model_json_schema()
    assert schema["$defs"]["Member"]["properties"]["housing"]["anyOf"][0]["enum"] == ["own", "rent", "none"]
    assert schema["properties"]["debts"]["anyOf"][0]["pattern"].startswith("^\\d")

    h = copy.deepcopy(EXAMPLE)
    h["members"][0]["housing"] = "rent"
    h["debts"] = "1200.50"
    p = parse(h, layout=layout)
    models["household"].model_validate(h)
    assert p.members[0]["housing"] == "rent" and p.h["debts"] == mpq(240100, 200)
    missing = p.members[1]["housing"]
    assert isinstance(missing, Missing) and missing.keys == frozenset({("members[1].housing", "成员p2的住房情况")})

    h["members"][1]["housing"] = "castle"
    h["debts"] = "-1"
    with pytest.raises(InputError) as e:
        parse(h, layout=layout)
    errs = {err.field: err for err in e.value.errors}
    assert set(errs) == {"members[1].housing", "debts"}
    assert "取值无效" in errs["members[1].housing"].message_zh and "负数" in errs["debts"].message_zh
    with pytest.raises(ValidationError):
        models["household"].model_validate(h)

    # without the declaration, the same fields are refused as unknown
    with pytest.raises(InputError) as e:
        parse({**EXAMPLE, "debts": "1.00"})
    assert [err.code for err in e.value.errors] == ["extra_forbidden"]
    assert "debts" not in Household.model_fields


def test_a_field_the_validator_checks_cannot_leave_the_declaration_alone():
    records = dict(R.RECORDS)
    member = records["member"]
    records["member"] = dataclasses.replace(member, fields=tuple(f for f in member.fields if f.name != "sex"))
    with pytest.raises(ValueError, match="sex"):
        Layout(records)


def _doc_fields(section: str) -> list[str]:
    doc = (Path(__file__).parent.parent / "docs" / "contract.md").read_text(encoding="utf-8")
    body = doc.split(f"### {section}\n", 1)[1].split("\n### ", 1)[0]
    return re.findall(r"^\| `([^`]+)` \|", body, re.M)


def test_the_field_tables_of_docs_contract_are_the_declarations():
    def names(record: str, prefix: str = "") -> list[str]:
        out = []
        for f in R.input_fields(record):
            out.append(prefix + f.name)
            if f.kind == R.RECORD and record == "household":  # assets.financial... get rows of their own
                out += names(f.record, f"{f.name}.")
        return out

    assert _doc_fields("Household fields") == names("household")
    assert _doc_fields("Member fields") == names("member")
    assert _doc_fields("Events") == names("event")


def test_the_model_bounds_lists_as_the_validator_does():
    # The hand-kept model let members[].status, current_benefits and assets.vehicles grow past the
    # validator's bounds; generated from one declaration, the two refuse the same.
    for path, value in (
        (("members", 0, "status"), ["deceased"] * 6),
        (("current_benefits",), ["dibao"] * 21),
        (("assets", "vehicles"), [{"exempt": False}] * 51),
    ):
        h = copy.deepcopy(EXAMPLE)
        target = h
        for k in path[:-1]:
            target = target[k]
        target[path[-1]] = value
        with pytest.raises(InputError):
            parse(h)
        with pytest.raises(ValidationError):
            Household.model_validate(h)

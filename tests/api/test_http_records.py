"""Every determination is recorded before it is answered: masked input, output, version, caller, time.

Run on SQLite and, in CI, on PostgreSQL.
"""

from __future__ import annotations

import copy
import datetime as dt

import orjson
from http_helpers import auth
from sqlalchemy import create_engine, text

from api.core import examples
from api.evaluation.records import output_of
from api.storage.db import current_revision, head_revision

HH = examples.HOUSEHOLD


def _raw_rows(settings):
    """Read the table through a connection of our own, not the app's."""
    eng = create_engine(settings.url)
    try:
        with eng.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(text("SELECT * FROM determinations ORDER BY id"))]
    finally:
        eng.dispose()


def test_an_answer_is_already_committed_when_it_arrives(db_client, db_keys, db_settings):
    r = db_client.post("/v1/evaluate", json=HH, headers=auth(db_keys["caseworker"]))
    assert r.status_code == 200
    rows = _raw_rows(db_settings)
    assert [row["id"] for row in rows] == [r.json()["determination_id"]]
    row = rows[0]
    assert row["household_id"] == "LN-2021-0001"
    assert row["ruleset_version"] == db_client.app.state.engine.version
    assert row["caller_name"] == "测试caseworker" and row["caller_role"] == "caseworker"
    assert orjson.loads(output_of(row))["programs"] == r.json()["programs"]
    created = row["created_at"]
    created = created if isinstance(created, dt.datetime) else dt.datetime.fromisoformat(created)  # SQLite: text
    created = created if created.tzinfo else created.replace(tzinfo=dt.UTC)
    assert abs((dt.datetime.now(dt.UTC) - created).total_seconds()) < 60


def test_id_numbers_are_stored_masked_only(db_client, db_keys, db_settings):
    hh = copy.deepcopy(HH)
    hh["events"] = [{"type": "fire", "date": "2021-07-01", "about": "户主身份证 21010219560501123X"}]
    r = db_client.post("/v1/evaluate", json=hh, headers=auth(db_keys["window"]))
    assert r.status_code == 200
    row = _raw_rows(db_settings)[0]
    stored = orjson.dumps({**row, "output_zlib": output_of(row).decode()}, default=str).decode()
    assert "21010219560501123X" not in stored
    assert orjson.loads(row["input_json"])["members"][0]["id_number"] == "210102********123X"
    assert "210102********123X" in row["input_json"]  # the note's copy is masked too


def test_a_household_id_that_is_an_id_number_is_masked_and_still_findable(db_client, db_keys, db_settings):
    hh = copy.deepcopy(HH)
    hh["household_id"] = "21010219560501123X"
    assert db_client.post("/v1/evaluate", json=hh, headers=auth(db_keys["window"])).status_code == 200
    rows = _raw_rows(db_settings)
    assert rows[0]["household_id"] == "210102********123X"
    assert "21010219560501123X" not in output_of(rows[0]).decode()
    hist = db_client.get("/v1/households/21010219560501123X/determinations", headers=auth(db_keys["policy"]))
    assert len(hist.json()["determinations"]) == 1


def test_get_a_determination_returns_input_output_caller(db_client, db_keys):
    posted = db_client.post("/v1/evaluate", json=HH, headers=auth(db_keys["window"])).json()
    r = db_client.get(f"/v1/determinations/{posted['determination_id']}", headers=auth(db_keys["caseworker"]))
    assert r.status_code == 200
    rec = r.json()
    assert rec["determination_id"] == posted["determination_id"]
    assert rec["recorded_at"] == posted["recorded_at"]
    assert rec["caller"] == {"key_id": rec["caller"]["key_id"], "name": "测试window", "role": "window"}
    assert rec["input"]["members"][0]["id_number"] == "210102********123X"
    posted.pop("determination_id"), posted.pop("recorded_at")
    assert rec["determination"] == posted
    missing = db_client.get("/v1/determinations/00000000-0000-7000-8000-000000000000", headers=auth(db_keys["policy"]))
    assert missing.status_code == 404


def test_household_history_is_newest_first_and_pages(db_client, db_keys):
    ids = []
    for as_of in ("2021-06-01", "2021-07-01", "2021-08-01"):
        hh = copy.deepcopy(HH)
        hh["as_of"] = as_of
        ids.append(db_client.post("/v1/evaluate", json=hh, headers=auth(db_keys["window"])).json()["determination_id"])
    h = auth(db_keys["policy"])
    page1 = db_client.get("/v1/households/LN-2021-0001/determinations?limit=2", headers=h).json()
    assert [d["determination_id"] for d in page1["determinations"]] == ids[:0:-1]
    assert page1["determinations"][0]["as_of"] == "2021-08-01"
    dibao = next(p for p in page1["determinations"][0]["programs"] if p["program"] == "dibao")
    assert dibao["status"] in ("eligible", "ineligible", "gradual_exit", "needs_info")
    page2 = db_client.get(f"/v1/households/LN-2021-0001/determinations?limit=2&before={page1['next_before']}", headers=h).json()
    assert [d["determination_id"] for d in page2["determinations"]] == ids[:1]
    assert page2["next_before"] is None
    other = db_client.get("/v1/households/nobody/determinations", headers=h).json()
    assert other["determinations"] == []


def test_schema_comes_from_migrations_and_matches_the_models(db_client, db_settings):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from api.storage.models import SQLModel

    db = db_client.app.state.db
    assert current_revision(db) == head_revision() is not None
    with db.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), SQLModel.metadata)
    assert diff == []


def test_sqlite_runs_in_wal_mode_with_full_sync(client):
    with client.app.state.db.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL

"""BulkInsert stores the same values SQLAlchemy's own insert stores, read back through SQLAlchemy."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from api.storage.db import BulkInsert, make_engine, migrate, writing
from api.storage.models import AlertRecord, MonitorEventRecord


def _event(i: int, now: dt.datetime) -> dict:
    return {
        "id": f"ev-{i}",
        "household_id": f"H-{i % 3}",
        "seq": i,
        "event_key": f"k{i}",
        "type": "income_change",
        "date": dt.date(2024, 2, 29) + dt.timedelta(days=i),
        "member_id": None if i % 2 else "p1",
        "payload_json": '{"a": "收入"}',
        "ops_json": "[]",
        "evaluated": bool(i % 2),
        "caller_key_id": "cli",
        "caller_name": "测试",
        "received_at": now + dt.timedelta(microseconds=i * 1001),
    }


def test_bulk_rows_read_back_equal_to_sqlalchemy_rows(db_settings):
    db = make_engine(db_settings)
    migrate(db)
    table = MonitorEventRecord.__table__
    now = dt.datetime(2026, 11, 24, 8, 30, 15, 123456, tzinfo=dt.UTC)
    plain = [_event(i, now) for i in range(6)]
    bulk = [
        {**r, "id": "bulk-" + r["id"], "household_id": "B" + r["household_id"], "event_key": "b" + r["event_key"]} for r in plain
    ]
    with writing(db) as conn, conn.begin():
        conn.execute(table.insert(), plain)
        BulkInsert(table.insert(), db.dialect).execute(conn, bulk)
    with db.connect() as conn:
        rows = {r.id: r._asdict() for r in conn.execute(select(table))}
    assert len(rows) == 12
    for r in plain:
        got_plain, got_bulk = rows[r["id"]], rows["bulk-" + r["id"]]
        assert got_bulk["household_id"] == "B" + got_plain["household_id"]
        for col in ("seq", "type", "date", "member_id", "payload_json", "evaluated", "caller_name", "received_at"):
            assert got_bulk[col] == got_plain[col], col
        assert got_bulk["date"] == r["date"]
        assert got_bulk["evaluated"] is r["evaluated"]
    db.dispose()


def test_bulk_upsert_skips_known_keys_and_counts_new_rows(db_settings):
    db = make_engine(db_settings)
    migrate(db)
    table = AlertRecord.__table__
    insert = (postgresql.insert if db.dialect.name == "postgresql" else sqlite.insert)(table)
    stmt = BulkInsert(insert.on_conflict_do_nothing(index_elements=[table.c.key]), db.dialect)
    now = dt.datetime.now(dt.UTC)

    def alert(key: str, title: str) -> dict:
        return {"id": "id-" + key + title, "key": key, "household_id": "H", "locality": "210102", "rule": "r", "level": "red",
                "title": title, "text": "t", "action": "a", "citation": "c", "member_id": None, "event_key": "e",
                "event_type": "death", "event_date": dt.date(2025, 1, 1), "determinations_json": "{}", "status": "open",
                "notes_json": "[]", "created_at": now, "updated_at": now}  # fmt: skip

    with writing(db) as conn, conn.begin():
        assert stmt.execute(conn, [alert("a", "first"), alert("b", "first")]).rowcount == 2
    with writing(db) as conn, conn.begin():
        assert stmt.execute(conn, [alert("a", "second"), alert("c", "second")]).rowcount == 1
    with db.connect() as conn:
        titles = dict(conn.execute(select(table.c.key, table.c.title)).all())
    assert titles == {"a": "first", "b": "first", "c": "second"}
    db.dispose()


def test_bulk_insert_refuses_a_statement_that_does_not_bind_every_column():
    table = MonitorEventRecord.__table__
    try:
        BulkInsert(table.insert().values(id="x"), sqlite.dialect())
    except ValueError as e:
        assert "monitor_events" in str(e)
    else:
        raise AssertionError("accepted a statement binding only some columns")

"""Storage of the dynamic monitoring: monitored households, their events, and alerts.

The same database, engine and transaction helpers as ``api/storage/repository.py``;
kept in a module of its own because the monitor (its process, the replay tool)
is the only writer of these tables. Blocking calls (SQLAlchemy).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import orjson
from sqlalchemy import Engine, and_, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from api.storage.db import BulkInsert, writing
from api.storage.id_secret import load_id_secret
from api.storage.ids import uuid7
from api.storage.models import AlertRecord, MonitoredHousehold, MonitorEventRecord
from engine.monitor.monitor import HouseholdState, Outcome
from engine.policies.localities import NATIONAL, covers, scope_prefix
from engine.schema.masking import pseudonym, scrub, scrub_json

_HH = MonitoredHousehold.__table__
_EV = MonitorEventRecord.__table__
_AL = AlertRecord.__table__
ALERT_STATUSES = ("open", "acknowledged", "closed")


def _dumps(v) -> str:
    return orjson.dumps(v).decode()


@dataclass(slots=True)
class Accepted:
    """One processed event, ready to be written with the others of its transaction."""

    outcome: Outcome
    new_household: bool
    payload: dict
    member: str | None
    type: str
    date: dt.date
    caller_key_id: str
    caller_name: str


def _masked_payload(raw: dict) -> str:
    """The event as received, with every resident ID number masked (also inside a household record)."""
    return _dumps(scrub_json(raw))


class MonitorRepository:
    def __init__(self, engine: Engine, id_secret: bytes | None = None):
        self.engine = engine
        self._id_secret = id_secret
        self._insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
        # Bulk writes (a replay's thousands of rows per transaction) skip SQLAlchemy's per-row
        # parameter processing; see BulkInsert.
        dialect = engine.dialect
        hh = self._insert(_HH)
        upsert = hh.on_conflict_do_update(
            index_elements=[_HH.c.household_id],
            set_={k: getattr(hh.excluded, k) for k in ("locality", "seq", "record_json", "summary_json", "meta_json", "ruleset_version", "updated_at")},
        )
        self._events_insert = BulkInsert(_EV.insert(), dialect)
        self._households_upsert = BulkInsert(upsert, dialect)
        self._alerts_insert = BulkInsert(self._insert(_AL).on_conflict_do_nothing(index_elements=[_AL.c.key]), dialect)

    @property
    def id_secret(self) -> bytes:
        """Keys the pseudonyms of ids holding ID numbers (``engine.monitor.events.pseudonymous``)."""
        if self._id_secret is None:
            self._id_secret = load_id_secret(self.engine)
        return self._id_secret

    # -- households ----------------------------------------------------------------
    def household(self, household_id: str, conn: Connection | None = None) -> HouseholdState | None:
        def q(c):
            return c.execute(select(_HH).where(_HH.c.household_id == household_id)).first()

        if conn is not None:
            row = q(conn)
        else:
            with self.engine.connect() as c:
                row = q(c)
        if row is None:
            return None
        return HouseholdState.from_stored(
            row.household_id, row.locality, orjson.loads(row.record_json), orjson.loads(row.summary_json),
            orjson.loads(row.meta_json), row.seq,
        )

    def household_ids(self) -> set[str]:
        """Every monitored household's id: a bulk replay looks up only these (a fresh database: none)."""
        with self.engine.connect() as c:
            return {r[0] for r in c.execute(select(_HH.c.household_id))}

    def household_row(self, household_id: str):
        with self.engine.connect() as c:
            return c.execute(select(_HH).where(_HH.c.household_id == household_id)).first()

    def households(self, locality: str | None = None, after: str | None = None, limit: int = 1000) -> list[str]:
        q = select(_HH.c.household_id)
        if locality:
            q = q.where(_HH.c.locality == locality)
        if after:
            q = q.where(_HH.c.household_id > after)
        with self.engine.connect() as c:
            return [r[0] for r in c.execute(q.order_by(_HH.c.household_id).limit(limit))]

    def event_ops(self, household_id: str) -> list[list]:
        """The operations of every stored event of a household, in the order they apply: by date, then
        as they arrived (to rebuild its session; see api/monitoring/order.py)."""
        with self.engine.connect() as c:
            rows = c.execute(select(_EV.c.ops_json).where(_EV.c.household_id == household_id).order_by(_EV.c.date, _EV.c.seq))
            return [orjson.loads(r[0]) for r in rows]

    def event_by_key(self, household_id: str, key: str, conn: Connection | None = None):
        q = select(_EV).where(_EV.c.household_id == household_id, _EV.c.event_key == key)
        if conn is not None:
            return conn.execute(q).first()
        with self.engine.connect() as c:
            return c.execute(q).first()

    def count_events(self) -> int:
        with self.engine.connect() as c:
            return c.execute(select(func.count()).select_from(_EV)).scalar_one()

    def events_of(self, household_id: str) -> list:
        with self.engine.connect() as c:
            return list(c.execute(select(_EV).where(_EV.c.household_id == household_id).order_by(_EV.c.seq)))

    # -- writes (one transaction for many events) -----------------------------------
    def write(self, conn: Connection, items: Sequence[Accepted], ruleset_version: str, now: dt.datetime) -> int:
        """Insert the events, upsert their households, insert their alerts (a known key is skipped).
        Returns how many alerts were new."""
        return self.write_rows(conn, self.rows(items, ruleset_version, now))

    def rows(self, items: Sequence[Accepted], ruleset_version: str, now: dt.datetime) -> tuple[list, list, list]:
        """The rows ``write`` stores, made before the transaction so that the write lock is held
        only while they are inserted (replay workers share one SQLite file)."""
        events = []
        last: dict[str, tuple[Accepted, bool]] = {}
        alerts: dict[str, dict] = {}
        for it in items:
            o = it.outcome
            hid = o.state.household_id
            events.append(
                {
                    "id": uuid7(),
                    "household_id": hid,
                    "seq": o.seq,
                    "event_key": o.key,
                    "type": it.type,
                    "date": it.date,
                    "member_id": it.member,
                    "payload_json": _masked_payload(it.payload),
                    "ops_json": _dumps(o.ops),
                    "evaluated": o.evaluated,
                    "caller_key_id": it.caller_key_id,
                    "caller_name": it.caller_name,
                    "received_at": now,
                }
            )
            new = it.new_household or (hid in last and last[hid][1])
            last[hid] = (it, new)
            for a in o.alerts:
                alerts.setdefault(a["key"], self.alert_row(a, now))
        rows = []
        for it, _new in last.values():
            st = it.outcome.state
            rows.append(
                {
                    "household_id": st.household_id,
                    "locality": st.locality,
                    "seq": st.seq,
                    "record_json": _dumps(st.record),
                    "summary_json": _dumps(st.summary),
                    "meta_json": _dumps(st.meta()),
                    "ruleset_version": ruleset_version,
                    "created_at": now,
                    "updated_at": now,
                }
            )
        return events, rows, list(alerts.values())

    def write_rows(self, conn: Connection, prepared: tuple[list, list, list]) -> int:
        """Insert rows made by ``rows``; returns how many alerts were new."""
        events, rows, alerts = prepared
        if not events:
            return 0
        self._events_insert.execute(conn, events)
        self._households_upsert.execute(conn, rows)
        if not alerts:
            return 0
        res = self._alerts_insert.execute(conn, alerts)
        return res.rowcount if res.rowcount is not None and res.rowcount >= 0 else len(alerts)

    @staticmethod
    def alert_row(a: dict, now: dt.datetime) -> dict:
        return {
            "id": uuid7(),
            "key": a["key"],
            "household_id": a["household_id"],
            "locality": a["locality"],
            "rule": a["rule"],
            "level": a["level"],
            "title": a["title"],
            "text": a["text"],
            "action": a["action"],
            "citation": a["citation"],
            "member_id": a["member"],
            "event_key": a["event_key"],
            "event_type": a["event_type"],
            "event_date": dt.date.fromisoformat(a["event_date"]),
            "determinations_json": _dumps(a["determinations"]),
            "status": "open",
            "notes_json": "[]",
            "created_at": now,
            "updated_at": now,
        }

    def add_alerts(self, alerts: Iterable[dict]) -> int:
        """Alerts raised outside an event (a tick over stored households); a known key is skipped."""
        now = dt.datetime.now(dt.UTC)
        rows = {a["key"]: self.alert_row(a, now) for a in alerts}
        if not rows:
            return 0
        with writing(self.engine) as conn, conn.begin():
            res = self._alerts_insert.execute(conn, list(rows.values()))
        return res.rowcount if res.rowcount is not None and res.rowcount >= 0 else len(rows)

    # -- alerts: reads and status ------------------------------------------------------
    def alerts(
        self,
        locality: str | None = None,
        status: str | None = None,
        household_id: str | None = None,
        level: str | None = None,
        rule: str | None = None,
        limit: int = 50,
        before: str | None = None,
        scope: str | None = None,
    ) -> list:
        """Alerts matching the filters; ``scope`` (a caller's scope code) bounds them besides ``locality``,
        so a ``locality`` outside the scope finds nothing."""
        q = select(_AL)
        conds = []
        if household_id:  # stored as the monitor saw it: ID numbers masked and tagged
            household_id = pseudonym(household_id, self.id_secret, 128)
        for code in (locality, scope):
            if code and code != NATIONAL:  # 100000 (全国) covers every alert: no condition
                # a prefecture or province code covers the localities under it (210000 -> 21xxxx)
                prefix = scope_prefix(code)
                conds.append(_AL.c.locality.like(prefix + "%") if prefix != code else _AL.c.locality == code)
        for col, v in ((_AL.c.status, status), (_AL.c.household_id, household_id), (_AL.c.level, level), (_AL.c.rule, rule)):
            if v:
                conds.append(col == v)
        if before:
            conds.append(_AL.c.id < before)
        if conds:
            q = q.where(and_(*conds))
        with self.engine.connect() as c:
            return list(c.execute(q.order_by(_AL.c.id.desc()).limit(limit)))

    def alert_ids(self, keys: list[str]) -> dict[str, str]:
        with self.engine.connect() as c:
            return {k: i for k, i in c.execute(select(_AL.c.key, _AL.c.id).where(_AL.c.key.in_(keys)))}

    def alert(self, alert_id: str, scope: str | None = None):
        """The alert, or None when unknown or outside ``scope`` (the same answer)."""
        with self.engine.connect() as c:
            row = c.execute(select(_AL).where(_AL.c.id == alert_id)).first()
        return row if row is not None and (scope is None or covers(scope, row.locality)) else None

    def alerts_of_event(self, household_id: str, event_key: str) -> list:
        with self.engine.connect() as c:
            return list(c.execute(select(_AL).where(_AL.c.household_id == household_id, _AL.c.event_key == event_key).order_by(_AL.c.id)))

    def count_alerts(self) -> int:
        with self.engine.connect() as c:
            return c.execute(select(func.count()).select_from(_AL)).scalar_one()

    def set_status(self, alert_id: str, status: str, note: str | None, by: str, scope: str | None = None):
        """Move an alert to ``status`` with a note; returns (row, None) or (row or None, reason).
        An alert outside ``scope`` is ``not_found``, as an unknown one."""
        now = dt.datetime.now(dt.UTC)
        with writing(self.engine) as conn, conn.begin():
            row = conn.execute(select(_AL).where(_AL.c.id == alert_id)).first()
            if row is None or (scope is not None and not covers(scope, row.locality)):
                return None, "not_found"
            if row.status == "closed":
                return row, "closed"
            if row.status == status and not note:
                return row, None
            notes = orjson.loads(row.notes_json)
            notes.append({"status": status, "note": scrub(note) if note else note, "by": scrub(by), "at": now.isoformat(timespec="seconds").replace("+00:00", "Z")})
            conn.execute(update(_AL).where(_AL.c.id == alert_id).values(status=status, notes_json=_dumps(notes), updated_at=now))
            row = conn.execute(select(_AL).where(_AL.c.id == alert_id)).first()
        return row, None


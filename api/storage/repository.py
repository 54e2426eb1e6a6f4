"""The storage layer: every read and write of keys, determinations and batches goes through here.

Blocking calls (SQLAlchemy), meant to run in the group-commit writer thread,
a thread pool, or the command line. Routes never build SQL themselves.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

from sqlalchemy import Engine, func, insert, select, text, update
from sqlalchemy.engine import Connection
from sqlmodel import Session

from api.auth.keys import KEY_PREFIX, NATIONAL_SCOPE, Caller, Role, Scope, hash_key, new_key
from api.storage.db import writing
from api.storage.ids import uuid7
from api.storage.models import ApiKey, BatchRecord, DeterminationRecord
from engine.schema.masking import scrub

_DET = DeterminationRecord.__table__
_BATCH = BatchRecord.__table__


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def as_utc(value: dt.datetime) -> dt.datetime:
    """SQLite hands timestamps back without a zone; they were written in UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


class Repository:
    def __init__(self, engine: Engine):
        self.engine = engine

    # -- health ------------------------------------------------------------------
    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    # -- keys --------------------------------------------------------------------
    def create_key(self, name: str, role: Role, scope: Scope = NATIONAL_SCOPE) -> tuple[ApiKey, str]:
        secret = new_key()
        row = ApiKey(
            id="k_" + uuid7().replace("-", "")[-12:],
            name=scrub(name),  # copied into every record the key makes
            role=str(role),
            prefix=secret[: len(KEY_PREFIX) + 6],
            secret_hash=hash_key(secret),
            locality=scope.code,
            created_at=utcnow(),
        )
        with writing(self.engine) as conn, Session(bind=conn) as s:
            s.add(row)
            s.commit()
            s.refresh(row)
            s.expunge(row)
        return row, secret

    def list_keys(self, scope: Scope = NATIONAL_SCOPE) -> list[ApiKey]:
        """Keys whose scope lies within ``scope`` (a scoped administrator sees only those)."""
        with Session(self.engine) as s:
            q = select(ApiKey)
            if not scope.national:
                q = q.where(ApiKey.locality.like(scope.prefix + "%"))
            rows = list(s.exec(q.order_by(ApiKey.created_at, ApiKey.id)).scalars())
            for r in rows:
                s.expunge(r)
            return rows

    def count_active_keys(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(ApiKey).where(ApiKey.revoked_at.is_(None))).scalar_one()

    def revoke_key(self, key_id: str, scope: Scope = NATIONAL_SCOPE) -> ApiKey | None:
        """Revoke a key within ``scope``; None for an unknown key and for one outside it alike."""
        with writing(self.engine) as conn, conn.begin():
            row = conn.execute(select(ApiKey).where(ApiKey.id == key_id)).first()
            if row is None or not scope.covers(row.locality):
                return None
            conn.execute(update(ApiKey).where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None)).values(revoked_at=utcnow()))
            row = conn.execute(select(ApiKey).where(ApiKey.id == key_id)).first()
        return ApiKey.model_validate(row._mapping)

    def caller_for_hash(self, key_hash: str) -> Caller | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(ApiKey.id, ApiKey.name, ApiKey.role, ApiKey.locality).where(
                    ApiKey.secret_hash == key_hash, ApiKey.revoked_at.is_(None)
                )
            ).first()
        return Caller(row.id, row.name, Role(row.role), Scope.of(row.locality)) if row else None

    # -- determinations: writes ----------------------------------------------------
    def insert(self, conn: Connection, rows: Sequence[dict], batch: dict | None = None) -> None:
        """Insert within the caller's transaction (the writer commits many requests at once)."""
        if batch is not None:
            conn.execute(insert(_BATCH), [batch])
        if rows:
            conn.execute(insert(_DET), list(rows))

    def existing_idempotent(self, conn: Connection, caller_key_id: str, key: str, batch: bool):
        table = _BATCH if batch else _DET
        return conn.execute(select(table).where(table.c.caller_key_id == caller_key_id, table.c.idempotency_key == key)).first()

    # -- determinations: reads -----------------------------------------------------
    def determination(self, determination_id: str, *, scope: Scope):
        """The record, or None when unknown or outside ``scope`` (the same answer: existence does not leak)."""
        with self.engine.connect() as conn:
            row = conn.execute(select(_DET).where(_DET.c.id == determination_id)).first()
        return row if row is not None and scope.covers(row.locality) else None

    def find_idempotent(self, caller_key_id: str, key: str, batch: bool = False):
        with self.engine.connect() as conn:
            return self.existing_idempotent(conn, caller_key_id, key, batch)

    def household_history(
        self, household_id: str, limit: int, before: str | None = None, key: str | None = None, *, scope: Scope
    ) -> list:
        """The household's records within ``scope``, newest first (filtered in SQL, so pages stay full).
        ``key``: the household_id's keyed hash when it holds an ID number (``records.household_key``)."""
        cols = [c for c in _DET.c if c.name not in ("input_json", "output_zlib", "household_key")]
        if key is not None:
            q = select(*cols).where(_DET.c.household_key == key)
        else:  # not by a masked text, which several households may share
            q = select(*cols).where(_DET.c.household_id == household_id, _DET.c.household_key.is_(None))
        if not scope.national:
            q = q.where(_DET.c.locality.like(scope.prefix + "%"))
        if before:
            q = q.where(_DET.c.id < before)
        with self.engine.connect() as conn:
            return list(conn.execute(q.order_by(_DET.c.id.desc()).limit(limit)))

    def recent_households(self, scope: Scope, limit: int = 30, scan: int = 500) -> list:
        """The households evaluated last within ``scope``, newest first: their latest record each (of
        the last ``scan`` records, so the page stays cheap however long the history)."""
        cols = (_DET.c.id, _DET.c.household_id, _DET.c.household_key, _DET.c.locality, _DET.c.as_of, _DET.c.created_at, _DET.c.summary_json)
        q = select(*cols)
        if not scope.national:
            q = q.where(_DET.c.locality.like(scope.prefix + "%"))
        with self.engine.connect() as conn:
            rows = conn.execute(q.order_by(_DET.c.id.desc()).limit(scan))
            seen: dict[tuple, object] = {}
            for r in rows:
                seen.setdefault((r.household_id, r.household_key), r)
                if len(seen) >= limit:
                    break
        return list(seen.values())

    def batch_determinations(self, batch_id: str) -> list:
        with self.engine.connect() as conn:
            return list(conn.execute(select(_DET).where(_DET.c.batch_id == batch_id).order_by(_DET.c.batch_index)))

    def count_determinations(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(_DET)).scalar_one()

    def determinations_by_ids(self, ids: Iterable[str]) -> list:
        ids = list(ids)
        with self.engine.connect() as conn:
            return list(conn.execute(select(_DET).where(_DET.c.id.in_(ids))))

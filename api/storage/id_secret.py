"""The per-deployment secret that keys the hashes of resident ID numbers (``engine.schema.masking.id_key``).

``JIUZHU_ID_HASH_SECRET`` when set (the same value on every replica); otherwise a random
secret made on first start and kept in the database's ``deployment_secrets`` table, so
every replica and process on one database (SQLite file or PostgreSQL) uses the same one:
the first to start inserts it, the others find it (an insert that loses the race does
nothing). Losing or changing it makes stored keyed hashes unfindable (histories under
ID-number household ids, idempotency keys, monitored households' ids), never wrong.
"""

from __future__ import annotations

import datetime as dt
import secrets

from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import IntegrityError

from api.core.config import Settings
from api.storage.db import writing
from api.storage.models import DeploymentSecret

_T = DeploymentSecret.__table__
NAME = "id_hash"


def load_id_secret(engine: Engine, settings: Settings | None = None) -> bytes:
    """``settings.id_hash_secret`` when set, else the database's (None: no configured secret)."""
    configured = settings.id_hash_secret if settings is not None else ""
    if configured:
        return configured.encode()
    with engine.connect() as conn:
        value = conn.execute(select(_T.c.value).where(_T.c.name == NAME)).scalar()
    if value is None:
        try:
            with writing(engine) as conn, conn.begin():
                conn.execute(insert(_T), [{"name": NAME, "value": secrets.token_hex(32), "created_at": dt.datetime.now(dt.UTC)}])
        except IntegrityError:
            pass  # another replica made it first
        with engine.connect() as conn:
            value = conn.execute(select(_T.c.value).where(_T.c.name == NAME)).scalar_one()
    return value.encode()
